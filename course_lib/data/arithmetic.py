"""Notebook E's task: two-digit addition, with a reward anyone can check.

A problem is a prompt such as "23+45=" and its answer "68". A completion is what a model writes
after the prompt, up to its end token; the reward is 1 when the completion is exactly the answer
and 0 otherwise. Nothing about it is a matter of taste, which is what makes arithmetic a good first
task for reinforcement learning: the score cannot be argued with, only (as notebook E shows, with a
second, careless reward) badly designed.

The model reads characters: ten digits, "+", "=", and an end token, so the tokenizer is a table.
Problems are split by their pair of numbers: a held-out problem never appears in training.
"""
from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass

END = "$"  # the end of an answer: a model that has finished writes it
ALPHABET = "0123456789+=" + END
VOCAB_SIZE = len(ALPHABET)
END_ID = ALPHABET.index(END)
MAX_OPERAND = 99
HELD_OUT_SHARE = 0.2


def encode(text: str) -> list[int]:
    unknown = sorted(set(text) - set(ALPHABET))
    if unknown:
        raise ValueError(f"the arithmetic model reads only {ALPHABET!r}; got {unknown} in {text!r}")
    return [ALPHABET.index(c) for c in text]


def decode(ids) -> str:
    return "".join(ALPHABET[int(i)] for i in ids)


@dataclass(frozen=True)
class Problem:
    a: int
    b: int

    @property
    def prompt(self) -> str:
        return f"{self.a}+{self.b}="

    @property
    def answer(self) -> str:
        return str(self.a + self.b)

    @property
    def held_out(self) -> bool:
        """About HELD_OUT_SHARE of all pairs, chosen by a hash: the same on every machine."""
        return zlib.crc32(f"{self.a},{self.b}".encode()) % 1000 < HELD_OUT_SHARE * 1000


def all_problems(split: str) -> list[Problem]:
    """Every pair 0..MAX_OPERAND of one split ("train" or "held_out"), in order."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    return [p for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1)
            if (p := Problem(a, b)).held_out == (split == "held_out")]


def sample_problems(n: int, split: str = "train", seed: int = 0) -> list[Problem]:
    """n problems drawn (with replacement) from a split, seeded."""
    pool = all_problems(split)
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]


def completion_text(ids) -> str:
    """What a model wrote, up to (not including) its end token."""
    text = decode(ids)
    return text.split(END, 1)[0]


def last_number(text: str) -> int | None:
    """The last whole number written in a text ("... so 17 x 24 = 408." gives 408), or None."""
    numbers = re.findall(r"\d[\d,]*", text)
    return int(numbers[-1].replace(",", "")) if numbers else None


def correct_reward(problem: Problem, completion: str) -> float:
    """1.0 when the completion is exactly the answer, else 0.0: the honest, checkable reward."""
    return 1.0 if completion == problem.answer else 0.0


LENGTH_BONUS = 0.15  # per character written, up to 1.0


def gameable_reward(problem: Problem, completion: str) -> float:
    """A careless reward, like a reward model that slightly prefers longer answers: 1.0 for the right
    answer plus LENGTH_BONUS for every character written (at most 1.0 in all). Padding an answer
    with digits then pays about as well as being right, and a model trained on it learns to pad
    (notebook E3)."""
    return correct_reward(problem, completion) + min(LENGTH_BONUS * len(completion), 1.0)
