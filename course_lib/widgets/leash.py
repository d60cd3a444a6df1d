"""LeashDial (notebook E9): turn the KL weight and read what the stored sweep measured at that setting.

For each reward (the honest one, the gameable one and the learned reward model of E's RLHF part)
the bars show, at the chosen KL weight, the mean over the sweep's seeds of: held-out accuracy (for
the reward model, the gold score: the checker it never saw), mean reward (each reward on its own
scale), KL to the reference, the answers' length and the loss on the right answers ("coherence":
lower is better), with the spread across seeds as error bars (the lowest and the highest seed).
A reward the sweep did not run has no bars.
"""
from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course_lib.spread import spread
from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.static import VBox

MEASURES = (("accuracy", "held-out accuracy"), ("mean_reward", "reward (each on its own scale)"),
            ("kl_to_reference", "KL to reference"), ("answer_length", "answer length"),
            ("answer_loss", "loss on right answers"))
REWARDS = (("correct", "honest reward", "#2f6fde"), ("gameable", "gameable reward", "#d9822b"),
           ("reward model", "learned reward model", "#8250df"))


def sweep_summary(sweep: dict) -> dict:
    """(reward, KL weight) -> {measure: (mean, lowest, highest) over the seeds}."""
    summary = {}
    for reward, _, _ in REWARDS:
        for kl in sweep["kl_weights"]:
            runs = [r for r in sweep["runs"] if r["reward"] == reward and r["kl"] == kl]
            if runs:
                spreads = {key: spread([r[key] for r in runs]) for key, _ in MEASURES}
                summary[reward, kl] = {key: (s.mean, s.low, s.high) for key, s in spreads.items()}
    if not summary:
        raise ValueError("the sweep holds no runs")
    return summary


class LeashDial(VBox):
    def __init__(self, sweep: dict, value: float | None = None):
        self.summary = sweep_summary(sweep)
        self.rewards = [r for r in REWARDS if any(reward == r[0] for reward, _ in self.summary)]
        self.kl_weights = sorted({kl for _, kl in self.summary})
        self.start = {"accuracy": sweep["runs"][0]["start_accuracy"], "answer_loss": sweep["runs"][0]["start_answer_loss"]}
        if value is not None and value not in self.kl_weights:
            raise ValueError(f"the sweep has KL weights {self.kl_weights}, not {value!r}")
        self.dial = widgets.SelectionSlider(options=[(f"{kl:g}", kl) for kl in self.kl_weights],
                                            value=self.kl_weights[0] if value is None else value,
                                            description="KL weight", continuous_update=True,
                                            layout={"width": "420px"})
        # Two rows of three panels, the legend in the sixth place: five titles in one row collide.
        base = make_subplots(rows=2, cols=3, subplot_titles=[title for _, title in MEASURES],
                             horizontal_spacing=0.1, vertical_spacing=0.16)
        for reward, name, color in self.rewards:
            for panel, (key, _) in enumerate(MEASURES):
                base.add_trace(go.Bar(x=[name], y=[0], name=name, marker_color=color, showlegend=panel == 0,
                                      error_y={"type": "data", "symmetric": False, "array": [0], "arrayminus": [0]}),
                               row=panel // 3 + 1, col=panel % 3 + 1)
        base.update_layout(height=520, margin={"t": 70, "b": 20}, bargap=0.3,
                           legend={"x": 0.74, "y": 0.3, "xanchor": "left", "yanchor": "middle"},
                           title=f"Stored sweep: {len(sweep['seeds'])} seeds per setting, {sweep['steps']} GRPO steps each")
        base.update_xaxes(showticklabels=False)
        self._fill(base, self.dial.value)  # the figure starts with its data: a FigureWidget in a box keeps it
        self.figure = figure_widget(base)
        self.caption = widgets.HTML()
        self.dial.observe(lambda change: self.show(change["new"]), names="value")
        super().__init__([self.dial, self.caption, self.figure, FitWidth()])
        self.show(self.dial.value)

    def _fill(self, figure, kl: float) -> None:
        traces = iter(figure.data)
        for reward, _, _ in self.rewards:
            for key, _ in MEASURES:
                trace = next(traces)
                mean, low, high = self.summary.get((reward, kl), {}).get(key, (0.0, 0.0, 0.0))
                trace.y = [mean]
                trace.error_y.array, trace.error_y.arrayminus = [high - mean], [mean - low]

    def show(self, kl: float) -> None:
        """Set the dial to one of the sweep's KL weights and redraw."""
        if kl not in self.kl_weights:
            raise ValueError(f"the sweep has KL weights {self.kl_weights}, not {kl!r}")
        if self.dial.value != kl:
            self.dial.value = kl  # the observer calls show again
            return
        with self.figure.batch_update():
            self._fill(self.figure, kl)
        parts = []
        for reward, name, _ in self.rewards:
            if (reward, kl) in self.summary:
                s = self.summary[reward, kl]
                parts.append(f"<b>{name}</b>: accuracy {self.start['accuracy']:.2f} → {s['accuracy'][0]:.2f}, "
                             f"loss on right answers {self.start['answer_loss']:.2f} → {s['answer_loss'][0]:.2f}, "
                             f"KL {s['kl_to_reference'][0]:.3f}")
        self.caption.value = f"KL weight {kl:g}: " + "; ".join(parts)

    def values(self, reward: str, kl: float) -> dict[str, float]:
        """The mean of each measure over the seeds at one setting."""
        return {key: v[0] for key, v in self.summary[reward, kl].items()}

    def ranges(self, reward: str, kl: float) -> dict[str, tuple[float, float, float]]:
        """(mean, lowest, highest) of each measure over the seeds at one setting."""
        return dict(self.summary[reward, kl])
