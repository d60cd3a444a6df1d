"""Notebook D's post-training data, built from the standard library's own documentation.

An instruction set: "What does json.dumps do?" answered by the first sentence of that function's
docstring, for about 1,800 public functions and methods of the modules the pre-training prose
comes from (course_lib.data.corpus). A preference set: the same questions, each with the right
answer (chosen) against a flawed one (rejected): another function's answer, an answer that rambles
on into a new question, or an answer cut off mid-sentence.

Held-out functions are those whose docstring fell into the pre-training corpus's validation split
(course_lib.data.pretraining.is_validation): TinyGPT never read them, so answering them well cannot
be recall of its pre-training text. Everything is deterministic: the same Python gives the same sets.

The chat format is TinyGPT's own, spelled in plain text, since its 2,048-token vocabulary has no
special tokens for roles; an answer ends with the end-of-text token the base model already knows.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings
import zlib
from dataclasses import dataclass

from course_lib.data.corpus import DOCSTRING_MODULES, documented
from course_lib.data.pretraining import EOT, is_validation

USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SPLITS = ("train", "held_out")
QUESTIONS = (
    "What does {name} do?",
    "Explain {name} in one sentence.",
    "What is {name} for?",
    "Describe what {name} does.",
)
# Answers the model can learn whole: one sentence, short enough that a conversation fits TinyGPT's
# context with room to spare.
MIN_SUMMARY, MAX_SUMMARY = 20, 110
FLAWS = ("wrong function", "rambles on", "cut off")


def chat_prompt(question: str) -> str:
    """A user's question in TinyGPT's chat format, up to where the assistant's answer starts."""
    return f"{USER}\n{question.strip()}\n{ASSISTANT}\n"


def chat_text(question: str, answer: str) -> str:
    """A whole conversation: the prompt, the answer, and the end-of-text token that closes it."""
    return chat_prompt(question) + answer + EOT


@dataclass(frozen=True)
class FunctionDoc:
    name: str  # "json.dumps", "pathlib.Path.mkdir"
    summary: str  # the docstring's first sentence, on one line
    docstring: str

    @property
    def held_out(self) -> bool:
        return is_validation(self.docstring)

    @property
    def question(self) -> str:
        """One of QUESTIONS, chosen by the name: varied phrasings, the same every run."""
        return QUESTIONS[zlib.crc32(self.name.encode()) % len(QUESTIONS)].format(name=self.name)


@dataclass(frozen=True)
class Example:
    """One supervised fine-tuning example: the prompt (question in the chat format) and the answer."""
    name: str
    prompt: str
    response: str


@dataclass(frozen=True)
class PreferencePair:
    name: str
    prompt: str
    chosen: str
    rejected: str
    flaw: str  # which of FLAWS the rejected answer has


def summary_of(docstring: str) -> str | None:
    """The first sentence of a docstring's first paragraph, or None if it makes no usable answer
    (too short or long, a signature line such as "dumps(obj, ...)", or not starting a sentence)."""
    paragraph = " ".join(docstring.split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    sentence = match.group(1) if match else paragraph + "."
    if not MIN_SUMMARY <= len(sentence) <= MAX_SUMMARY or re.match(r"^[\w.]+\(", sentence):
        return None
    if not sentence[0].isupper():
        return None
    return sentence


@functools.cache
def function_docs() -> tuple[FunctionDoc, ...]:
    """Every public function and method of DOCSTRING_MODULES with a usable summary, by name."""
    found: dict[str, FunctionDoc] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in DOCSTRING_MODULES:
            for obj in documented(importlib.import_module(module_name)):
                if not inspect.isroutine(obj):
                    continue
                docstring = inspect.getdoc(obj)
                summary = summary_of(docstring) if docstring else None
                if summary:
                    name = f"{module_name}.{getattr(obj, '__qualname__', obj.__name__)}"
                    found.setdefault(name, FunctionDoc(name, summary, docstring))
    return tuple(found[name] for name in sorted(found))


def _split(split: str) -> list[FunctionDoc]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [f for f in function_docs() if f.held_out == (split == "held_out")]


def instruction_examples(split: str = "train") -> list[Example]:
    """Question-and-answer examples for supervised fine-tuning ("train") or evaluation ("held_out")."""
    return [Example(f.name, chat_prompt(f.question), f.summary) for f in _split(split)]


def _flawed(doc: FunctionDoc, other: FunctionDoc, flaw: str) -> str:
    if flaw == "wrong function":
        return other.summary
    if flaw == "rambles on":
        # What a base model does with a question: carry on with another one.
        return f"{doc.summary} {other.question} {other.summary}"
    words = doc.summary.split()
    return " ".join(words[:max(1, len(words) // 2)])  # cut off mid-sentence, no full stop


def preference_pairs(split: str = "train") -> list[PreferencePair]:
    """One pair per function: the right answer (chosen) against a flawed one (rejected).

    The flaw cycles through FLAWS in name order, so each kind makes up a third of either split.
    "wrong function" takes the answer of a function that shares the name's module where possible,
    with a different summary: plausible, fluent, and wrong.
    """
    docs = _split(split)
    pairs = []
    for i, doc in enumerate(docs):
        module = doc.name.rsplit(".", 1)[0]
        # The nearest following function with another answer, preferring one of the same module.
        candidates = [docs[(i + k) % len(docs)] for k in range(1, len(docs))]
        others = [d for d in candidates if d.summary != doc.summary]
        other = next((d for d in others if d.name.startswith(module + ".")), others[0])
        flaw = FLAWS[i % len(FLAWS)]
        pairs.append(PreferencePair(doc.name, chat_prompt(doc.question), doc.summary,
                                    _flawed(doc, other, flaw), flaw))
    return pairs
