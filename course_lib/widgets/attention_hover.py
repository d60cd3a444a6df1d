"""AttentionHover: hover a word of a sentence and see which earlier words it attends to.

Python runs the model once per sentence and sends every layer's and head's attention weights to the
browser as bytes (each weight rounded to a 1/255 step); attention_hover.js draws from those bytes, so
hovering, locking a word and changing layer or head never wait for the kernel.
"""
from __future__ import annotations

import pathlib

import anywidget
import torch
import traitlets

from course_lib.widgets.static import StaticPicture, chip
from course_lib.widgets.tokens import LONE_SURROGATE, display_piece, make_visible

# Any short text: the model runs on it once, so the widget learns how many layers and heads it has.
PROBE_TEXT = "Hello"
EMPTY_HINT = "Type a sentence to see which earlier words each word attends to."


class SelectionError(traitlets.TraitError, ValueError):
    """A layer, head or token position outside the widget's range. A TraitError, so that traitlets
    undoes a rejected assignment, and a ValueError, like the course's other bad-argument errors."""


def stack_attention(attentions, n_tokens: int) -> torch.Tensor:
    """One (layers, heads, queries, keys) float tensor from a capture's per-layer (heads, T, T) weights."""
    if not attentions:
        raise ValueError("the model captured no attention weights")
    stacked = torch.stack([torch.as_tensor(a).detach().float().cpu() for a in attentions])
    if stacked.ndim != 4 or tuple(stacked.shape[2:]) != (n_tokens, n_tokens):
        raise ValueError(f"expected one (heads, {n_tokens}, {n_tokens}) attention tensor per layer for "
                         f"{n_tokens} tokens, got shape {tuple(stacked.shape[1:])}")
    if not torch.isfinite(stacked).all():
        raise ValueError("the attention weights contain NaN or infinity")
    return stacked


def quantize(attention: torch.Tensor) -> bytes:
    """Weights in 0..1 as bytes round(w * 255), in the tensor's order: 4x smaller than float32 and
    still within 1/510 of the real weight, far below what a colour or a rounded percentage shows."""
    return (attention.clamp(0, 1) * 255).round().to(torch.uint8).contiguous().numpy().tobytes()


class AttentionHover(StaticPicture, anywidget.AnyWidget):
    """A sentence as token chips; hovering or tapping one shades the earlier tokens by its real attention.

    `model` needs `encode(text) -> ids`, `token_label(id) -> str` and `run_with_capture(ids) ->
    (logits, capture)` with `capture.attentions` one (heads, T, T) tensor per layer, as SmolLM has.
    `head = -1` shows the average over heads. Only the first `max_tokens` tokens are used.
    """

    _esm = pathlib.Path(__file__).with_name("attention_hover.js")
    _css = pathlib.Path(__file__).with_name("attention_hover.css")

    text = traitlets.Unicode("").tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_layers = traitlets.Int(0).tag(sync=True)
    n_heads = traitlets.Int(0).tag(sync=True)
    # Layout [layer][head][query][key], one byte per weight: see quantize().
    weights = traitlets.Bytes(b"").tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(-1).tag(sync=True)
    locked = traitlets.Int(-1).tag(sync=True)
    ignore_first = traitlets.Bool(False).tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, text: str = "", max_tokens: int = 64, layer: int = 0, head: int = -1, **kwargs):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.model = model
        self.max_tokens = int(max_tokens)
        self.labels: list[str] = []  # the model's own token texts; `tokens` holds them made visible
        self._attention = torch.zeros(0, 0, 0, 0)
        try:
            probe = list(model.encode(PROBE_TEXT))
            _, capture = model.run_with_capture(probe)
            n_layers, n_heads = stack_attention(capture.attentions, len(probe)).shape[:2]
        except Exception as error:
            raise ValueError(f"the model failed on the probe text {PROBE_TEXT!r}, so its layers and heads "
                             f"are unknown: {type(error).__name__}: {error}") from error
        # The sizes go in with layer and head, so that the validators below see them.
        super().__init__(n_layers=int(n_layers), n_heads=int(n_heads), layer=layer, head=head, **kwargs)
        self._update()  # the empty sentence; setting text below recomputes via the observer
        self.text = text

    # ---- validation ----
    def _checked_layer(self, layer: int) -> int:
        if not 0 <= layer < self.n_layers:
            raise SelectionError(f"layer must be between 0 and {self.n_layers - 1} (the model has "
                             f"{self.n_layers} layers), got {layer}")
        return layer

    def _checked_head(self, head: int) -> int:
        if not -1 <= head < self.n_heads:
            raise SelectionError(f"head must be -1 (the average over heads) or between 0 and {self.n_heads - 1} "
                             f"(the model has {self.n_heads} heads), got {head}")
        return head

    def _checked_position(self, position: int) -> int:
        if not self.tokens:
            raise SelectionError(f"there are no tokens: {self.error or 'the text is empty'}")
        if not 0 <= position < len(self.tokens):
            raise SelectionError(f"position must be between 0 and {len(self.tokens) - 1}, got {position}")
        return position

    @traitlets.validate("layer")
    def _valid_layer(self, proposal):
        return self._checked_layer(proposal["value"])

    @traitlets.validate("head")
    def _valid_head(self, proposal):
        return self._checked_head(proposal["value"])

    @traitlets.validate("locked")
    def _valid_locked(self, proposal):
        return -1 if proposal["value"] == -1 else self._checked_position(proposal["value"])

    # ---- computing the weights ----
    @traitlets.observe("text")
    def _on_text(self, change):
        self._update()

    def _update(self):
        # A browser can send a lone UTF-16 surrogate (half an emoji); it has no UTF-8 encoding.
        text = LONE_SURROGATE.sub("\ufffd", self.text)
        notice = error = ""
        try:
            ids = list(self.model.encode(text))
            cut = len(ids) - self.max_tokens
            ids = ids[: self.max_tokens]
            if cut > 0:
                notice = (f"Only the first {self.max_tokens} tokens are used; "
                          f"{cut} token{'s' if cut != 1 else ''} cut.")
            elif not ids:
                notice = EMPTY_HINT
            labels = [self.model.token_label(i) for i in ids]
            # A token holding part of a character (byte-level BPE splits emoji) shows its bytes in hex
            # when the model can tell them (SmolLM's token_bytes); its label would only say "�".
            token_bytes = getattr(self.model, "token_bytes", None)
            shown = [display_piece(token_bytes[i]) if token_bytes is not None else make_visible(label)
                     for i, label in zip(ids, labels)]
            attention = torch.zeros(self.n_layers, self.n_heads, 0, 0)
            if ids:
                _, capture = self.model.run_with_capture(ids)
                attention = stack_attention(capture.attentions, len(ids))
                if tuple(attention.shape[:2]) != (self.n_layers, self.n_heads):
                    raise ValueError(f"the model returned {attention.shape[0]} layers of {attention.shape[1]} "
                                     f"heads, but had {self.n_layers} of {self.n_heads} before")
        except Exception as failure:  # the learner's text stays; the next text is tried afresh
            error = f"{type(failure).__name__}: {failure}"
            notice, labels, shown, attention = "", [], [], torch.zeros(self.n_layers, self.n_heads, 0, 0)
        with self.hold_sync():  # one message, so the browser never sees new tokens with old weights
            self.locked = -1  # before `tokens` shrinks below the locked position
            self.labels = labels
            self._attention = attention
            self.tokens = shown
            self.weights = quantize(attention)
            self.notice = notice
            self.error = error

    # ---- the weights from Python, for tests and notebook code ----
    def matrix(self, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """The (T, T) attention weights, full precision: row = the token looking, column = looked at.

        `layer` and `head` default to the widget's current selection; head -1 averages the heads.
        """
        layer = self._checked_layer(self.layer if layer is None else layer)
        head = self._checked_head(self.head if head is None else head)
        weights = self._attention[layer]
        return weights.mean(dim=0) if head == -1 else weights[head].clone()

    def static_html(self) -> str:
        """The chips, shaded by what the locked token (else the last) attends to, for a page without
        the widget's script (see course_lib.widgets.static)."""
        from html import escape

        if not self.tokens:
            return f"<div>{escape(self.error or 'no tokens')}</div>"
        looking = self.locked if self.locked >= 0 else len(self.tokens) - 1
        row = self.matrix()[looking]
        chips = "".join(chip(token, f"background:rgba(9,105,218,{row[i].item() if i <= looking else 0:.2f})"
                             + (";outline:2px solid #cf222e" if i == looking else ""))
                        for i, token in enumerate(self.tokens))
        head = "the average over heads" if self.head == -1 else f"head {self.head}"
        return (f"<div>What token {looking} (outlined) attends to, layer {self.layer}, {head}:</div>"
                f"<div>{chips}</div>")

    def attended_by(self, position: int, layer: int | None = None, head: int | None = None,
                    top: int | None = None) -> list[tuple[int, str, float]]:
        """(position, token text, weight) for the tokens up to and including `position`, the most
        attended first: what the token at `position` looks at."""
        position = self._checked_position(position)
        row = self.matrix(layer, head)[position, : position + 1]
        order = sorted(range(position + 1), key=lambda key: row[key].item(), reverse=True)
        return [(key, self.labels[key], row[key].item()) for key in order[:top]]
