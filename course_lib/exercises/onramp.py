"""The on-ramp's exercises: softmax_with_temperature, generate, and the strawberry prediction."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from course_lib.exercises.engine import Case, Exercise, Hint, Trial


# --------------------------------------------------------------------------------------------
# softmax_with_temperature
# --------------------------------------------------------------------------------------------
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


LOGITS = torch.tensor([2.0, 1.0, 0.1])


def temperature_sharpens(t: Trial) -> None:
    top = [t.tensor(t.call(LOGITS, temperature, what=f"at temperature {temperature}"), LOGITS.shape,
                    f"at temperature {temperature}")[0] for temperature in (0.5, 1.0, 2.0)]
    if not top[0] > top[1] > top[2]:
        t.fail("temperature_ignored", "a lower temperature should make the top token more likely",
               "P(top) at T=0.5 > at T=1 > at T=2", ", ".join(f"{p:.3f}" for p in top))


def refuses_non_positive_temperatures(t: Trial) -> None:
    for bad in (0, -1.0):
        t.refuses(f"temperature={bad}", LOGITS, bad)


def near_zero_temperature_is_one_hot(t: Trial) -> None:
    logits = torch.tensor([3.0, 2.9, -5.0])
    got = t.tensor(t.call(logits, 1e-4, what="at temperature 1e-4"), logits.shape, "at temperature 1e-4")
    if not (torch.isfinite(got).all() and got[0] > 0.999):
        t.fail("overflow", "a temperature near 0 should put (almost) all probability on the top token",
               "≈ [1, 0, 0]", got.tolist())


def sums_to_one_over_a_vocabulary(t: Trial) -> None:
    vocab = torch.randn(49152, generator=torch.Generator().manual_seed(1)) * 8
    got = t.tensor(t.call(vocab, 1.3, what="over a 49,152-token vocabulary"), vocab.shape,
                   "over a 49,152-token vocabulary")
    if abs(got.sum().item() - 1) > 1e-4:
        t.fail("not_normalised", "probabilities should sum to 1", 1.0, got.sum().item())


SOFTMAX_WITH_TEMPERATURE = Exercise(
    name="softmax_with_temperature",
    answer=softmax_with_temperature,
    probe=lambda f: f(torch.zeros(3), 1.0),
    mistakes={
        "not_a_tensor": "build it with torch operations such as torch.exp and .sum(dim=-1, keepdim=True)",
        "shape": "normalise over the last dimension only: sum(dim=-1, keepdim=True)",
        "values": "softmax(logits / temperature), normalised over the last dimension",
        "temperature_ignored": "divide the logits by the temperature",
        "no_refusal": "check `if temperature <= 0: raise ValueError(...)` before dividing: "
                      "a temperature of 0 would divide by zero",
        "not_finite": "subtract the largest logit before exp(); the result does not change",
        "overflow": "subtract the maximum before dividing and exponentiating",
        "batch": "each row is its own softmax: use dim=-1 and keepdim=True",
        "not_normalised": "divide by the sum over the last dimension",
    },
    visible=(
        Case("at temperature 1 it should be the plain softmax", (LOGITS, 1.0)),
        temperature_sharpens,
        Case("at temperature 2", (LOGITS, 2.0)),
        refuses_non_positive_temperatures,
    ),
    hidden=(
        Case("with huge logits", (torch.tensor([1000.0, 999.0, -1000.0]), 1.0), atol=1e-6),
        near_zero_temperature_is_one_hot,
        Case("on a batch of shape (2, 3, 50)",
             lambda: (torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(0)) * 5, 0.7), key="batch"),
        sums_to_one_over_a_vocabulary,
    ),
    hints=(
        Hint("Start with the plain softmax, as if the temperature were 1: "
             "`torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)`. `dim=-1` means \"along the "
             "last dimension\" (each row on its own); `keepdim=True` keeps that dimension with size 1, so the "
             "division lines up with every number of its row.",
             fits=("not_a_tensor", "shape", "batch", "not_normalised")),
        Hint("The temperature divides the logits before `exp`: `logits / temperature`. Before that, refuse "
             "a temperature of 0 or less with `raise ValueError(\"...\")`: dividing by 0 has no answer.",
             fits=("temperature_ignored", "no_refusal", "values")),
        Hint("`exp(1000)` is `inf` in float32. Subtract each row's largest logit first, "
             "`logits - logits.max(dim=-1, keepdim=True).values`: the shift cancels in the division, so the "
             "softmax is the same, and no `exp` is larger than 1.",
             fits=("not_finite", "overflow")),
    ),
)


# --------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------
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


class ScriptedModel:
    """A stand-in model: fixed logits per step, recording the ids it was shown."""

    def __init__(self, logits_per_step):
        self.logits_per_step = [torch.as_tensor(x, dtype=torch.float32) for x in logits_per_step]
        self.calls: list[list[int]] = []

    def __call__(self, ids):
        self.calls.append(list(ids))
        return self.logits_per_step[min(len(self.calls) - 1, len(self.logits_per_step) - 1)]


STEPS = [[0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 0.0, 7.0], [9.0, 0.0, 0.0, 0.0]]


def token_ids(t: Trial, *args, what: str) -> list[int]:
    """The learner's generate on these arguments, as a list of ints."""
    out = t.call(*args, what=what)
    if torch.is_tensor(out):
        out = out.tolist()
    if not isinstance(out, list) or not all(isinstance(i, int) for i in out):
        t.fail("not_token_ids", "generate should return a list of int token ids", "e.g. [3, 1, 4]",
               repr(out)[:200])
    return out


def greedy_appends_each_pick(t: Trial) -> None:
    model = ScriptedModel(STEPS)
    out = token_ids(t, model, [2, 2], 3, 0.0, None, what="greedy")
    if out != [1, 3, 0]:
        t.fail("not_greedy", "at temperature 0 generate should pick the argmax at each step (greedy)",
               [1, 3, 0], out)
    if model.calls[:3] != [[2, 2], [2, 2, 1], [2, 2, 1, 3]]:
        t.fail("context_not_extended", "each step should see the prompt plus every token picked so far",
               [[2, 2], [2, 2, 1], [2, 2, 1, 3]], model.calls)


def stops_at_eos(t: Trial) -> None:
    out = token_ids(t, ScriptedModel(STEPS), [2], 10, 0.0, 3, what="with eos_id=3")
    if out != [1, 3]:
        t.fail("eos_ignored", "generation should stop right after producing eos_id (and include it)", [1, 3], out)


def stops_at_max_new_tokens(t: Trial) -> None:
    out = token_ids(t, ScriptedModel([[0.0, 1.0]]), [0], 5, 0.0, None, what="without eos")
    if len(out) != 5:
        t.fail("wrong_length", "without eos, generate should return exactly max_new_tokens tokens", 5, len(out))


def leaves_the_prompt_alone(t: Trial) -> None:
    token_ids(t, ScriptedModel([[0.0, 1.0]]), [1, 2], 2, 0.0, None, what="generate on the prompt [1, 2]")


def samples_at_temperature(t: Trial) -> None:
    torch.manual_seed(0)
    logits = [0.0, math.log(3.0)]  # softmax: [0.25, 0.75]
    for temperature, expected, slack in ((1.0, 0.75, 0.05), (0.25, 3 ** 4 / (1 + 3 ** 4), 0.03)):
        picks = token_ids(t, ScriptedModel([logits]), [0], 2000, temperature, None,
                          what=f"sampling at temperature {temperature}")
        share = sum(picks) / len(picks)
        if abs(share - expected) > slack:
            t.fail("not_sampled", f"at temperature {temperature} a token with probability {expected:.2f} "
                   f"should be picked about {expected:.0%} of the time", f"≈ {expected:.3f}", f"{share:.3f}")


def no_tokens_asked(t: Trial) -> None:
    if token_ids(t, ScriptedModel([[0.0, 1.0]]), [0], 0, 1.0, None, what="max_new_tokens=0") != []:
        t.fail("wrong_length", "max_new_tokens=0 should return no tokens", [], "something else")


GENERATE = Exercise(
    name="generate",
    answer=generate,
    probe=lambda f: f(lambda ids: torch.zeros(2), [0], 1, 0.0, None),
    todo="your loop",
    mistakes={
        "not_token_ids": "convert a picked tensor with int(...)",
        "not_greedy": "at temperature 0 pick int(torch.argmax(logits))",
        "context_not_extended": "append the picked token to the running list of ids before the next call",
        "eos_ignored": "after appending a token, stop if it is eos_id",
        "wrong_length": "loop max_new_tokens times, and return only the new tokens",
        "changed_input": "copy the prompt first: ids = list(prompt_ids)",
        "not_sampled": "sample with torch.multinomial(softmax_with_temperature(logits, temperature), 1)",
    },
    visible=(greedy_appends_each_pick, stops_at_eos, stops_at_max_new_tokens, leaves_the_prompt_alone),
    hidden=(samples_at_temperature, no_tokens_asked),
    hints=(
        Hint("Keep a running list, `ids = list(prompt_ids)` (a copy: leave the caller's list alone), and an "
             "empty `new = []`. Loop `max_new_tokens` times; in each step `next_token_fn(ids)` gives the "
             "scores of every possible next token.",
             fits=("changed_input", "context_not_extended", "wrong_length")),
        Hint("Pick one token from the scores. At temperature 0 take the best: `int(torch.argmax(logits))`. "
             "Otherwise draw one: `torch.multinomial(softmax_with_temperature(logits, temperature), 1)`, "
             "turned into a plain number with `int(...)`.",
             fits=("not_greedy", "not_sampled", "not_token_ids")),
        Hint("Append the picked token to both `ids` and `new`, then `break` if it equals `eos_id` (so the "
             "end token is the last one returned). After the loop, return `new`, not `ids`.",
             fits=("eos_ignored",)),
    ),
)


# --------------------------------------------------------------------------------------------
# predict, then check: how many tokens is " strawberry"?
# --------------------------------------------------------------------------------------------
def strawberry_tokens(*, smol) -> int:
    """The answer, from the notebook's own model."""
    return len(smol.encode(" strawberry"))


def prediction_recorded(t: Trial) -> None:
    """A prediction earns its point by being made: the check records it, then reveals the answer."""
    prediction = t.fn
    if not isinstance(prediction, int) or isinstance(prediction, bool) or prediction < 1:
        t.fail("not_a_number", "set `strawberry_token_count` to a whole number of at least 1 (your guess)",
               "an int such as 3", repr(prediction))


def reveal(t: Trial) -> str:
    guess, actual = t.fn, strawberry_tokens(smol=t.context["smol"])
    pieces = "one token" if actual == 1 else f"{actual} tokens"
    if guess == actual:
        return (f"✅ Recorded. You guessed {guess}, and you were right: ' strawberry' is {pieces} for SmolLM2, "
                "so its letters never reach the model.")
    return (f"✅ Recorded. You guessed {guess}; SmolLM2 makes ' strawberry' {pieces}. Most people guess "
            "more: the model never sees the ten letters, which is why counting its r's is hard for it.")


STRAWBERRY_PREDICTION = Exercise(
    name="strawberry_token_count",
    answer=strawberry_tokens,
    probe=None,
    mistakes={"not_a_number": ""},
    visible=(prediction_recorded,),
    passed=reveal,
)

EXERCISES = (SOFTMAX_WITH_TEMPERATURE, GENERATE, STRAWBERRY_PREDICTION)
