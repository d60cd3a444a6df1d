"""AdvantageExplorer (notebook E5): drag a baseline over real rollouts and watch advantages flip.

Each bar is one rollout's advantage, its reward minus the baseline: above zero the update
reinforces it (green), below zero it suppresses it (red). The button sets the baseline to the
group's own average, GRPO's choice, and shows the learner's `grpo_advantages` for the group.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.static import VBox

REINFORCE, SUPPRESS, NEUTRAL = "#2da44e", "#cf222e", "#8c959f"


def slider_grid(rewards: Sequence[float]) -> tuple[float, float, float]:
    """The baseline slider's min, max and step. A browser snaps the slider to min + k * step, so the
    group's mean lies on that grid exactly, and the step is finer than the smallest gap between
    the rewards and the mean: snapping never turns a reinforced rollout into a suppressed one."""
    mean = sum(rewards) / len(rewards)
    points = [*rewards, mean]
    gaps = [abs(a - b) for a in points for b in points if abs(a - b) > 1e-9]
    step = min(0.01, max(1e-6, 10 ** math.floor(math.log10(min(gaps) / 10)))) if gaps else 0.01
    below = math.ceil((mean - min(rewards) + 0.5) / step)
    above = math.ceil((max(rewards) - mean + 0.5) / step)
    return mean - below * step, mean + above * step, step


class AdvantageExplorer(VBox):
    """labels: what each rollout wrote; rewards: what each scored; advantages_fn: grpo_advantages's signature."""

    def __init__(self, labels: Sequence[str], rewards: Sequence[float], advantages_fn: Callable,
                 baseline: float | None = None, title: str = "Advantage = reward − baseline"):
        if not labels or len(labels) != len(rewards):
            raise ValueError(f"need one reward per rollout, at least one: got {len(labels)} labels and {len(rewards)} rewards")
        self.labels = [str(label) for label in labels]
        self.rewards = [float(r) for r in rewards]
        if not all(math.isfinite(r) for r in self.rewards):
            raise ValueError(f"rewards must be finite numbers, got {self.rewards}")
        self.advantages_fn = advantages_fn
        mean = sum(self.rewards) / len(self.rewards)
        low, high, step = slider_grid(self.rewards)
        self.decimals = max(2, -math.floor(math.log10(step)))
        self.slider = widgets.FloatSlider(value=mean if baseline is None else baseline, min=low, max=high,
                                          step=step, readout_format=f".{self.decimals}f", description="baseline",
                                          continuous_update=True, layout={"width": "420px"})
        self.button = widgets.Button(description="the group's average (GRPO)", layout={"width": "220px"})
        self.caption = widgets.HTML()
        # Built with its data, before display: a FigureWidget inside a box keeps what it was made with.
        self.figure = figure_widget(
            data=[go.Bar(x=[f"{i + 1}: {html.escape(label, quote=False)}" for i, label in enumerate(self.labels)],
                         y=self.advantages, marker_color=self.colors, text=self.verdicts, textposition="outside")],
            layout={"title": title, "yaxis_title": "advantage", "height": 360, "margin": {"t": 50, "b": 90}})
        self.slider.observe(lambda change: self._redraw(), names="value")
        self.button.on_click(lambda _: self.use_group_mean())
        super().__init__([widgets.HBox([self.slider, self.button]), self.caption, self.figure, FitWidth()])
        self._redraw()

    @property
    def baseline(self) -> float:
        return float(self.slider.value)

    def set_baseline(self, value: float) -> None:
        """Move the slider (clamped to its range) and redraw."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"the baseline must be a finite number, got {value!r}")
        self.slider.value = min(max(float(value), self.slider.min), self.slider.max)

    def use_group_mean(self) -> None:
        self.set_baseline(sum(self.rewards) / len(self.rewards))

    @property
    def advantages(self) -> list[float]:
        return [r - self.baseline for r in self.rewards]

    @property
    def verdicts(self) -> list[str]:
        return ["reinforce" if a > 1e-9 else "suppress" if a < -1e-9 else "no change" for a in self.advantages]

    @property
    def colors(self) -> list[str]:
        return [{"reinforce": REINFORCE, "suppress": SUPPRESS}.get(v, NEUTRAL) for v in self.verdicts]

    def group_advantages(self) -> list[float] | str:
        """The learner's grpo_advantages for this one group, or why they could not be computed."""
        try:
            return [float(a) for a in self.advantages_fn(torch.tensor(self.rewards), len(self.rewards))]
        except NotImplementedError:
            return "your grpo_advantages is not implemented yet"
        except Exception as error:  # the learner's code: say what it raised, keep the widget working
            return f"your grpo_advantages raised {type(error).__name__}: {error}"

    def _redraw(self) -> None:
        with self.figure.batch_update():
            bar = self.figure.data[0]
            bar.y, bar.marker.color, bar.text = self.advantages, self.colors, self.verdicts
        counts = {v: self.verdicts.count(v) for v in ("reinforce", "suppress", "no change")}
        group = self.group_advantages()
        shown = group if isinstance(group, str) else "[" + ", ".join(f"{a:+.2f}" for a in group) + "]"
        self.caption.value = (f"baseline {self.baseline:.{self.decimals}f}: {counts['reinforce']} reinforced, "
                              f"{counts['suppress']} suppressed, {counts['no change']} unchanged. "
                              f"GRPO (group mean, divided by the group's spread): {html.escape(shown, quote=False)}")
