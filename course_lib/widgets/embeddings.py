"""EmbeddingMap: words' input-embedding vectors, squeezed from hundreds of dimensions to a 2-D map.

The squeeze is PCA: centre the vectors, keep the two directions along which they spread the most
(the top two right singular vectors), and place each word by its coordinates along them. Those
directions depend on which words are on the map, so the map is recomputed whenever a word is added
or removed, and its title says how much of the words' spread the two directions keep.
"""
from __future__ import annotations

import html
from typing import Callable, Iterable

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.notice import INFO_COLOUR, WARNING_COLOUR, notice_html
from course_lib.widgets.tokens import make_visible
from course_lib.widgets.static import VBox

UNGROUPED = "other"


def pca_2d(vectors: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(n, 2) coordinates of n vectors along their top two principal directions, and the share of
    their variance those two directions keep (1.0 when the vectors do not vary at all)."""
    centred = vectors - vectors.mean(dim=0)
    _, singular_values, directions = torch.linalg.svd(centred, full_matrices=False)
    coordinates = centred @ directions[:2].T
    # A direction's sign is arbitrary and SVD may flip it from one call to the next, mirroring the
    # map; fixing the first word on the positive side keeps the picture steady as words are added.
    coordinates = coordinates * torch.where(coordinates[0] < 0, -1.0, 1.0)
    variance = singular_values**2
    total = variance.sum().item()
    return coordinates, (variance[:2].sum().item() / total if total > 0 else 1.0)


class EmbeddingMap(VBox):
    """A text box (Enter or "Add" adds the word), a status line, and the PCA map of the words so far.

    `embeddings` is the (vocabulary, dim) input-embedding table, `encode(word)` gives the word's token
    ids, `token_label(id)` a token's text. A word of several tokens is placed at the mean of their
    vectors. `groups` maps words to a group name, drawn in its own colour.
    """

    def __init__(
        self,
        embeddings,
        encode: Callable[[str], list[int]],
        token_label: Callable[[int], str],
        words: Iterable[str] = (),
        groups: dict[str, str] | None = None,
    ):
        embeddings = torch.as_tensor(embeddings).detach()
        if embeddings.dim() != 2 or embeddings.shape[1] < 2:
            raise ValueError(f"embeddings must be a (vocabulary, dim) table with dim >= 2, got shape "
                             f"{tuple(embeddings.shape)}; for SmolLM2 pass smol.model.embed.weight")
        self.embeddings = embeddings
        self.encode = encode
        self.token_label = token_label
        self.groups = dict(groups or {})
        self._token_ids: dict[str, list[int]] = {}  # in the order the words were added
        self._vectors: dict[str, torch.Tensor] = {}
        self._points: dict[str, tuple[float, float]] = {}
        self._explained_variance: float | None = None

        self.text = widgets.Text(placeholder="a word, e.g. ' queen' (with its leading space)",
                                 layout=widgets.Layout(width="260px"))
        self.add_button = widgets.Button(description="Add", button_style="primary")
        self.remove_button = widgets.Button(description="Remove")
        self.status = widgets.HTML()
        for word in words:
            self._store(word)
        self._project()
        # The first words go into the figure as it is created: plotly's FigureWidget shown inside a
        # VBox keeps only the last of the updates made before it is displayed.
        traces, title = self._traces()
        self.figure = figure_widget(
            [go.Scatter(name=name, mode="markers+text", textposition="top center", marker=dict(size=9),
                        hovertemplate="%{customdata}<extra></extra>", **data) for name, data in traces.items()],
            layout=go.Layout(
                title_text=title, height=520, margin=dict(l=10, r=10, t=50, b=10), showlegend=bool(self.groups),
                # Equal scales on both axes: distances on the map are distances between projections.
                xaxis=dict(title_text="principal direction 1", zeroline=False),
                yaxis=dict(title_text="principal direction 2", zeroline=False, scaleanchor="x"),
            ),
        )
        super().__init__([widgets.HBox([self.text, self.add_button, self.remove_button]), self.status, self.figure, FitWidth()])
        self.add_button.on_click(lambda button: self._from_box(self.add_word))
        self.remove_button.on_click(lambda button: self._from_box(self.remove_word))
        # ipywidgets 8 deprecates Text.on_submit, but its front end still sends this message on Enter.
        self.text.on_msg(self._on_text_message)

    @property
    def words(self) -> list[str]:
        """The words on the map, in the order they were added."""
        return list(self._vectors)

    @property
    def points(self) -> dict[str, tuple[float, float]]:
        """Each word's (x, y) on the map; empty while fewer than 2 words are on it."""
        return dict(self._points)

    @property
    def explained_variance(self) -> float | None:
        """The share (0 to 1) of the words' variance the 2-D map keeps; None below 2 words."""
        return self._explained_variance

    def add_word(self, word: str) -> None:
        """Put `word` on the map; ValueError (and no change) for empty, whitespace-only or repeated words."""
        token_ids = self._store(word)
        self._redraw()
        message = (f"Added {word!r}: 1 token." if len(token_ids) == 1 else
                   f"Added {word!r}: {len(token_ids)} tokens ({self._pieces(word)}), placed at the "
                   "mean of their vectors.")
        self.status.value = notice_html(message, INFO_COLOUR)

    def remove_word(self, word: str) -> None:
        """Take `word` off the map; ValueError (and no change) if it is not on it."""
        if word not in self._vectors:
            raise ValueError(f"{word!r} is not on the map; the words are: "
                             f"{', '.join(map(repr, self._vectors)) or 'none yet'}")
        del self._vectors[word], self._token_ids[word]
        self._redraw()
        self.status.value = notice_html(f"Removed {word!r}.", INFO_COLOUR)

    def _store(self, word) -> list[int]:
        """Look `word` up and keep its vector (mean of its tokens' rows); its token ids."""
        token_ids = self._token_ids_of(word)
        self._token_ids[word] = token_ids
        self._vectors[word] = self.embeddings[token_ids].double().mean(dim=0)
        return token_ids

    def _token_ids_of(self, word) -> list[int]:
        if not isinstance(word, str):
            raise ValueError(f"a word must be text, got {type(word).__name__}")
        if not word.strip():
            raise ValueError("Type a word first: empty or blank input has no embedding to show.")
        if word in self._vectors:
            raise ValueError(f"{word!r} is already on the map.")
        token_ids = list(self.encode(word))
        if not token_ids:
            raise ValueError(f"{word!r} encodes to no tokens, so it has no embedding.")
        vocabulary = len(self.embeddings)
        if not all(0 <= i < vocabulary for i in token_ids):
            raise ValueError(f"{word!r} encodes to ids {token_ids}, outside the embedding table's "
                             f"{vocabulary} rows: is `encode` the tokenizer of this model?")
        return token_ids

    def _on_text_message(self, widget, content, buffers) -> None:
        if content.get("event") == "submit":
            self._from_box(self.add_word)

    def _from_box(self, action: Callable[[str], None]) -> None:
        """Run add_word or remove_word on the text box's word; show a refusal in the status line."""
        try:
            action(self.text.value)
        except ValueError as error:
            self.status.value = notice_html(str(error), WARNING_COLOUR)
        else:
            self.text.value = ""

    def _pieces(self, word: str) -> str:
        return "|".join(make_visible(self.token_label(i)) for i in self._token_ids[word])

    def _label(self, word: str) -> str:
        n_tokens = len(self._token_ids[word])
        return html.escape(make_visible(word) + (f" ({n_tokens} tokens)" if n_tokens > 1 else ""), quote=False)

    def _project(self) -> None:
        """The 2-D PCA coordinates of the words on the map (none below 2 words)."""
        words = self.words
        if len(words) >= 2:
            coordinates, self._explained_variance = pca_2d(torch.stack([self._vectors[w] for w in words]))
            self._points = {w: (float(x), float(y)) for w, (x, y) in zip(words, coordinates.tolist())}
        else:
            self._points, self._explained_variance = {}, None

    def _traces(self) -> tuple[dict[str, dict], str]:
        """Each group's trace data (name -> x, y, text, customdata, showlegend) and the title."""
        traces = {}
        for name in dict.fromkeys([*self.groups.values(), UNGROUPED]):
            members = [w for w in self._points if self.groups.get(w, UNGROUPED) == name]
            traces[name] = dict(
                x=[self._points[w][0] for w in members],
                y=[self._points[w][1] for w in members],
                text=[self._label(w) for w in members],
                customdata=[f"{self._label(w)}<br>tokens: {html.escape(self._pieces(w), quote=False)}"
                            for w in members],
                showlegend=bool(members) and bool(self.groups),
            )
        words = self.words
        if self._explained_variance is not None:
            title = (f"{len(words)} words in 2-D: the map keeps {self._explained_variance:.0%} of their spread "
                     f"(PCA of {self.embeddings.shape[1]}-dimensional vectors)")
        else:
            title = f"Add at least 2 words to draw the map ({len(words)} so far)."
        return traces, html.escape(title, quote=False)

    def _redraw(self) -> None:
        self._project()
        traces, title = self._traces()
        with self.figure.batch_update():
            for trace in self.figure.data:
                trace.update(**traces[trace.name])
            self.figure.layout.title.text = title
