"""Reference answers for the on-ramp: temperature softmax and the generation loop."""
from __future__ import annotations

from typing import Callable, Iterable

import torch


def softmax_with_temperature(logits, temperature: float) -> torch.Tensor:
    """Probabilities from logits divided by the temperature, over the last dimension.

    Subtracting the maximum first keeps exp() from overflowing on huge logits and keeps the
    result finite as the temperature approaches 0 (where it tends to one-hot on the argmax).
    """
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
        raise TypeError(f"temperature must be a number, not {type(temperature).__name__}")
    if not temperature > 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}. Use a small value such as 0.01 for "
            "near-greedy picking; greedy decoding itself is argmax, not softmax."
        )
    logits = torch.as_tensor(logits)
    if not logits.is_floating_point():
        logits = logits.float()
    # Shift before dividing: (x - max) <= 0 stays finite even when x / T would overflow.
    shifted = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
    weights = torch.exp(shifted)
    return weights / weights.sum(dim=-1, keepdim=True)


def generate(
    next_token_fn: Callable[[list[int]], torch.Tensor],
    prompt_ids: Iterable[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """The inference loop: ask for next-token logits, pick one, append it, repeat.

    `next_token_fn(ids)` returns the logits for the token after `ids`. Temperature 0 means greedy
    (argmax); above 0 the token is sampled from the temperature softmax. Stops after
    `max_new_tokens` or right after emitting `eos_id`. Returns only the new tokens.
    """
    ids = list(prompt_ids)
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits = next_token_fn(ids)
        if temperature == 0:
            token = int(torch.argmax(logits))
        else:
            probs = softmax_with_temperature(logits, temperature)
            token = int(torch.multinomial(probs.float(), 1, generator=generator))
        ids.append(token)
        new.append(token)
        if eos_id is not None and token == eos_id:
            break
    return new
