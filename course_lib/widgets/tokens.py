"""TokenizerBox: type text, see how each tokenizer cuts it into tokens, side by side.

All tokenizing happens here in Python; tokens.js only draws the synced `rows` and sends the
learner's edits back, so tests can drive the widget by setting `text` and reading `rows`.
"""
from __future__ import annotations

import pathlib
import re
import unicodedata
from typing import Callable, Mapping

import anywidget
import traitlets

from course_lib.widgets.static import StaticPicture, chip

Tokenizer = Callable[[str], list[tuple[int, bytes]]]

# Characters that would be invisible (or break the layout) inside a chip, and what to show instead.
VISIBLE_WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def bytes_tokenizer(text: str) -> list[tuple[int, bytes]]:
    """The "raw bytes" row: every UTF-8 byte is its own token, with the byte value as its id."""
    return [(byte, bytes([byte])) for byte in text.encode("utf-8")]


def hex_bytes(data: bytes) -> str:
    """b'\\xf0\\x9f' -> 'F0 9F'."""
    return " ".join(f"{byte:02X}" for byte in data)


def make_visible(text: str) -> str:
    """Spaces, newlines and tabs as symbols; other unprintable characters (e.g. the zero-width
    joiner inside family emoji) as their UTF-8 bytes in hex, so no token ever looks empty. A token
    that starts with a combining accent gets a dotted circle to sit on, as Unicode charts show it."""
    visible = "".join(
        VISIBLE_WHITESPACE.get(char)
        or (char if char.isprintable() else f"<{hex_bytes(char.encode('utf-8'))}>")
        for char in text
    )
    return "\u25cc" + visible if visible and unicodedata.combining(visible[0]) else visible


def display_piece(token_bytes: bytes) -> str:
    """What a chip shows: the token's text if its bytes decode on their own, else hex like <F0 9F>.

    Byte-level BPE often splits one emoji or CJK character across tokens; such a token holds part
    of a multi-byte character and has no text of its own.
    """
    try:
        return make_visible(token_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        return f"<{hex_bytes(token_bytes)}>"


def tokenize_row(name: str, tokenizer: Tokenizer, text: str) -> dict:
    """One row of the widget: the tokens of `text` and its counts, or the tokenizer's error."""
    row = {
        "name": name,
        "tokens": [],
        "n_chars": len(text),
        "n_bytes": len(text.encode("utf-8")),
        "n_tokens": None,
        "error": None,
    }
    try:
        tokens = []
        for token_id, token_bytes in tokenizer(text):
            if not isinstance(token_bytes, (bytes, bytearray)):
                raise TypeError(
                    f"a tokenizer must return (id, bytes) pairs; got a {type(token_bytes).__name__} "
                    f"piece {token_bytes!r}"
                )
            token_bytes = bytes(token_bytes)
            tokens.append(
                {"id": int(token_id), "piece": display_piece(token_bytes), "hex": hex_bytes(token_bytes)}
            )
    except Exception as error:  # a broken tokenizer must not take the other rows down with it
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    row["tokens"] = tokens
    row["n_tokens"] = len(tokens)
    return row


class TokenizerBox(StaticPicture, anywidget.AnyWidget):
    """A text box with one row of coloured token chips per tokenizer, plus character/byte/token counts.

    `tokenizers` maps a row name to a callable text -> [(token id, token bytes), ...]. Set `text`
    from Python or type in the box; `rows` and `notice` follow.
    """

    _esm = pathlib.Path(__file__).with_name("tokens.js")
    _css = pathlib.Path(__file__).with_name("tokens.css")

    text = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.List().tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(self, tokenizers: Mapping[str, Tokenizer], text: str = "", max_chars: int = 2000, **kwargs):
        if not tokenizers:
            raise ValueError("TokenizerBox needs at least one tokenizer, e.g. {'raw bytes': bytes_tokenizer}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        self.tokenizers = dict(tokenizers)
        self.max_chars = int(max_chars)
        super().__init__(**kwargs)
        self._update_rows()  # rows for the empty box; setting text below re-tokenizes via the observer
        self.text = text

    @traitlets.observe("text")
    def _on_text(self, change):
        self._update_rows()

    def _update_rows(self):
        # A browser can send a lone UTF-16 surrogate (half an emoji); it has no UTF-8 encoding.
        text = LONE_SURROGATE.sub("\ufffd", self.text)
        cut = len(text) - self.max_chars
        if cut > 0:
            text = text[: self.max_chars]
            self.notice = (
                f"Only the first {self.max_chars:,} characters are tokenized; "
                f"{cut:,} character{'s' if cut != 1 else ''} cut."
            )
        else:
            self.notice = ""
        self.rows = [tokenize_row(name, tokenizer, text) for name, tokenizer in self.tokenizers.items()]

    def summary(self, max_width: int = 100) -> str:
        """The rows as a plain-text table, for terminals and anywhere the widget cannot render."""
        first = self.rows[0]
        lines = [f"{first['n_chars']} characters, {first['n_bytes']} UTF-8 bytes"]
        if self.notice:
            lines.append(self.notice)
        name_width = max(len(row["name"]) for row in self.rows)
        for row in self.rows:
            if row["error"]:
                detail = f"error: {row['error']}"
            else:
                pieces = "|".join(token["piece"] for token in row["tokens"])
                detail = f"{row['n_tokens']:>5} tokens  {pieces}"
            line = f"{row['name']:<{name_width}}  {detail}"
            lines.append(line if len(line) <= max_width else line[: max_width - 1] + "…")
        return "\n".join(lines)

    def static_html(self) -> str:
        """The rows as chips, for a page without the widget's script (see course_lib.widgets.static)."""
        from html import escape

        lines = [f"<div><code>{escape(make_visible(self.text))}</code></div>"]
        for row in self.rows:
            chips = escape(row["error"]) if row["error"] else "".join(
                chip(t["piece"], f"background:hsl({(i * 67) % 360},70%,88%)", f"id {t['id']}")
                for i, t in enumerate(row["tokens"]))
            count = "" if row["error"] else f" ({row['n_tokens']} tokens)"
            lines.append(f"<div><b>{escape(row['name'])}</b>{count}: {chips}</div>")
        return "".join(lines)

    def __repr__(self) -> str:
        return self.summary()
