"""What inference costs on this machine: SmolLM2 at one precision against float32, measured.

For a precision (models/smollm.py's PRECISIONS): how fast it generates (greedy, with the KV cache,
every timed run kept), how many bytes its weights take (each token streams all of them from
memory), how often its top next token differs from float32's over a text, and its greedy reply to
a prompt, to read beside float32's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from course_lib.measure import synchronize


@dataclass(frozen=True)
class PrecisionRun:
    precision: str
    device: str
    speeds: tuple[float, ...]  # tokens per second, one per timed run
    weight_bytes: int
    agreement: float           # share of the text's positions whose top token is float32's
    positions: int
    reply: str

    @property
    def tokens_per_second(self) -> float:
        return sorted(self.speeds)[len(self.speeds) // 2]


def generation_speeds(smol, prompt_ids: list[int], new_tokens: int, repeats: int) -> list[float]:
    """Tokens per second of `repeats` greedy generations of exactly `new_tokens`, after one warm-up."""
    smol.model.generate(prompt_ids, new_tokens)
    speeds = []
    for _ in range(repeats):
        synchronize(smol.device)
        started = time.perf_counter()
        made = smol.model.generate(prompt_ids, new_tokens)  # no eos_id: never stops early
        synchronize(smol.device)
        speeds.append(len(made) / (time.perf_counter() - started))
    return speeds


def window_logits(smol, ids: list[int], window: int = 256):
    """The logits (positions, vocab) after each position of `ids`, one window of `window` tokens at a
    time (each window read from its own start, so a long text costs no more memory than one window)."""
    with torch.inference_mode():
        for start in range(0, len(ids), window):
            yield smol.model(torch.tensor([ids[start:start + window]], device=smol.device))[0]


def top_tokens(smol, ids: list[int], window: int = 256) -> torch.Tensor:
    """The top next token after every position of `ids`, read in windows of `window` tokens."""
    return torch.cat([logits.argmax(-1).cpu() for logits in window_logits(smol, ids, window)])


def measure_precision(smol, reference_tops: torch.Tensor, text_ids: list[int], prompt: str,
                      new_tokens: int = 32, repeats: int = 3) -> PrecisionRun:
    """`smol` measured: speed, weight bytes, agreement with `reference_tops` (float32's top_tokens of
    `text_ids`) and its greedy reply to `prompt` (in the chat template)."""
    prompt_ids = smol.encode(smol.apply_chat_template([{"role": "user", "content": prompt}]))
    speeds = generation_speeds(smol, prompt_ids, new_tokens, repeats)
    tops = top_tokens(smol, text_ids)
    return PrecisionRun(smol.precision, str(smol.device), tuple(speeds), smol.weight_bytes,
                        float((tops == reference_tops).float().mean()), len(text_ids),
                        smol.generate(prompt, new_tokens))
