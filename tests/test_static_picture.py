"""Every widget carries a static picture of its state in its display data: the real chart, redrawn
from its own data, for a page that cannot run the widget."""
from __future__ import annotations

import base64
import json
import re

import plotly.graph_objects as go
import pytest
import torch
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from course_lib.exercises.rl import grpo_advantages
from course_lib.experiments import RESULTS
from course_lib.train.live import LiveLines
from course_lib.widgets import ChinchillaExplorer, TemperatureExplorer, TokenizerBox, bytes_tokenizer
from course_lib.widgets.advantage import SUPPRESS, AdvantageExplorer
from course_lib.widgets.cost import CostCalculator
from course_lib.widgets.leash import LeashDial
from course_lib.widgets.static import picture, redraw

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def shown(widget) -> dict:
    """What IPython puts in widget's display data, after checking it carries the live view."""
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # anywidget gives (data, metadata)
    assert data[WIDGET_VIEW]["model_id"] == widget.model_id
    return data


def pictured_pngs(widget) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', shown(widget)["text/html"])]


def test_a_chart_is_redrawn_from_its_own_data_and_layout():
    fig = make_subplots(rows=1, cols=2, subplot_titles=["accuracy", "drift"])
    fig.add_trace(go.Bar(x=["a", "b", "c"], y=[0.2, 0.5, 0.9], name="honest", marker_color="#2da44e",
                         error_y={"type": "data", "array": [0.1, 0.1, 0.1]}, text=["x", "y", "z"]), row=1, col=1)
    fig.add_trace(go.Scatter(x=[1, 10, 100], y=[3, 2, 1], mode="lines", name="KL", line_color="rgb(207, 34, 46)"),
                  row=1, col=2)
    fig.add_hline(y=0.5, line_dash="dash", row=1, col=1)
    fig.update_xaxes(type="log", title_text="KL weight", row=1, col=2)
    fig.update_layout(title="The leash", width=800, height=400)
    drawing = redraw(fig)
    left, right = drawing.axes
    assert left.get_position().x1 < right.get_position().x0  # two panels, side by side as plotly puts them
    bars = [p for p in left.patches]
    assert [round(b.get_height(), 6) for b in bars] == [0.2, 0.5, 0.9]
    assert {to_hex(b.get_facecolor()) for b in bars} == {"#2da44e"}
    assert [t.get_text() for t in left.get_xticklabels()] == ["a", "b", "c"]
    assert right.get_xscale() == "log" and right.get_xlabel() == "KL weight"
    (line,) = [ln for ln in right.lines]
    assert list(line.get_ydata()) == [3, 2, 1] and to_hex(line.get_color()) == "#cf222e"
    assert any(ln.get_ydata()[0] == 0.5 and ln.get_linestyle() == "--" for ln in left.lines)  # the hline
    texts = {t.get_text() for t in drawing.texts}
    assert {"The leash", "accuracy", "drift"} <= texts
    assert [t.get_text() for t in drawing.legends[0].get_texts()] == ["honest", "KL"]
    png = base64.b64decode(re.search(r"base64,([^\"]+)", picture(go.FigureWidget(fig))).group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_heatmap_keeps_its_values_and_labels():
    z = [[0.1, 0.9], [0.5, 0.5]]
    drawing = redraw(go.Figure(go.Heatmap(z=z, x=["the", "cat"], y=["the", "cat"], colorscale="Blues")))
    (image,) = drawing.axes[0].images
    assert image.get_array().tolist() == z
    assert to_hex(image.get_cmap()(0.0)) == "#f7fbff" and to_hex(image.get_cmap()(1.0)) == "#08306b"  # plotly's Blues
    assert [t.get_text() for t in drawing.axes[0].get_xticklabels()] == ["the", "cat"]


def test_the_picture_follows_the_widget_state():
    w = AdvantageExplorer(["408", "388", "41"], [1.0, 0.45, 0.05], grpo_advantages)
    (before,) = pictured_pngs(w)
    w.set_baseline(2.0)  # above every reward (clamped to the slider's top): all three suppressed
    (after,) = pictured_pngs(w)
    assert before != after
    assert {to_hex(b.get_facecolor()) for b in redraw(w.figure).axes[0].patches} == {SUPPRESS}
    assert "0 reinforced, 3 suppressed" in shown(w)["text/html"]  # the caption beside it
    assert f"baseline</b> {w.baseline:.{w.decimals}f}" in shown(w)["text/html"]  # its readout


def test_every_kind_of_widget_carries_a_picture():
    sweep = json.loads((RESULTS / "rl_kl.json").read_text())
    live = LiveLines({"train": 0, "validation": 0}, ["loss"], "a run", ["loss"])
    live.update({"train": ([0, 1, 2], [3.0, 2.5, 2.2])})
    charts = {"LeashDial": LeashDial(sweep), "ChinchillaExplorer": ChinchillaExplorer(),
              "TemperatureExplorer": TemperatureExplorer(torch.tensor([2.0, 1.0, 0.5]), "abc".__getitem__),
              "LiveLines": live.view}
    for name, widget in charts.items():
        pngs = pictured_pngs(widget)
        assert pngs and all(p[:4] == b"\x89PNG" and len(p) > 5000 for p in pngs), name
    calculator = CostCalculator()
    assert "GPU-hours" in shown(calculator)["text/html"]  # no chart: its caption and inputs
    box = TokenizerBox({"raw bytes": bytes_tokenizer}, text="hé")
    html = shown(box)["text/html"]
    assert html.count("<span") == 3 and "(3 tokens)" in html  # h, and é as two bytes


def test_a_live_curve_is_pictured_again_when_its_run_ends(monkeypatch):
    import IPython.display

    from course_lib.train.loop import train_steps

    class Handle:
        updates = []

        def update(self, view):
            self.updates.append(shown(view)["text/html"])

    monkeypatch.setattr(IPython.display, "display", lambda view, display_id=None: Handle())
    weight = torch.nn.Parameter(torch.tensor([3.0]))
    plot = LiveLines({"loss": 0}, ["loss"], "a run", ["loss"])
    train_steps([weight], lambda _: ((weight ** 2).sum(), {}), iter(lambda: None, 1), steps=12, lr=0.1,
                eval_at_start=False, plot=plot, progress=False)
    (final,) = Handle.updates  # once, at the end: the picture now holds all 12 steps
    (line,) = redraw(plot.figure).axes[0].lines
    assert len(line.get_xdata()) == 12 and "data:image/png" in final
