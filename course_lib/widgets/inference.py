"""What inference costs, side by side: SmolLM2 measured at each precision on this machine (speed,
memory, agreement with float32, its reply), and the price of a million tokens at a price per hour."""
from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course_lib.cost import price_per_million_tokens
from course_lib.inference import PrecisionRun
from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.notice import WARNING_COLOUR, notice_html
from course_lib.widgets.static import VBox

COLOURS = {"float32": "#4c72b0", "bfloat16": "#dd8452", "int8": "#55a868"}


def speed_against(run: PrecisionRun, base: PrecisionRun) -> str:
    """run's speed as a multiple of base's, with the range of the timed runs, read honestly."""
    ratio = run.tokens_per_second / base.tokens_per_second
    low, high = min(run.speeds) / max(base.speeds), max(run.speeds) / min(base.speeds)
    figures = f"{ratio:.2f}x float32's speed (runs {low:.2f}x to {high:.2f}x)"
    if low > 1:
        return f"{figures}: faster"
    if high < 1:
        return f"{figures}: slower"
    return f"{figures}: no clear difference, the runs overlap"


class InferenceCost(VBox):
    """The measured runs as three bar charts and a table; a price per hour turns each speed into a
    price per million tokens. The first run is float32, the one the others are compared with."""

    def __init__(self, runs: list[PrecisionRun], price_per_hour: float = 2.0, machine: str = "this machine"):
        if not runs or runs[0].precision != "float32":
            raise ValueError("give the float32 run first: the others are measured against it")
        self.runs = runs
        self.price = widgets.FloatText(value=price_per_hour, description="$ per hour for this machine",
                                       style={"description_width": "initial"}, layout=widgets.Layout(width="300px"))
        self.table, self.notice = widgets.HTML(), widgets.HTML()
        self.figure = figure_widget(self._figure(machine))
        self.caption = widgets.HTML(self._caption())
        self.price.observe(lambda _: self._draw_table(), names="value")
        self._draw_table()
        super().__init__([self.figure, self.caption, self.price, self.notice, self.table, FitWidth()],
                         layout=widgets.Layout(width="100%"))

    def _figure(self, machine: str) -> go.Figure:
        names = [run.precision for run in self.runs]
        colours = [COLOURS.get(name, "#8172b2") for name in names]
        figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.12, subplot_titles=(
            "tokens per second<br><sup>median, bars: slowest to fastest run</sup>",
            "weights in memory (MB)<br><sup>what each token streams</sup>",
            "top token as float32's (%)<br><sup>over a text it did not write</sup>"))
        speeds = [run.tokens_per_second for run in self.runs]
        figure.add_bar(x=names, y=speeds, marker_color=colours, row=1, col=1, showlegend=False,
                       error_y=dict(type="data", symmetric=False,
                                    array=[max(r.speeds) - s for r, s in zip(self.runs, speeds)],
                                    arrayminus=[s - min(r.speeds) for r, s in zip(self.runs, speeds)]),
                       text=[f"{s:.0f}" for s in speeds], textposition="inside", insidetextanchor="middle")
        figure.add_bar(x=names, y=[run.weight_bytes / 1e6 for run in self.runs], marker_color=colours,
                       row=1, col=2, showlegend=False, text=[f"{r.weight_bytes / 1e6:.0f}" for r in self.runs],
                       textposition="inside", insidetextanchor="middle")
        figure.add_bar(x=names, y=[100 * run.agreement for run in self.runs], marker_color=colours, row=1, col=3,
                       showlegend=False, text=[f"{100 * r.agreement:.1f}" for r in self.runs],
                       textposition="inside", insidetextanchor="middle")
        figure.update_yaxes(rangemode="tozero")
        figure.update_yaxes(range=[0, 108], tickvals=[0, 20, 40, 60, 80, 100], row=1, col=3)  # 100's tick clear of the title
        figure.update_layout(height=340, margin=dict(l=10, r=10, t=80, b=30),
                             title=dict(text=f"SmolLM2 at each precision, measured on {html.escape(machine)}",
                                        x=0, font=dict(size=14)))
        return figure

    def _caption(self) -> str:
        base = self.runs[0]
        lines = []
        for run in self.runs[1:]:
            changed = (1 - run.agreement) * run.positions
            lines.append(f"<b>{run.precision}</b>: {speed_against(run, base)}, from "
                         f"{run.weight_bytes / base.weight_bytes:.0%} of the bytes; its top token differs from "
                         f"float32's at {changed:.0f} of {run.positions:,} positions ({1 - run.agreement:.1%}).")
        return "<div style='line-height: 1.6'>" + "<br>".join(lines) + "</div>"

    def _draw_table(self) -> None:
        try:
            prices = [price_per_million_tokens(self.price.value, run.tokens_per_second) for run in self.runs]
        except ValueError as error:
            self.notice.value = notice_html(f"{error}; the prices below are for the last valid one.", WARNING_COLOUR)
            return
        self.notice.value = ""
        cell = "padding: 2px 10px; text-align: {}; vertical-align: top"
        rows = "".join(
            f"<tr><td style='{cell.format('left')}'>{run.precision}</td>"
            f"<td style='{cell.format('right')}'>{run.tokens_per_second:,.1f}</td>"
            f"<td style='{cell.format('right')}'>${price:,.2f}</td>"
            f"<td style='{cell.format('left')}; white-space: pre-wrap; max-width: 520px'>{html.escape(run.reply)}</td></tr>"
            for run, price in zip(self.runs, prices))
        head = "".join(f"<th style='{cell.format(side)}'>{name}</th>" for name, side in
                       (("precision", "left"), ("tokens/s", "right"), ("$ per million tokens", "right"),
                        ("greedy reply", "left")))
        self.table.value = f"<table><tr>{head}</tr>{rows}</table>"
        self.prices = prices
