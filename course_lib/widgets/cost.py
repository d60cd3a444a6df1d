"""Where "tens to hundreds of millions of dollars" comes from: a pre-training run's cost, derived
step by step (course_lib.cost) for a published run or one of your own, with the assumptions as
controls."""
from __future__ import annotations

import html

import ipywidgets as widgets

from course_lib.cost import H100_BF16_PEAK, PUBLISHED_RUNS, training_cost
from course_lib.widgets.notice import WARNING_COLOUR, notice_html
from course_lib.widgets.static import VBox


def _count(x: float) -> str:
    for size, unit in ((1e12, " trillion"), (1e9, " billion"), (1e6, " million")):
        if x >= size:
            return f"{x / size:,.3g}{unit}"
    return f"{x:,.0f}"


class CostCalculator(VBox):
    """Pick a published run (or type parameters and tokens), set the chip, its utilisation and a
    price per GPU-hour; the caption shows each step of the sum."""

    def __init__(self, flops_per_second: float = H100_BF16_PEAK, chip: str = "H100, bf16 peak"):
        runs = {run.name: run for run in PUBLISHED_RUNS}
        self.runs = runs
        style = {"description_width": "150px"}
        layout = widgets.Layout(width="340px")
        self.preset = widgets.Dropdown(options=list(runs) + ["your own"], value="Llama 3.1 (405B)",
                                       description="run", style=style, layout=layout)
        self.parameters = widgets.FloatText(description="parameters (billions)", style=style, layout=layout)
        self.tokens = widgets.FloatText(description="tokens (billions)", style=style, layout=layout)
        self.chip = chip
        self.peak = widgets.FloatText(value=round(flops_per_second / 1e12, 1), description="chip's peak TFLOP/s",
                                      style=style, layout=layout)
        self.utilisation = widgets.FloatSlider(value=0.4, min=0.05, max=0.8, step=0.05, description="utilisation",
                                               readout_format=".0%", style=style, layout=layout)
        self.price = widgets.FloatText(value=2.0, description="$ per GPU-hour", style=style, layout=layout)
        self.caption = widgets.HTML()
        self.notice = widgets.HTML()
        self._fill_preset()
        self.preset.observe(lambda _: (self._fill_preset(), self._draw()), names="value")
        for control in (self.parameters, self.tokens, self.peak, self.utilisation, self.price):
            control.observe(lambda _: self._draw(), names="value")
        self._draw()
        # The controls keep their width; the caption takes the rest of the row and wraps.
        controls = widgets.VBox([self.preset, self.parameters, self.tokens, self.peak, self.utilisation, self.price],
                                layout=widgets.Layout(flex="0 0 auto", width="350px"))
        self.caption.layout = widgets.Layout(flex="1 1 auto", margin="0 0 0 24px")
        super().__init__([widgets.HBox([controls, self.caption]), self.notice])

    def _fill_preset(self) -> None:
        run = self.runs.get(self.preset.value)
        if run is not None:
            self._filling = True
            self.parameters.value, self.tokens.value = run.parameters / 1e9, run.tokens / 1e9
            self._filling = False

    def _draw(self) -> None:
        if getattr(self, "_filling", False):
            return
        run = self.runs.get(self.preset.value)
        if run is not None and (self.parameters.value * 1e9, self.tokens.value * 1e9) != (run.parameters, run.tokens):
            self.preset.value = "your own"  # the numbers were changed by hand: no longer the paper's run
            return
        try:
            cost = training_cost(self.parameters.value * 1e9, self.tokens.value * 1e9,
                                 flops_per_second=self.peak.value * 1e12, utilisation=self.utilisation.value,
                                 price_per_hour=self.price.value)
        except ValueError as error:
            self.notice.value = notice_html(f"{error}; the figures above are for the last valid settings.",
                                            WARNING_COLOUR)
            return
        self.notice.value = ""
        lines = [f"6 × {_count(self.parameters.value * 1e9)} parameters × {_count(self.tokens.value * 1e9)} tokens"
                 f" = <b>{cost.flops:.2e} FLOPs</b>"]
        if run is not None:
            lines.append(f"the paper reports {run.flops:.2e} FLOPs ({html.escape(run.source)})")
        lines += [f"÷ ({self.peak.value:,.0f} TFLOP/s ({html.escape(self.chip)}) × {self.utilisation.value:.0%}) = "
                  f"<b>{cost.gpu_hours / 1e6:,.2f} million GPU-hours</b>",
                  f"× ${self.price.value:,.2f} per GPU-hour = <b>${cost.dollars / 1e6:,.1f} million</b>",
                  "wall-clock: " + ", ".join(f"{days:,.0f} days on {n:,} GPUs" for n, days in cost.days_on.items())]
        self.caption.value = "<div style='line-height: 1.7'>" + "<br>".join(lines) + "</div>"
        self.cost = cost
