"""AttentionMap: one layer's and one head's real attention weights as a heatmap, layer and head selectable.

Row i is the token doing the looking, column j the token looked at; each row sums to 1, and the
empty upper triangle is the causal rule (no token may look ahead).
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.tokens import make_visible
from course_lib.widgets.static import VBox


class AttentionMap(VBox):
    """`attentions`: one (heads, queries, keys) tensor per layer; `labels`: one string per token."""

    def __init__(self, attentions: list[torch.Tensor], labels: list[str], layer: int = 0, head: int = 0):
        if not attentions:
            raise ValueError("no attention weights given: run the model with capture first")
        shape = tuple(attentions[0].shape)
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] != len(labels):
            raise ValueError(f"expected per-layer tensors of shape (heads, {len(labels)}, {len(labels)}) "
                             f"for {len(labels)} labels, got {shape}")
        self.attentions = attentions
        # Position numbers keep repeated tokens apart on the axes.
        self.labels = [f"{i}:{html.escape(make_visible(label), quote=False)}" for i, label in enumerate(labels)]
        self.layer_slider = widgets.IntSlider(value=layer, min=0, max=len(attentions) - 1,
                                              description="layer", continuous_update=True)
        self.head_slider = widgets.IntSlider(value=head, min=0, max=shape[0] - 1,
                                             description="head", continuous_update=True)
        size = max(320, 28 * len(labels) + 140)
        self.figure = figure_widget(
            go.Heatmap(x=self.labels, y=self.labels, zmin=0, zmax=1, colorscale="Blues",
                       hovertemplate="%{y} looks at %{x}: %{z:.3f}<extra></extra>"),
            layout=go.Layout(width=size + 80, height=size, margin=dict(l=10, r=10, t=40, b=10),
                             xaxis=dict(side="top", tickangle=-60, automargin=True),
                             yaxis=dict(autorange="reversed", automargin=True)),
        )
        super().__init__([widgets.HBox([self.layer_slider, self.head_slider]), self.figure, FitWidth()])
        for slider in (self.layer_slider, self.head_slider):
            slider.observe(lambda change: self._redraw(), names="value")
        self._redraw()

    @property
    def weights(self) -> torch.Tensor:
        """The (queries, keys) matrix currently shown."""
        return self.attentions[self.layer_slider.value][self.head_slider.value]

    def _redraw(self):
        with self.figure.batch_update():
            self.figure.data[0].z = self.weights.tolist()
            # automargin on the container: the title stays clear of the tilted token labels above the grid
            self.figure.layout.title = dict(text=f"layer {self.layer_slider.value}, head {self.head_slider.value}",
                                            automargin=True, yref="container", y=1, yanchor="top")
