"""RLHF's recipe as a diagram (notebook D): the stages, what each learns from, and where the course runs each."""
from __future__ import annotations

import html

# (stage, what it learns from, what it produces, where the course runs it)
RLHF_STAGES = (
    ("Pre-training", "a huge pile of text: predict the next token", "a base model: knowledgeable, unhelpful",
     "notebook C: TinyGPT on Python's docs and code"),
    ("Supervised fine-tuning", "example conversations written by people", "an assistant that answers in the format",
     "D2: TinyGPT on docstring questions"),
    ("Reward model", "people's choices between two answers (Bradley-Terry)", "a scorer: how much would people like this answer?",
     "D3: TinyGPT plus a scalar head"),
    ("Reinforcement learning", "the reward model's scores of the policy's own answers, with a KL leash to the SFT model",
     "an assistant that writes answers people prefer", "notebook E: GRPO on arithmetic, with a checkable reward"),
)


def rlhf_recipe():
    """The recipe of InstructGPT (Ouyang et al. 2022) as boxes and arrows, with DPO's shortcut beside it."""
    from IPython.display import HTML

    # A row of boxes that share the width and wrap their text (a narrow output wraps the row instead).
    box = ("flex:1 1 160px;min-width:140px;box-sizing:border-box;margin:4px;padding:8px;border:1px solid #2f6fde;"
           "border-radius:8px;font-size:12px;line-height:1.4;background:#f5f8ff;color:#222;overflow-wrap:anywhere")
    arrow = "flex:0 0 auto;align-self:center;font-size:22px;color:#2f6fde"
    parts = []
    for i, (stage, source, product, where) in enumerate(RLHF_STAGES):
        if i:
            parts.append(f"<span style='{arrow}'>→</span>")
        parts.append(f"<div style='{box}'><b>{i + 1}. {html.escape(stage, quote=False)}</b><br><i>learns from:</i> "
                     f"{html.escape(source, quote=False)}<br><i>gives:</i> {html.escape(product, quote=False)}<br>"
                     f"<span style='color:#a33'>{html.escape(where, quote=False)}</span></div>")
    shortcut = ("<div style='margin:6px 4px;font-size:12px'><b>DPO's shortcut</b> (Rafailov et al. 2023): "
                "skip boxes 3 and 4, and train the SFT model on the preference pairs directly, with a frozen "
                "copy of it as the reference (D5).</div>")
    return HTML("<div style='display:flex;flex-wrap:wrap;align-items:stretch'>" + "".join(parts) + "</div>" + shortcut)
