"""A long-range recall task: facts scattered through noise, then a question about one of them.

    7  C5  2  0  A3  6  ...  4  H1  5  C?        ->  answer: 5
        |<-------------- distance -------------->|

Keys are letters (A, B, ...), values are numbers 0 .. n_values-1. A fact such as C5 ("C is 5") is
ONE token; every key has exactly one fact in the sequence, in random order at random places; every
other position is a lone value, a distractor that says nothing about any key. The last token, C?, asks
for one key's value. `distance` is how many positions the asked fact sits before the question
(1: right before it). The sequence length is fixed, so a longer distance is only a longer gap.

Why this design:
- several facts, and the question comes last: a model that reads one token at a time cannot know
  which fact will be asked, so it must carry all of them, each for as long as the question may be
  away. With a single fact to keep, an LSTM's gates hold it easily (they were invented for exactly
  that: in our trials, the value after a single marker was recalled at every distance up to 64
  after 400 steps), and the task would show nothing about running summaries.
- one token per fact: attention answers in one look (the question's key matches the fact's key),
  so a one-layer model learns it in seconds. With the key and the value in two tokens, attention
  needs two layers composing (find the key, then read the token after it); in our trials that
  composition had not appeared after 1,500 steps, more than a minute on a CPU.

Token ids: the values 0 .. n_values-1 first (so the answer's class index is the value's token id),
then the facts (key, value) at n_values + key * n_values + value, then the questions, one per key.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RecallTask:
    """The task's sizes and token ids; `batch` draws sequences and their answers."""

    n_keys: int = 8
    n_values: int = 8

    def __post_init__(self):
        if not 1 <= self.n_keys <= 26:
            raise ValueError(f"n_keys must be between 1 and 26 (keys are shown as letters), got {self.n_keys}")
        if self.n_values < 2:
            raise ValueError(f"n_values must be at least 2 (one value leaves nothing to recall), "
                             f"got {self.n_values}")

    @property
    def vocab_size(self) -> int:
        """Lone values, facts, questions."""
        return self.n_values + self.n_keys * self.n_values + self.n_keys

    def fact_token(self, key, value):
        """Token id of the fact "key is value" (ints, or tensors of them)."""
        return self.n_values + key * self.n_values + value

    def query_token(self, key):
        """Token id of the question "key?" (an int, or a tensor of them)."""
        return self.n_values + self.n_keys * self.n_values + key

    def show(self, ids) -> str:
        """One sequence as text: lone values as numbers, facts as C5, the question as C?."""
        words = []
        for token in torch.as_tensor(ids).tolist():
            if token < self.n_values:
                words.append(str(token))
            elif token < self.query_token(0):
                key, value = divmod(token - self.n_values, self.n_values)
                words.append(f"{string.ascii_uppercase[key]}{value}")
            else:
                words.append(f"{string.ascii_uppercase[token - self.query_token(0)]}?")
        return " ".join(words)

    def batch(
        self,
        batch_size: int,
        seq_len: int,
        distance: int | tuple[int, int],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (batch_size, seq_len), targets (batch_size,)), int64: sequences and the asked values.

        `distance` is one int, the same for the whole batch (to measure accuracy at that distance),
        or an inclusive range (low, high), drawn for each sequence evenly on a log scale (to train on
        every distance): as many facts 1 to 2 tokens back as 64 to 128 back. Drawn evenly, nearly all
        training facts would be far, so a model's grip on nearby facts would be learned from few
        examples. The batch is drawn on the CPU from `generator`, so a seeded generator gives the
        same batch on any device.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if seq_len < self.n_keys + 1:
            raise ValueError(f"seq_len must be at least n_keys + 1 = {self.n_keys + 1} (every key's fact "
                             f"and the question), got {seq_len}")
        low, high = (distance, distance) if isinstance(distance, int) else distance
        if low > high:
            raise ValueError(f"the distance range ({low}, {high}) is empty: give (low, high) with low <= high")
        if low < 1 or high > seq_len - 1:
            raise ValueError(f"distance must be between 1 and seq_len - 1 = {seq_len - 1} (the fact must "
                             f"come before the question, within {seq_len} tokens), got {distance}")
        ids = torch.randint(self.n_values, (batch_size, seq_len), generator=generator)
        log_low, log_past_high = math.log(low), math.log(high + 1)
        log_distances = log_low + (log_past_high - log_low) * torch.rand(batch_size, generator=generator)
        distances = log_distances.exp().floor().long().clamp(low, high)
        keys = torch.rand(batch_size, self.n_keys, generator=generator).argsort(dim=1)  # keys[:, 0] is asked
        values = torch.randint(self.n_values, (batch_size, self.n_keys), generator=generator)
        rows = torch.arange(batch_size)
        asked_position = seq_len - 1 - distances
        # The other facts go to random distinct places: the first n_keys - 1 of a random order of
        # the positions before the question, with the asked fact's place sorted last.
        order = torch.rand(batch_size, seq_len - 1, generator=generator)
        order[rows, asked_position] = 2.0
        other_positions = order.argsort(dim=1)[:, :self.n_keys - 1]
        positions = torch.cat((asked_position[:, None], other_positions), dim=1)
        ids.scatter_(1, positions, self.fact_token(keys, values))
        ids[:, -1] = self.query_token(keys[:, 0])
        return ids.to(device), values[:, 0].to(device)
