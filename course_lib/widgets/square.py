"""SquareExplorer: attention compares every token with every token, so its cost grows like N².

Left, a slider for the input length N over the N×N grid of token-pair comparisons: the causal half
(key j <= query i) that a chat model needs, and the future half that a naive implementation computes
anyway and then masks. Right, the notebook's measured costs against N on log-log axes, where a power
law y = c·N^a is a straight line of slope a. Each series gets a fitted line with its slope in the
legend, from the learner's `fit_power_law` when it works and gives a usable fit (as the exercise's
declaration, course_lib.exercises.compute, defines one), otherwise from the course's least-squares fit
in log space, with a notice saying why, so a half-finished exercise never breaks the notebook.
"""
from __future__ import annotations

import html
import math
from typing import Callable, Mapping, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from course_lib.exercises.compute import fit_power_law, power_law_problem
from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.notice import INFO_COLOUR, WARNING_COLOUR, notice_html
from course_lib.validation import is_number
from course_lib.widgets.static import HBox

DEFAULT_N = 64
# Above this many cells per side a cell is a few pixels wide: the grid is drawn as a filled square.
MAX_DRAWN_SIDE = 64
CAUSAL_COLOUR = "#2f6fde"
FUTURE_COLOUR = "#d4dcee"
REFERENCE_SLOPES = {1: ("linear", "#9e9e9e"), 2: ("quadratic", "#616161")}


def grid_cells(n: int) -> tuple[int, int]:
    """(all cells, cells in the causal half j <= i) of the n×n grid of token-pair comparisons."""
    return n * n, n * (n + 1) // 2


def _checked_count(value, what: str, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{what} must be a whole number {allowed}, got {value!r}")
    return value


def _checked_lengths(lengths) -> list[float]:
    lengths = list(lengths)
    if len(lengths) < 2:
        raise ValueError(f"lengths must hold at least 2 input lengths to fit a slope, got {len(lengths)}")
    for value in lengths:
        if not is_number(value) or not 0 < value < math.inf:
            raise ValueError(f"lengths must be positive numbers, got {value!r}")
    if any(b <= a for a, b in zip(lengths, lengths[1:])):
        raise ValueError(f"lengths must be increasing, got {lengths}")
    return [float(value) for value in lengths]


def _checked_costs(name, values, lengths: list[float]) -> list[float]:
    """The series' values as floats, NaN where a point was not measured (None or NaN)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a series needs a name (text), got {name!r}")
    values = list(values)
    if len(values) != len(lengths):
        raise ValueError(f"series {name!r} has {len(values)} values for {len(lengths)} lengths")
    costs = []
    for length, value in zip(lengths, values):
        if value is None or (is_number(value) and math.isnan(value)):
            costs.append(math.nan)
        elif not is_number(value) or not 0 < value < math.inf:
            raise ValueError(f"series {name!r} has {value!r} at N = {length:g}: costs must be positive numbers "
                             "(None or NaN for a point that could not be measured)")
        else:
            costs.append(float(value))
    measured = sum(not math.isnan(cost) for cost in costs)
    if measured < 2:
        raise ValueError(f"series {name!r} has {measured} measured point(s): fitting a slope needs at least 2")
    return costs


def _measured(lengths: list[float], costs: list[float]) -> tuple[list[float], list[float]]:
    """The (lengths, costs) of the points that were measured."""
    points = [(x, y) for x, y in zip(lengths, costs) if not math.isnan(y)]
    return [x for x, _ in points], [y for _, y in points]


def _listed(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


class SquareExplorer(HBox):
    """The N×N grid under a slider for N, beside the measured costs against N on log-log axes.

    `lengths`: the input lengths N that were measured, increasing. `series`: {name: one cost per
    length}, e.g. {"naive attention, time (s)": [...]}, drawn on the plot whose y axis is `cost_label`;
    `memory`, optional, the same for a second plot below it (y axis `memory_label`). None or NaN marks
    a point that could not be measured: it is left out of the plot and the fit, with a note.
    `device_label` names the device the costs were measured on. `fit(xs, ys) -> (exponent, constant)`,
    the learner's `fit_power_law`, is called with lists of floats, the measured points of one series;
    without it the lines are least-squares fits in log space. `n` is the slider's start (64, or
    `max_n` if smaller); `max_n` its end (the largest length by default).
    """

    def __init__(
        self,
        lengths: Sequence[float],
        series: Mapping[str, Sequence[float | None]],
        device_label: str,
        fit: Callable | None = None,
        memory: Mapping[str, Sequence[float | None]] | None = None,
        n: int | None = None,
        max_n: int | None = None,
        cost_label: str = "time (s)",
        memory_label: str = "peak memory (MiB)",
    ):
        if not isinstance(device_label, str) or not device_label.strip():
            raise ValueError("device_label must name the device the costs were measured on, "
                             "e.g. 'Intel Xeon (cpu, 2 cores)'")
        self.lengths = _checked_lengths(lengths)
        plots = [dict(series or {})] + ([dict(memory)] if memory else [])
        if not plots[0]:
            raise ValueError("series must hold at least one named series of costs, one per length")
        names = [name for plot in plots for name in plot]
        if len(set(names)) < len(names):
            raise ValueError(f"series and memory must not share a name, got {names}")
        self._costs = [{name: _checked_costs(name, values, self.lengths) for name, values in plot.items()}
                       for plot in plots]
        self.max_n = _checked_count(math.ceil(self.lengths[-1]) if max_n is None else max_n, "max_n", 1)
        start = _checked_count(min(DEFAULT_N, self.max_n) if n is None else n, "N", 1, self.max_n)
        self.fit = fit
        self._fits: dict[str, tuple[float, float]] = {}
        self._fit_problems: dict[str, list[str]] = {}  # why the fit was not used -> the series it failed on
        for plot in self._costs:
            for name, costs in plot.items():
                self._fits[name], problem = self._fitted(*_measured(self.lengths, costs))
                if problem:
                    self._fit_problems.setdefault(problem, []).append(name)

        self.slider = widgets.IntSlider(value=start, min=1, max=self.max_n, step=1, description="N (tokens)",
                                        continuous_update=True, style={"description_width": "initial"},
                                        layout=widgets.Layout(width="360px"))
        self.grid_figure = figure_widget(
            go.Heatmap(zmin=0, zmax=1, showscale=False, xgap=1, ygap=1,
                       colorscale=[[0, FUTURE_COLOUR], [0.5, FUTURE_COLOUR], [0.5, CAUSAL_COLOUR], [1, CAUSAL_COLOUR]],
                       hovertemplate="query %{y} with key %{x}: %{text}<extra></extra>"),
            layout=go.Layout(
                width=380, height=400, margin=dict(l=10, r=10, t=10, b=10),
                # constrain="domain": keeping the cells square shrinks the plot instead of widening a range.
                xaxis=dict(side="top", title_text="key j (the token compared with)", fixedrange=True,
                           constrain="domain"),
                yaxis=dict(title_text="query i (the token comparing)", fixedrange=True, scaleanchor="x",
                           constrain="domain"),
            ),
        )
        self.caption = widgets.HTML()
        self.cost_figure = self._cost_figure(device_label, [cost_label, memory_label][: len(plots)])
        self.notice = widgets.HTML(self._notice())
        super().__init__([
            widgets.VBox([self.slider, self.grid_figure, self.caption], layout=widgets.Layout(width="400px")),
            widgets.VBox([self.cost_figure, self.notice, FitWidth()], layout=widgets.Layout(flex="1", min_width="0")),
        ])
        self.slider.observe(lambda change: self._redraw(), names="value")
        self._redraw()

    @property
    def n(self) -> int:
        return self.slider.value

    @n.setter
    def n(self, value: int):
        self.slider.value = _checked_count(value, "N", 1, self.max_n)

    @property
    def fits(self) -> dict[str, tuple[float, float]]:
        """Each series' fitted (exponent, constant), as drawn."""
        return dict(self._fits)

    def _fitted(self, xs: list[float], ys: list[float]) -> tuple[tuple[float, float], str]:
        """The fit's (exponent, constant) and "", or the least-squares one and why the fit was not used."""
        if self.fit is None:
            return fit_power_law(xs, ys), ""
        try:
            result = self.fit(list(xs), list(ys))  # copies: a fit that edits its lists cannot corrupt the data
        except NotImplementedError:
            problem = "is not implemented yet"
        except Exception as error:  # the learner's code: report it, keep the widget alive
            problem = f"raised {type(error).__name__}: {error}"
        else:
            problem = power_law_problem(result, xs, ys)
            if not problem:
                exponent, constant = result
                return (float(exponent), float(constant)), ""
        return fit_power_law(xs, ys), problem

    def _cost_figure(self, device_label: str, y_labels: list[str]) -> go.FigureWidget:
        figure = make_subplots(rows=len(y_labels), cols=1, shared_xaxes=True, vertical_spacing=0.08)
        colours = iter(qualitative.Plotly * 3)
        for row, plot in enumerate(self._costs, start=1):
            # The reference slopes start from the first measured point of the plot's first series.
            first_xs, first_ys = _measured(self.lengths, next(iter(plot.values())))
            x0, y0 = first_xs[0], first_ys[0]
            ends = [self.lengths[0], self.lengths[-1]]
            for slope, (word, colour) in REFERENCE_SLOPES.items():
                figure.add_trace(go.Scatter(
                    x=ends, y=[y0 * (x / x0) ** slope for x in ends], mode="lines", name=f"slope {slope} ({word})",
                    legendgroup=f"slope {slope}", showlegend=row == 1, line=dict(color=colour, dash="dash", width=1.5),
                    hoverinfo="skip"), row=row, col=1)
            for name, costs in plot.items():
                xs, ys = _measured(self.lengths, costs)
                exponent, constant = self._fits[name]
                colour, label = next(colours), html.escape(name, quote=False)
                figure.add_trace(go.Scatter(
                    x=xs, y=ys, mode="markers", name=label, legendgroup=label, showlegend=False,
                    marker=dict(color=colour, size=8),
                    hovertemplate=f"{label}<br>N = %{{x:,}}: %{{y:.3g}}<extra></extra>"), row=row, col=1)
                line_ends = [xs[0], xs[-1]]
                figure.add_trace(go.Scatter(
                    x=line_ends, y=[constant * x**exponent for x in line_ends], mode="lines",
                    name=f"{label}: slope {exponent:.2f}", legendgroup=label, line=dict(color=colour),
                    hovertemplate=f"fit: {constant:.3g}·N^{exponent:.2f}<extra></extra>"), row=row, col=1)
            figure.update_yaxes(title_text=html.escape(y_labels[row - 1], quote=False), type="log", row=row, col=1)
        # A fixed x range holding the measurements and the whole slider, so the marker never rescales it.
        low, high = min(1.0, self.lengths[0]) / 1.3, max(self.max_n, self.lengths[-1]) * 1.3
        figure.update_xaxes(type="log", range=[math.log10(low), math.log10(high)])
        figure.update_xaxes(title_text="input length N (tokens)", row=len(y_labels), col=1)
        figure.update_layout(
            title_text="Cost against N, log-log<br><sup>" + html.escape(f"measured on {device_label}", quote=False) + "</sup>",
            height=460 if len(y_labels) == 1 else 680, margin=dict(l=10, r=10, t=50, b=10),
            legend=dict(orientation="h", yanchor="top", y=-0.12 if len(y_labels) == 1 else -0.08),
            # The slider's N: data coordinates on x (shapes on log axes take plain values), the full height on y.
            shapes=[dict(type="line", xref="x", yref="paper", y0=0, y1=1, line=dict(color="#333", dash="dot"),
                         label=dict(textposition="end", textangle=0, xanchor="left", yanchor="top",
                                    font=dict(size=11)))],
        )
        return figure_widget(figure)

    def _notice(self) -> str:
        notices = []
        name = getattr(self.fit, "__name__", "fit")
        for problem, names in self._fit_problems.items():
            colour, mark = (INFO_COLOUR, "") if problem == "is not implemented yet" else (WARNING_COLOUR, "⚠ ")
            notices.append(notice_html(f"{mark}Your {name} {problem} (for {_listed(names)}). "
                                       "Their fitted lines use a least-squares fit in log space instead.", colour))
        for plot in self._costs:
            for series, costs in plot.items():
                missing = [f"{x:,g}" for x, y in zip(self.lengths, costs) if math.isnan(y)]
                if missing:
                    notices.append(notice_html(f"{series}: not measured at N = {_listed(missing)}; left out of "
                                               "its points and its fit.", INFO_COLOUR))
        return "".join(notices)

    def _redraw(self):
        n = self.n
        total, causal = grid_cells(n)
        drawn = n <= MAX_DRAWN_SIDE
        with self.grid_figure.batch_update():
            heatmap = self.grid_figure.data[0]
            if drawn:
                heatmap.z = [[int(j <= i) for j in range(n)] for i in range(n)]
                heatmap.text = [["causal half" if j <= i else "future half (masked)" for j in range(n)]
                                for i in range(n)]
                self.grid_figure.layout.shapes = []
            else:
                heatmap.z = heatmap.text = None
                edge = n - 0.5
                self.grid_figure.layout.shapes = [
                    dict(type="rect", x0=-0.5, y0=-0.5, x1=edge, y1=edge, fillcolor=FUTURE_COLOUR, line_width=0),
                    dict(type="path", path=f"M -0.5,-0.5 L -0.5,{edge} L {edge},{edge} Z",
                         fillcolor=CAUSAL_COLOUR, line_width=0),
                ]
            self.grid_figure.layout.xaxis.range = [-0.5, n - 0.5]
            self.grid_figure.layout.yaxis.range = [n - 0.5, -0.5]  # row 0 at the top
        with self.cost_figure.batch_update():
            self.cost_figure.layout.shapes[0].update(x0=n, x1=n, label_text=f"N = {n:,}")
        too_small = "" if drawn else (f"<br>Above {MAX_DRAWN_SIDE} per side the cells are too small to see: "
                                      "the grid is drawn as a filled square.")
        self.caption.value = (
            f"<b>N = {n:,}: {total:,} cells ({causal:,} in the causal half); double N and the cells ×4</b>"
            f"{too_small}<br><span style='color: {CAUSAL_COLOUR}'>■</span> the causal half (j ≤ i), all a chat "
            f"model needs · <span style='color: {FUTURE_COLOUR}'>■</span> the future half, which a naive "
            "implementation computes anyway and then masks"
        )
