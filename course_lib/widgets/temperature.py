"""TemperatureExplorer: a model's real next-token distribution under a temperature slider.

The learner's own `softmax_with_temperature` can be plugged in; if it is missing or returns
something that is not a probability distribution, the chart falls back to the course's reference
and says so in the widget, so a half-finished exercise never breaks the notebook.
"""
from __future__ import annotations

import html
import math
from typing import Callable

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.reference import softmax_with_temperature
from course_lib.widgets.tokens import make_visible

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 3.0
SUM_TOLERANCE = 1e-4
INFO_COLOUR = "#2f6fde"
WARNING_COLOUR = "#c62828"


def distribution_problem(probabilities, vocab_size: int) -> str:
    """Why `probabilities` is not a distribution over `vocab_size` tokens, or "" if it is one."""
    if not isinstance(probabilities, torch.Tensor):
        return f"it returned a {type(probabilities).__name__}, not a torch tensor"
    if tuple(probabilities.shape) != (vocab_size,):
        return f"it has shape {tuple(probabilities.shape)}, expected ({vocab_size},)"
    probabilities = probabilities.detach().double()
    if torch.isnan(probabilities).any():
        return "it contains NaN (did exp() overflow? subtract the max logit first)"
    if torch.isinf(probabilities).any():
        return "it contains infinity"
    if (probabilities < 0).any():
        return f"it has negative values (smallest {probabilities.min().item():.4g})"
    total = probabilities.sum().item()
    if abs(total - 1) > SUM_TOLERANCE:
        return f"it sums to {total:.6g}, not 1"
    return ""


def entropy_bits(probabilities: torch.Tensor) -> float:
    """Shannon entropy in bits; entr() treats 0 * log 0 as 0."""
    return torch.special.entr(probabilities.double()).sum().item() / math.log(2)


def notice_html(message: str, colour: str) -> str:
    return f'<div style="border-left: 3px solid {colour}; padding: 2px 8px">{html.escape(message)}</div>'


class TemperatureExplorer(widgets.VBox):
    """A temperature slider over a bar chart of the top_n most likely next tokens.

    `logits` is one position's scores over the vocabulary; `token_label(id)` gives a token's text;
    `softmax(logits, temperature)` turns them into probabilities (the course's reference by default).
    """

    def __init__(
        self,
        logits,
        token_label: Callable[[int], str],
        temperature: float = 1.0,
        top_n: int = 12,
        softmax: Callable | None = None,
        title: str = "",
    ):
        logits = torch.as_tensor(logits).detach().cpu()
        if logits.dim() != 1 or logits.numel() == 0:
            raise ValueError(
                f"logits must be a non-empty 1-D tensor over the vocabulary, got shape "
                f"{tuple(logits.shape)}; from a model output of shape (batch, sequence, vocab) "
                "pass logits[0, -1]"
            )
        logits = logits.float()
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise ValueError("logits contain NaN or +inf; check the model output")
        if torch.isneginf(logits).all():
            raise ValueError("all logits are -inf, so no token can be picked")
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        self.logits = logits
        self.token_label = token_label
        self.softmax = softmax or softmax_with_temperature
        self.top_n = min(top_n, logits.numel())

        self.slider = widgets.FloatSlider(
            value=self._checked(temperature),
            min=MIN_TEMPERATURE,
            max=MAX_TEMPERATURE,
            step=0.05,
            continuous_update=True,
            description="temperature",
            readout_format=".2f",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"),
        )
        # One grey bar after the top_n holds all the other tokens together: at a high temperature
        # the top bars shrink to slivers, and this bar shows where their probability went.
        self.n_others = logits.numel() - self.top_n
        positions = list(range(self.top_n + (1 if self.n_others else 0)))
        bars = [go.Bar(y=positions[: self.top_n], orientation="h", marker_color="#6a8fd8",
                       textposition="auto", hovertemplate="%{customdata}<extra></extra>")]
        if self.n_others:
            bars.append(go.Bar(y=positions[self.top_n:], orientation="h", marker_color="#b0b0b0",
                               textposition="auto", hovertemplate="all other tokens: %{x:.4f}<extra></extra>"))
        self.figure = go.FigureWidget(
            bars,
            layout=go.Layout(
                title_text=html.escape(title),
                height=90 + 26 * len(positions),
                showlegend=False,
                margin=dict(l=10, r=20, t=40 if title else 10, b=40),
                # Fixed 0..1 axis: the bars visibly grow and shrink instead of being rescaled away.
                xaxis=dict(range=[0, 1], fixedrange=True, title_text="probability"),
                # Bars sit at positions 0..top_n-1 with the labels as tick text, so two tokens that
                # print the same (e.g. two partial bytes) still get their own bar.
                yaxis=dict(
                    tickmode="array",
                    tickvals=positions,
                    autorange="reversed",
                    fixedrange=True,
                    automargin=True,
                    tickfont=dict(family="monospace"),
                ),
            ),
        )
        self.stats = widgets.HTML()
        self.notice = widgets.HTML()
        super().__init__([self.slider, self.figure, self.stats, self.notice])
        self.slider.observe(lambda change: self._redraw(), names="value")
        self._redraw()

    @property
    def temperature(self) -> float:
        return self.slider.value

    @temperature.setter
    def temperature(self, value: float):
        self.slider.value = self._checked(value)

    @property
    def probabilities(self) -> torch.Tensor:
        """The full next-token distribution the chart currently shows."""
        return self._probabilities

    @staticmethod
    def _checked(temperature) -> float:
        temperature = float(temperature)
        if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:  # also rejects NaN
            raise ValueError(
                f"temperature must be between {MIN_TEMPERATURE} and {MAX_TEMPERATURE}, got {temperature}. "
                "At 0 softmax is undefined; greedy decoding is argmax."
            )
        return temperature

    def _distribution(self) -> tuple[torch.Tensor, str]:
        """The chosen softmax's probabilities and "", or the reference's and a notice saying why."""
        name = getattr(self.softmax, "__name__", "softmax")
        fallback = "This chart uses the course's reference softmax instead."
        try:
            # A clone, so a softmax that edits its input in place cannot corrupt the logits.
            probabilities = self.softmax(self.logits.clone(), self.temperature)
        except NotImplementedError:
            notice = notice_html(f"Your {name} is not implemented yet. {fallback}", INFO_COLOUR)
        except Exception as error:  # the learner's code: report it, keep the widget alive
            message = f"⚠ Your {name} raised {type(error).__name__}: {error}. {fallback}"
            notice = notice_html(message, WARNING_COLOUR)
        else:
            problem = distribution_problem(probabilities, self.logits.numel())
            if not problem:
                return probabilities.detach().float(), ""
            message = f"⚠ Your {name} did not return a probability distribution: {problem}. {fallback}"
            notice = notice_html(message, WARNING_COLOUR)
        return softmax_with_temperature(self.logits, self.temperature), notice

    def _redraw(self):
        probabilities, notice = self._distribution()
        self._probabilities = probabilities
        top_probabilities, top_ids = torch.topk(probabilities, self.top_n)
        top_probabilities, top_ids = top_probabilities.tolist(), top_ids.tolist()
        # Escaped because plotly reads tick text as HTML, and tokens like "<b" or "<|im_end|>" exist.
        labels = [html.escape(make_visible(self.token_label(token_id))) for token_id in top_ids]
        with self.figure.batch_update():
            bars = self.figure.data[0]
            bars.x = top_probabilities
            bars.text = [f"{p:.1%}" for p in top_probabilities]
            bars.customdata = [
                f"{label} (id {token_id}): {p:.4f}"
                for label, token_id, p in zip(labels, top_ids, top_probabilities)
            ]
            if self.n_others:
                rest = max(0.0, 1.0 - sum(top_probabilities))
                self.figure.data[1].x = [rest]
                self.figure.data[1].text = [f"{rest:.1%}"]
                labels = labels + [f"all other {self.n_others:,}"]
            self.figure.layout.yaxis.ticktext = labels
        self.stats.value = (
            f"top token: <b>{top_probabilities[0]:.1%}</b> · "
            f"the {self.top_n} shown: <b>{sum(top_probabilities):.1%}</b> · "
            f"entropy: <b>{entropy_bits(probabilities):.2f} bits</b>"
        )
        self.notice.value = notice
