"""SkillPanel: what the next-token game taught SmolLM2, one probe per skill, right or wrong.

Pre-training only ever asks for the next token. To play that game well a model has to pick up
facts, arithmetic, grammar, translation and code along the way, and it picks them up unevenly. The
panel gives SmolLM2 one short raw-text probe per skill (no chat template: the base game itself),
continues each greedily, and marks the continuation against the expected answer, so what it gets
right and wrong is measured on the learner's machine, not claimed. It is plain HTML: it shows in
any notebook frontend and in an exported notebook.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from course_lib.widgets.next_token_game import format_probability
from course_lib.widgets.tokens import make_visible


@dataclass(frozen=True)
class Probe:
    skill: str
    prompt: str
    expected: tuple[str, ...]  # a continuation that starts with any of these (spaces aside) is right


# Easy and harder probes side by side: the panel is meant to show both successes and failures.
# Arithmetic and translation come with one worked example first, as a base model needs the format.
SKILL_PROBES = (
    Probe("arithmetic", "1 + 1 = 2\n2 + 2 =", ("4",)),
    Probe("harder arithmetic", "12 + 7 = 19\n23 + 45 =", ("68",)),
    Probe("a well-known fact", "The capital of France is", ("Paris",)),
    Probe("a rarer fact", "The capital of Australia is", ("Canberra",)),
    Probe("cause and effect", "He dropped the glass and it", ("shattered", "broke", "smashed", "fell")),
    Probe("grammar (agreement)", "The keys to the old wooden cabinet", ("are", "were")),
    Probe("translation", "English: dog\nFrench: chien\n\nEnglish: cat\nFrench:", ("chat",)),
    Probe("code", "def add(a, b):\n    return a", ("+ b", "+b")),
)


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    continuation: str                 # the greedy continuation, as text
    top: list[tuple[str, float]]      # the most likely first tokens and their probabilities
    right: bool


def run_probe(smol, probe: Probe, max_new_tokens: int = 6, top: int = 3) -> ProbeResult:
    """One probe: SmolLM2's first-token distribution and its greedy continuation of the raw prompt."""
    ids = smol.encode(probe.prompt)
    probs = torch.softmax(smol.logits(ids).double(), dim=-1)
    values, indices = probs.topk(top)
    first = [(smol.decode([int(i)]), float(p)) for p, i in zip(values, indices)]
    continuation = smol.generate(probe.prompt, max_new_tokens, chat=False)
    right = continuation.strip().startswith(tuple(e.strip() for e in probe.expected))
    return ProbeResult(probe, continuation, first, right)


class SkillPanel:
    """A table of probes (default SKILL_PROBES) and what SmolLM2 made of each; `results` holds them."""

    def __init__(self, smol, probes=SKILL_PROBES, max_new_tokens: int = 6):
        if not probes:
            raise ValueError("give at least one probe")
        self.results = [run_probe(smol, p, max_new_tokens) for p in probes]

    @property
    def right(self) -> int:
        return sum(r.right for r in self.results)

    def summary(self) -> str:
        wrong = [r.probe.skill for r in self.results if not r.right]
        text = f"SmolLM2 got {self.right} of {len(self.results)} probes right"
        return text + (f"; wrong: {', '.join(wrong)}." if wrong else ".")

    def _repr_html_(self) -> str:
        cell = "padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top;text-align:left"
        code = "font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere"
        rows = []
        for r in self.results:
            mark = ('<span style="color:#2e7d32">✓ right</span>' if r.right else
                    f'<span style="color:#c62828">✗ wrong</span> (expected “{html.escape(r.probe.expected[0])}”)')
            top = "<br>".join(f"<span style='{code}'>{html.escape(make_visible(t))}</span> "
                              f"{format_probability(p)}" for t, p in r.top)
            rows.append(f"<tr><td style='{cell}'>{html.escape(r.probe.skill)}</td>"
                        f"<td style='{cell};{code}'>{html.escape(r.probe.prompt)}</td>"
                        f"<td style='{cell};{code}'>{html.escape(r.continuation)}</td>"
                        f"<td style='{cell}'>{top}</td><td style='{cell}'>{mark}</td></tr>")
        head = "".join(f"<th style='{cell}'>{h}</th>" for h in
                       ("skill", "prompt (raw text)", "SmolLM2 continues (greedy)",
                        "its likeliest first tokens", ""))
        return (f"<div style='max-width:100%;overflow-x:auto'><table style='border-collapse:collapse;"
                f"table-layout:fixed;width:100%'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
                f"</tbody></table><p><b>{html.escape(self.summary())}</b> Nothing here was taught as a "
                "skill: each is a side effect of predicting the next token well.</p></div>")
