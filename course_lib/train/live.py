"""A plot that grows while a model trains: named lines in one or more panels side by side."""
from __future__ import annotations


class LiveLines:
    """A plotly FigureWidget with one line per name; `update` replaces the lines' points, `draw` takes
    them from a run's log: each line shows what the log measured under its name.

    panels: the title of each panel, left to right; `lines` maps each line's name to its panel's
    index. Build it, `update` it with what is known so far, then display `view`: the points
    given before display are part of the figure from the start.
    """

    def __init__(self, lines: dict[str, int], panels: list[str], title: str, yaxis_titles: list[str],
                 height: int = 360):
        import ipywidgets as widgets
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        from course_lib.widgets.fit import FitWidth, figure_widget
        from course_lib.widgets.static import VBox

        if set(lines.values()) - set(range(len(panels))):
            raise ValueError(f"each line's panel must be an index into {panels}, got {lines}")
        base = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, horizontal_spacing=0.09)
        for name, panel in lines.items():
            base.add_trace(go.Scatter(x=[], y=[], name=name, mode="lines"), row=1, col=panel + 1)
        for panel, axis_title in enumerate(yaxis_titles):
            base.update_yaxes(title_text=axis_title, row=1, col=panel + 1)
            base.update_xaxes(title_text="step", row=1, col=panel + 1)
        # The legend under the panels, not beside them: the panels keep the width, and their titles room.
        base.update_layout(title=title, height=height + 40, margin={"t": 80, "b": 40},
                           legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"})
        base.update_annotations(font_size=13)  # the panels' titles
        self.figure = figure_widget(base)
        self.view = VBox([self.figure, FitWidth()])  # what is displayed: the figure at its width

    def update(self, points: dict[str, tuple[list, list]]) -> None:
        """points: name -> (xs, ys) for the lines to redraw; other lines stay as they are."""
        unknown = set(points) - {trace.name for trace in self.figure.data}
        if unknown:
            raise ValueError(f"no line named {sorted(unknown)} in this plot")
        with self.figure.batch_update():
            for trace in self.figure.data:
                if trace.name in points:
                    trace.x, trace.y = points[trace.name]

    def draw(self, log) -> None:
        """Redraw each line named like a series of the log (a RunLog): per step or per evaluation."""
        known = {trace.name for trace in self.figure.data}
        points = {name: (log.steps, values) for name, values in log.per_step.items() if name in known}
        points.update({name: (log.eval_steps, values) for name, values in log.evals.items() if name in known})
        self.update(points)
