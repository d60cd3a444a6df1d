"""NextTokenGame: guess the next token, then see what SmolLM2 really predicts and what your guess costs.

Pre-training is this game played trillions of times: the model sees a prefix, puts a probability
on every token of its vocabulary, and pays -ln p(true next token) nats. The widget shows a prompt,
takes the learner's guess, and on Reveal draws the model's top tokens as bars (the guess's bar in
orange), with the guess's rank, its probability and the loss the model would pay if the guess
were the true next token.

Everything happens in Python (one forward pass per prompt, cached), so tests drive the widget with
`guess(text)`, `top_tokens()` and the `prompt` setter and read the figure and `message`.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.notice import INFO_COLOUR, WARNING_COLOUR, notice_html
from course_lib.widgets.tokens import display_piece, make_visible
from course_lib.widgets.static import VBox

# An easy case, a code case and hard ones: facts are near certain, open continuations are spread thin.
DEFAULT_PROMPTS = [
    "The capital of France is",
    "def add(a, b):\n    return",
    "Once upon a",
    "The opposite of hot is",
    "My favourite number is",
]
MAX_GUESS_CHARS = 100  # longer guesses are cut (only the first token is scored anyway)
MAX_PIECES_SHOWN = 12  # a long guess's tokens are listed up to this many
BAR_COLOUR = "#6a8fd8"
GUESS_COLOUR = "#e65100"
RESULT_COLOUR = "#2e7d32"


def format_probability(p: float) -> str:
    """73.2%, 0.41%, 0.00042%, 3.1e-09%: always a percentage, never a misleading 0.0%."""
    if p >= 0.001:
        return f"{p:.1%}"
    return f"{p * 100:.2g}%"


def _quoted(piece: str) -> str:
    return f"“{piece}”"


def _shown(text: str, limit: int = 40) -> str:
    """A guess in quotes with its spaces visible, cut with … past `limit` characters."""
    visible = make_visible(text)
    return _quoted(visible if len(visible) <= limit else visible[: limit - 1] + "…")


class NextTokenGame(VBox):
    """Guess SmolLM2's next token for a prompt; Reveal shows its top `top` tokens and scores the guess.

    `smol` is what `course_lib.models.smollm.load_smollm2()` returns; `prompts` the texts to cycle
    through with "Next prompt". The figure's traces: 0 the model's top tokens (most likely first, the
    guess's bar orange when it is among them), 1 the guess's own bar below them when it is not.
    The widget is itself the VBox to display; `.widget` returns it too.
    """

    def __init__(self, smol, prompts=DEFAULT_PROMPTS, top: int = 10):
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts must hold at least one prompt")
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 50:
            raise ValueError(f"top must be a whole number from 1 to 50, got {top!r}")
        self.smol = smol
        self.top = top
        self.prompts = [self._checked_prompt(prompt) for prompt in prompts]
        self._index = 0
        self._prompt = self.prompts[0]
        self._log_probs: dict[str, torch.Tensor] = {}  # prompt -> log-probabilities of the next token

        self.prompt_view = widgets.HTML(self._prompt_html())
        self.instructions = widgets.HTML(
            "<small>Type the word you think comes next. In the middle of a sentence a word is usually one "
            "token <i>with</i> its leading space (“␣Paris”, ␣ marks the space): a guess without a leading "
            "space is tried both with and without one, and the version that is a single token (or else ranks "
            "higher) is scored. A guess of several tokens is scored by its first token, because the model "
            "predicts one token at a time.</small>"
        )
        self.guess_box = widgets.Text(placeholder="your guess, e.g. Paris", description="your guess",
                                      style={"description_width": "initial"}, layout=widgets.Layout(width="320px"))
        self.reveal_button = widgets.Button(description="Reveal", button_style="primary",
                                            tooltip="show the model's real next-token distribution")
        self.next_button = widgets.Button(description="Next prompt", tooltip="the next prompt of the list")
        positions = list(range(top))
        # Built with its (hidden) data: a FigureWidget in a VBox keeps only the last update made
        # before it is displayed, so every later update sets everything it shows at once.
        self.figure = figure_widget(
            [
                go.Bar(y=positions, x=[0] * top, orientation="h", marker_color=[BAR_COLOUR] * top,
                       textposition="auto", hovertemplate="%{customdata}<extra></extra>", name="top tokens"),
                go.Bar(y=[], x=[], orientation="h", marker_color=GUESS_COLOUR, textposition="auto",
                       hovertemplate="%{customdata}<extra></extra>", name="your guess"),
            ],
            layout=go.Layout(
                **self._hidden_layout(),
                height=110 + 26 * (top + 1),
                showlegend=False,
                margin=dict(l=10, r=20, t=40, b=40),
                xaxis=dict(title_text="probability", fixedrange=True, rangemode="tozero"),
                yaxis=dict(tickmode="array", autorange="reversed", fixedrange=True, automargin=True,
                           tickfont=dict(family="monospace")),
            ),
        )
        self.result = widgets.HTML()
        self.notice = widgets.HTML()
        self._result_text = self._notice_text = ""
        super().__init__([
            self.prompt_view,
            self.instructions,
            widgets.HBox([self.guess_box, self.reveal_button, self.next_button]),
            self.figure,
            self.result,
            self.notice,
            FitWidth(),
        ])
        self.reveal_button.on_click(lambda button: self.guess(self.guess_box.value))
        self.next_button.on_click(lambda button: self.next_prompt())

    # The Python API -------------------------------------------------------------------------------
    @property
    def widget(self) -> widgets.VBox:
        """What to display (the game itself)."""
        return self

    @property
    def prompt(self) -> str:
        return self._prompt

    @prompt.setter
    def prompt(self, text: str):
        self._prompt = self._checked_prompt(text)
        if text in self.prompts:
            self._index = self.prompts.index(text)
        self._reset()

    @property
    def message(self) -> str:
        """The result and notice lines as plain text ("" before a reveal)."""
        return "\n".join(filter(None, [self._result_text, self._notice_text]))

    def next_prompt(self) -> str:
        """Move to the next prompt of the list (back to the first after the last); returns it."""
        self._index = (self._index + 1) % len(self.prompts)
        self._prompt = self.prompts[self._index]
        self._reset()
        return self._prompt

    def top_tokens(self) -> list[tuple[str, float]]:
        """The model's `top` most likely next tokens after the prompt, as (text, probability), most likely first."""
        log_probs = self._distribution()
        values, ids = torch.topk(log_probs, self.top)
        return [(self.smol.token_label(int(i)), math.exp(v)) for v, i in zip(values.tolist(), ids.tolist())]

    def guess(self, text: str) -> dict | None:
        """Score `text` as the next token and show it as Reveal does; None (and a message) if it is empty.

        Returns rank (1 = the model's top choice), probability, loss_nats (-ln p), token_ids (of the
        version scored), first_token_text (the token scored), scored_text (the guess as scored, e.g.
        with the leading space added), n_tokens, in_top and truncated.
        """
        if not isinstance(text, str):
            raise ValueError(f"a guess is text, got {type(text).__name__}")
        self.guess_box.value = text
        if text == "":
            self._set_result("", "")
            self._set_notice("Type your guess for the next token first (a word such as Paris), then press Reveal.",
                             INFO_COLOUR)
            self._hide_chart()
            return None
        notice = ""
        truncated = len(text) > MAX_GUESS_CHARS
        if truncated:
            notice = (f"Your guess is {len(text):,} characters long: only its first {MAX_GUESS_CHARS} are used "
                      "(and only its first token is scored).")
            text = text[:MAX_GUESS_CHARS]
        log_probs = self._distribution()
        # Rank = 1 + how many tokens the model finds strictly more likely.
        rank_of = lambda token_id: int((log_probs > log_probs[token_id]).sum()) + 1  # noqa: E731
        candidates = [text] + ([" " + text] if not text[0].isspace() else [])
        scored = []
        for candidate in candidates:
            ids = self.smol.encode(candidate)
            if ids:
                scored.append((len(ids) != 1, rank_of(ids[0]), candidate, ids))
        if not scored:  # cannot happen with byte-level BPE, but a guess must never break the widget
            self._set_notice(f"Your guess {text!r} encodes to no tokens at all; try another.", WARNING_COLOUR)
            return None
        _, rank, candidate, ids = min(scored)  # a single token first, then the better rank
        first = ids[0]
        loss = -float(log_probs[first])
        result = {
            "rank": rank, "probability": math.exp(-loss), "loss_nats": loss, "token_ids": list(ids),
            "first_token_text": self.smol.token_label(first), "scored_text": candidate, "n_tokens": len(ids),
            "in_top": rank <= self.top, "truncated": truncated,
        }
        self._show(log_probs, result, scored)
        self._set_notice(notice, WARNING_COLOUR)
        return result

    # Internals -----------------------------------------------------------------------------------
    def _checked_prompt(self, text) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a prompt must be non-empty text, got {text!r}")
        n_tokens = len(self.smol.encode(text))
        if n_tokens > self.smol.config.max_seq_len:
            raise ValueError(f"the prompt is {n_tokens:,} tokens, more than SmolLM2's context of "
                             f"{self.smol.config.max_seq_len:,}")
        return text

    def _distribution(self) -> torch.Tensor:
        """Log-probabilities (float64, vocab) of the next token after the prompt: one forward pass per prompt."""
        if self._prompt not in self._log_probs:
            logits = self.smol.logits(self.smol.encode(self._prompt))
            self._log_probs[self._prompt] = torch.log_softmax(logits.double(), dim=-1)
        return self._log_probs[self._prompt]

    def _label(self, token_id: int) -> str:
        """A token as a bar label: spaces and newlines visible, partial UTF-8 as hex, safe as HTML."""
        return html.escape(display_piece(self.smol.token_bytes[token_id]), quote=False)

    def _piece(self, token_id: int) -> str:
        return display_piece(self.smol.token_bytes[token_id])

    def _prompt_html(self) -> str:
        position = (f"prompt {self._index + 1} of {len(self.prompts)}" if self._prompt in self.prompts
                    else "your own prompt")
        return (f"<b>What comes next?</b> <small>({position})</small>"
                "<pre style='white-space: pre-wrap; font-size: 1.1em; padding: 6px; background: #f5f5f5'>"
                f"{html.escape(self._prompt, quote=False)}"
                f"<span style='background: #ffe0b2'>▁?</span></pre>")

    def _hidden_layout(self) -> dict:
        """Before a reveal: empty bars labelled "?", so the chart keeps its size and gives nothing away."""
        return dict(title_text="Make a guess and press Reveal to see the model's top tokens",
                    yaxis_tickvals=list(range(self.top)), yaxis_ticktext=["?"] * self.top, xaxis_range=[0, 1])

    def _hide_chart(self):
        with self.figure.batch_update():
            bars, guess_bar = self.figure.data
            bars.x = [0] * self.top
            bars.text = [""] * self.top
            bars.customdata = [""] * self.top
            bars.marker.color = [BAR_COLOUR] * self.top
            guess_bar.x, guess_bar.y, guess_bar.text, guess_bar.customdata = [], [], [], []
            self.figure.layout.update(self._hidden_layout())

    def _reset(self):
        """A new prompt: nothing revealed, no guess."""
        self.prompt_view.value = self._prompt_html()
        self.guess_box.value = ""
        self._set_result("", "")
        self._set_notice("", INFO_COLOUR)
        self._hide_chart()

    def _set_result(self, html_text: str, plain: str):
        self.result.value = html_text
        self._result_text = plain

    def _set_notice(self, text: str, colour: str):
        self.notice.value = notice_html(text, colour) if text else ""
        self._notice_text = text

    def _show(self, log_probs: torch.Tensor, result: dict, scored: list):
        values, ids = torch.topk(log_probs, self.top)
        probabilities, ids = [math.exp(v) for v in values.tolist()], ids.tolist()
        first = result["token_ids"][0]
        labels = [self._label(i) for i in ids]
        positions = list(range(self.top))
        guess_x, guess_y, guess_text, guess_data = [], [], [], []
        if not result["in_top"]:
            # The guess's own bar, a gap below the top list, so its size can be compared.
            guess_x, guess_y = [result["probability"]], [self.top + 0.5]
            guess_text = [format_probability(result["probability"])]
            guess_data = [f"your guess {self._label(first)} (id {first}): rank {result['rank']:,}, "
                          f"{result['probability']:.3g}"]
            positions = positions + [self.top + 0.5]
            labels = labels + [f"your guess: {self._label(first)} (#{result['rank']:,})"]
        with self.figure.batch_update():
            bars, guess_bar = self.figure.data
            bars.x = probabilities
            bars.text = [format_probability(p) for p in probabilities]
            bars.customdata = [f"{label} (id {i}): {p:.4f}" for label, i, p in zip(labels, ids, probabilities)]
            bars.marker.color = [GUESS_COLOUR if i == first else BAR_COLOUR for i in ids]
            guess_bar.x, guess_bar.y, guess_bar.text, guess_bar.customdata = guess_x, guess_y, guess_text, guess_data
            self.figure.layout.update(
                title_text=f"SmolLM2's top {self.top} next tokens (your guess in orange)",
                yaxis_tickvals=positions, yaxis_ticktext=labels,
                xaxis_range=[0, max(probabilities[0], result["probability"]) * 1.15],
            )
        self._set_result(*self._result_texts(result, scored))

    def _result_texts(self, result: dict, scored: list) -> tuple[str, str]:
        """(HTML, plain text) of the verdict and of how the guess was tokenized."""
        first = result["token_ids"][0]
        piece = _quoted(self._piece(first))
        vocab = len(self.smol.token_bytes)
        if result["rank"] == 1:
            where = f"{piece} is the model's top choice"
        else:
            where = f"{piece} is the model's choice #{result['rank']:,} of {vocab:,} tokens"
        verdict = (f"{where}, with probability {format_probability(result['probability'])}. If it really came next, "
                   f"the model would pay a loss of −ln p = {result['loss_nats']:.2f} nats (guessing uniformly over "
                   f"the vocabulary costs ln {vocab:,} = {math.log(vocab):.2f} nats).")
        lines = [verdict]
        if len(scored) == 2:
            tried = " and ".join(
                f"{_shown(candidate)} ({len(ids)} token{'s' * (len(ids) != 1)}, first token #{rank:,})"
                for _, rank, candidate, ids in sorted(scored, key=lambda s: s[2] != result["scored_text"]))
            lines.append(f"Your guess was tried with and without a leading space: {tried}; "
                         f"{_shown(result['scored_text'])} is scored.")
        if result["n_tokens"] > 1:
            ids = result["token_ids"]
            pieces = " · ".join(_quoted(self._piece(i)) for i in ids[:MAX_PIECES_SHOWN])
            if len(ids) > MAX_PIECES_SHOWN:
                pieces += f" · … ({len(ids) - MAX_PIECES_SHOWN} more)"
            lines.append(f"{_shown(result['scored_text'])} is {len(ids)} tokens: {pieces}. The model predicts one "
                         f"token at a time, so only its first token {piece} is scored.")
            if any(self._piece(i) != make_visible(self.smol.token_label(i)) for i in ids[:MAX_PIECES_SHOWN]):
                lines.append("Pieces like <F0 9F> are raw bytes: byte-level BPE can split one character "
                             "(an emoji, a Chinese character) across several tokens.")
        plain = "\n".join(lines)
        rendered = "<br>".join(html.escape(line, quote=False) for line in lines)
        return f'<div style="border-left: 3px solid {RESULT_COLOUR}; padding: 2px 8px">{rendered}</div>', plain
