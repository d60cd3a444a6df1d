"""TemperatureExplorer: a model's real next-token distribution under a temperature slider.

The learner's own `softmax_with_temperature` can be plugged in; if it is missing or returns
something that is not a probability distribution, the chart falls back to the course's reference
and says so in the widget, so a half-finished exercise never breaks the notebook. With
`filters=True` it adds top-k and top-p sliders, and with `sampler=` a button that draws tokens
with the learner's `sample_next_token`, under the same fallback rule.
"""
from __future__ import annotations

import html
import math
import operator
from typing import Callable

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.widgets.notice import INFO_COLOUR, WARNING_COLOUR, notice_html
from course_lib.exercises.onramp import softmax_with_temperature
from course_lib.exercises.lifecycle import (
    checked_logits,
    filter_probabilities,
    sample_next_token,
    sampling_probabilities,
)
from course_lib.widgets.tokens import make_visible
from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.static import VBox

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 3.0
MAX_TOP_K = 100  # the top-k slider's range is 0 (off) to this
MIN_TOP_P = 0.05  # the top-p slider's range is this to 1 (off)
SUM_TOLERANCE = 1e-4


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


class TemperatureExplorer(VBox):
    """A temperature slider over a bar chart of the top_n most likely next tokens.

    `logits` is one position's scores over the vocabulary; `token_label(id)` gives a token's text;
    `softmax(logits, temperature)` turns them into probabilities (the course's reference by default).
    `filters=True` adds top-k and top-p sliders: the bars then show the distribution sampling draws
    from, with the tokens the filters cut marked and at 0. `sampler(logits, temperature, top_k,
    top_p, generator)` (a learner's `sample_next_token`) adds a "Draw 10" button.
    """

    def __init__(
        self,
        logits,
        token_label: Callable[[int], str],
        temperature: float = 1.0,
        top_n: int = 12,
        softmax: Callable | None = None,
        title: str = "",
        filters: bool = False,
        sampler: Callable | None = None,
    ):
        logits = checked_logits(logits).cpu().float()
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        self.logits = logits
        self.token_label = token_label
        self.softmax = softmax or softmax_with_temperature
        self.sampler = sampler
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
        self.figure = figure_widget(
            bars,
            layout=go.Layout(
                title_text=html.escape(title, quote=False),
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
        self._softmax_notice = self._sampler_notice = ""
        controls = [self.slider]
        self.top_k_slider = self.top_p_slider = None
        if filters:
            self.top_k_slider = widgets.IntSlider(value=0, min=0, max=MAX_TOP_K, description="top-k (0 = off)",
                                                  continuous_update=True, style={"description_width": "initial"})
            self.top_p_slider = widgets.FloatSlider(value=1.0, min=MIN_TOP_P, max=1.0, step=0.05,
                                                    description="top-p (1 = off)", readout_format=".2f",
                                                    continuous_update=True, style={"description_width": "initial"})
            controls.append(widgets.HBox([self.top_k_slider, self.top_p_slider]))
        self.draw_button = widgets.Button(description="Draw 10", tooltip="draw 10 tokens with your sampler")
        self.draws = widgets.HTML()
        self._clicks = 0  # each click draws with the next seed: new tokens, the same on every rerun
        self.draw_button.on_click(lambda button: self._draw_clicked())
        drawing = [widgets.HBox([self.draw_button, self.draws])] if sampler is not None else []
        super().__init__([*controls, self.figure, self.stats, *drawing, self.notice, FitWidth()])
        for control in (self.slider, self.top_k_slider, self.top_p_slider):
            if control is not None:
                control.observe(lambda change: self._redraw(), names="value")
        self._redraw()

    @property
    def temperature(self) -> float:
        return self.slider.value

    @temperature.setter
    def temperature(self, value: float):
        self.slider.value = self._checked(value)

    @property
    def top_k(self) -> int:
        """How many of the most likely tokens sampling keeps; 0 means no top-k filter."""
        return self.top_k_slider.value if self.top_k_slider else 0

    @top_k.setter
    def top_k(self, value: int):
        self._filter_slider("top_k").value = self._checked_top_k(value)

    @property
    def top_p(self) -> float:
        """The probability mass the top-p nucleus keeps; 1.0 means no top-p filter."""
        return self.top_p_slider.value if self.top_p_slider else 1.0

    @top_p.setter
    def top_p(self, value: float):
        self._filter_slider("top_p").value = self._checked_top_p(value)

    @property
    def probabilities(self) -> torch.Tensor:
        """The full next-token distribution the chart currently shows (after the filters, if any)."""
        return self._probabilities

    def draw(self, n: int = 10, seed: int = 0) -> list[int]:
        """n tokens drawn with the sampler (the course's reference if none was given or yours fails) at
        the current settings, with a generator seeded with `seed`; also shown under the chart."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        tokens, self._sampler_notice = self._draws(n, seed)
        settings = ", ".join(f"{name} {value:g}" for name, value in self._sampling_settings().items()
                             if value is not None)
        labels = " · ".join(html.escape(make_visible(self.token_label(token)), quote=False) for token in tokens)
        self.draws.value = f"<span style='font-family: monospace'>{labels}</span> ({settings}, seed {seed})"
        self.notice.value = self._softmax_notice + self._sampler_notice
        return tokens

    def _filter_slider(self, name: str) -> widgets.Widget:
        slider = getattr(self, f"{name}_slider")
        if slider is None:
            raise ValueError(f"this explorer has no {name} control: create it with filters=True")
        return slider

    @staticmethod
    def _checked_top_k(top_k) -> int:
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 0 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be a whole number from 0 (off) to {MAX_TOP_K}, got {top_k!r}")
        return top_k

    @staticmethod
    def _checked_top_p(top_p) -> float:
        top_p = float(top_p)
        if not MIN_TOP_P <= top_p <= 1:  # also rejects NaN
            raise ValueError(f"top_p must be between {MIN_TOP_P} and 1.0 (off), got {top_p}")
        return top_p

    def _sampling_settings(self) -> dict:
        """The sliders as sample_next_token's arguments: None for a filter that is off."""
        return {"temperature": self.temperature, "top_k": self.top_k or None,
                "top_p": self.top_p if self.top_p < 1 else None}

    def _draws(self, n: int, seed: int) -> tuple[list[int], str]:
        """n draws with the sampler and "", or the reference's draws and a notice saying why."""
        if self.sampler is None:
            return self._reference_draws(n, seed), ""
        name = getattr(self.sampler, "__name__", "sampler")
        fallback = "These draws use the course's reference sampler instead."
        settings = self._sampling_settings()
        generator = torch.Generator().manual_seed(seed)
        try:
            # Clones, so a sampler that edits its input in place cannot corrupt the logits.
            tokens = [self.sampler(self.logits.clone(), generator=generator, **settings) for _ in range(n)]
        except NotImplementedError:
            notice = notice_html(f"Your {name} is not implemented yet. {fallback}", INFO_COLOUR)
        except Exception as error:  # the learner's code: report it, keep the widget alive
            message = f"⚠ Your {name} raised {type(error).__name__}: {error}. {fallback}"
            notice = notice_html(message, WARNING_COLOUR)
        else:
            problem = self._draws_problem(tokens, sampling_probabilities(self.logits, **settings))
            if not problem:
                return [operator.index(token) for token in tokens], ""
            notice = notice_html(f"⚠ Your {name} {problem}. {fallback}", WARNING_COLOUR)
        return self._reference_draws(n, seed), notice

    def _reference_draws(self, n: int, seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [sample_next_token(self.logits, generator=generator, **self._sampling_settings()) for _ in range(n)]

    def _draws_problem(self, tokens: list, pool: torch.Tensor) -> str:
        """Why `tokens` are not draws from `pool`'s support, or "" if they are."""
        for token in tokens:
            try:
                token_id = operator.index(token)
            except TypeError:
                return f"returned {token!r}, not a token id (an int)"
            if not 0 <= token_id < len(pool):
                return f"returned token id {token_id}, outside the vocabulary of {len(pool):,}"
            if pool[token_id] == 0:
                label = make_visible(self.token_label(token_id))
                return f"drew {label!r} (id {token_id}), which the top-k / top-p filters exclude"
        return ""

    def _draw_clicked(self):
        self.draw(seed=self._clicks)
        self._clicks += 1

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
        unfiltered, self._softmax_notice = self._distribution()
        settings = self._sampling_settings()
        probabilities = unfiltered
        if settings["top_k"] or settings["top_p"]:
            # Filtering probabilities is the same as filtering logits: softmax keeps their order.
            probabilities = filter_probabilities(unfiltered, settings["top_k"], settings["top_p"])
        self._probabilities = probabilities
        # The bars stay the most likely tokens before filtering, so the ones the filters cut show, at 0.
        top_ids = torch.topk(unfiltered, self.top_n).indices
        top_probabilities, top_ids = probabilities[top_ids].tolist(), top_ids.tolist()
        cut = [p == 0 and unfiltered[i] > 0 for p, i in zip(top_probabilities, top_ids)]
        # Escaped because plotly reads tick text as HTML, and tokens like "<b" or "<|im_end|>" exist.
        labels = [html.escape(make_visible(self.token_label(token_id)), quote=False) + (" ✂ cut" if is_cut else "")
                  for token_id, is_cut in zip(top_ids, cut)]
        with self.figure.batch_update():
            bars = self.figure.data[0]
            bars.x = top_probabilities
            bars.text = ["" if is_cut else f"{p:.1%}" for p, is_cut in zip(top_probabilities, cut)]
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
        if self.top_k_slider:
            pool = int((probabilities > 0).sum())
            self.stats.value += f" · sampling pool: <b>{pool:,}</b> of {len(probabilities):,} tokens"
        self.notice.value = self._softmax_notice + self._sampler_notice
