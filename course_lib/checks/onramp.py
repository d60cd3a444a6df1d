"""Checks for the on-ramp's exercises: softmax_with_temperature, generate, the strawberry prediction."""
from __future__ import annotations

import math

import torch

from course_lib.checks.common import fail as _fail, not_implemented


def _as_probabilities(fn, logits, temperature, what):
    try:
        out = fn(logits, temperature)
    except NotImplementedError:
        raise AssertionError("\n❌ softmax_with_temperature still raises NotImplementedError: "
                             "replace that line with your code.") from None
    if not torch.is_tensor(out):
        _fail(f"{what}: the result should be a torch tensor", "torch.Tensor", type(out).__name__,
              "build it with torch operations such as torch.exp and .sum(dim=-1, keepdim=True)")
    if out.shape != torch.as_tensor(logits).shape:
        _fail(f"{what}: the result should have the same shape as the logits",
              tuple(torch.as_tensor(logits).shape), tuple(out.shape),
              "normalise over the last dimension only: sum(dim=-1, keepdim=True)")
    return out.double()


def check_softmax_with_temperature(fn) -> None:
    """Visible tests: values, normalisation, the effect of temperature, a clear error for T <= 0."""
    logits = torch.tensor([2.0, 1.0, 0.1])
    got = _as_probabilities(fn, logits, 1.0, "at temperature 1")
    expected = torch.exp(logits.double()) / torch.exp(logits.double()).sum()
    if not torch.allclose(got, expected, atol=1e-5):
        _fail("at temperature 1 it should be the plain softmax", expected.tolist(), got.tolist())

    hot = _as_probabilities(fn, logits, 2.0, "at temperature 2")
    cold = _as_probabilities(fn, logits, 0.5, "at temperature 0.5")
    if not (cold[0] > got[0] > hot[0]):
        _fail("a lower temperature should make the top token more likely",
              "P(top) at T=0.5 > at T=1 > at T=2",
              f"{cold[0]:.3f}, {got[0]:.3f}, {hot[0]:.3f}", "divide the logits by the temperature")
    expected_hot = torch.softmax(logits.double() / 2.0, dim=-1)
    if not torch.allclose(hot, expected_hot, atol=1e-5):
        _fail("at temperature 2 the values are off", expected_hot.tolist(), hot.tolist(),
              "softmax(logits / temperature)")

    for bad in (0, -1.0):
        try:
            fn(logits, bad)
        except ValueError as error:
            if not str(error).strip():
                _fail(f"temperature={bad} raised a ValueError with no message", "a message that says why", "''")
        except NotImplementedError:
            raise
        except Exception as error:
            _fail(f"temperature={bad} should raise a ValueError", "ValueError",
                  f"{type(error).__name__}: {error}",
                  "check `if temperature <= 0: raise ValueError(...)` before dividing")
        else:
            _fail(f"temperature={bad} should be refused", "a ValueError with a clear message",
                  "no error", "a temperature of 0 would divide by zero; refuse it explicitly")
    print("✅ softmax_with_temperature passes the visible tests.")


def check_softmax_with_temperature_hidden(fn) -> None:
    """Harder cases: huge logits, temperatures near 0, batches, and a real vocabulary's size."""
    huge = torch.tensor([1000.0, 999.0, -1000.0])
    got = _as_probabilities(fn, huge, 1.0, "with huge logits")
    if not torch.isfinite(got).all():
        _fail("huge logits should not overflow", "finite probabilities", got.tolist(),
              "subtract the largest logit before exp(); the result does not change")
    if not torch.allclose(got, torch.softmax(huge.double(), -1), atol=1e-6):
        _fail("huge logits give the wrong values", torch.softmax(huge.double(), -1).tolist(), got.tolist())

    tiny_t = _as_probabilities(fn, torch.tensor([3.0, 2.9, -5.0]), 1e-4, "at temperature 1e-4")
    if not (torch.isfinite(tiny_t).all() and tiny_t[0] > 0.999):
        _fail("a temperature near 0 should put (almost) all probability on the top token",
              "≈ [1, 0, 0]", tiny_t.tolist(), "subtract the maximum before dividing and exponentiating")

    batch = torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(0)) * 5
    got = _as_probabilities(fn, batch, 0.7, "on a batch of shape (2, 3, 50)")
    if not torch.allclose(got, torch.softmax(batch.double() / 0.7, -1), atol=1e-5):
        _fail("on a batch, each row should be its own softmax", "softmax over the last dimension",
              "different values", "use dim=-1 and keepdim=True")

    vocab = torch.randn(49152, generator=torch.Generator().manual_seed(1)) * 8
    got = _as_probabilities(fn, vocab, 1.3, "over a 49,152-token vocabulary")
    if abs(got.sum().item() - 1) > 1e-4:
        _fail("probabilities should sum to 1", 1.0, got.sum().item())
    print("✅ softmax_with_temperature passes the hidden tests too.")


class _ScriptedModel:
    """A stand-in model: fixed logits per step, recording the ids it was shown."""

    def __init__(self, logits_per_step):
        self.logits_per_step = [torch.as_tensor(x, dtype=torch.float32) for x in logits_per_step]
        self.calls: list[list[int]] = []

    def __call__(self, ids):
        self.calls.append(list(ids))
        return self.logits_per_step[min(len(self.calls) - 1, len(self.logits_per_step) - 1)]


def _run_generate(fn, *args, **kwargs):
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise not_implemented(getattr(fn, "__name__", "generate"), exc, todo="your loop") from None
    if torch.is_tensor(out):
        out = out.tolist()
    if not isinstance(out, list) or not all(isinstance(t, int) for t in out):
        _fail("generate should return a list of int token ids", "e.g. [3, 1, 4]", repr(out)[:200],
              "convert a picked tensor with int(...)")
    return out


def check_generate(fn) -> None:
    """Visible tests: greedy picks, appending to the context, stopping at max_new_tokens and at eos."""
    steps = [[0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 0.0, 7.0], [9.0, 0.0, 0.0, 0.0]]
    model = _ScriptedModel(steps)
    out = _run_generate(fn, model, [2, 2], 3, 0.0, None)
    if out != [1, 3, 0]:
        _fail("at temperature 0 generate should pick the argmax at each step (greedy)", [1, 3, 0], out)
    if model.calls[:3] != [[2, 2], [2, 2, 1], [2, 2, 1, 3]]:
        _fail("each step should see the prompt plus every token picked so far",
              [[2, 2], [2, 2, 1], [2, 2, 1, 3]], model.calls,
              "append the picked token to the running list of ids before the next call")

    out = _run_generate(fn, _ScriptedModel(steps), [2], 10, 0.0, 3)
    if out != [1, 3]:
        _fail("generation should stop right after producing eos_id (and include it)", [1, 3], out)

    out = _run_generate(fn, _ScriptedModel([[0.0, 1.0]]), [0], 5, 0.0, None)
    if len(out) != 5:
        _fail("without eos, generate should return exactly max_new_tokens tokens", 5, len(out))

    prompt = [1, 2]
    _run_generate(fn, _ScriptedModel([[0.0, 1.0]]), prompt, 2, 0.0, None)
    if prompt != [1, 2]:
        _fail("generate should not modify the caller's prompt list", [1, 2], prompt,
              "copy it first: ids = list(prompt_ids)")
    print("✅ generate passes the visible tests.")


def check_generate_hidden(fn) -> None:
    """Sampling: at temperature 1 the picks follow softmax(logits); low temperature sharpens them."""
    torch.manual_seed(0)
    logits = [0.0, math.log(3.0)]  # softmax: [0.25, 0.75]
    picks = _run_generate(fn, _ScriptedModel([logits]), [0], 2000, 1.0, None)
    share = sum(picks) / len(picks)
    if not 0.70 < share < 0.80:
        _fail("at temperature 1 a token with probability 0.75 should be picked about 75% of the time",
              "≈ 0.75", f"{share:.3f}", "sample with torch.multinomial(probabilities, 1)")
    picks = _run_generate(fn, _ScriptedModel([logits]), [0], 2000, 0.25, None)
    share = sum(picks) / len(picks)
    expected = 3 ** 4 / (1 + 3 ** 4)  # softmax(logits / 0.25)
    if abs(share - expected) > 0.03:
        _fail("at temperature 0.25 the picks should follow softmax(logits / 0.25)", f"≈ {expected:.3f}",
              f"{share:.3f}", "use your softmax_with_temperature")
    if _run_generate(fn, _ScriptedModel([[0.0, 1.0]]), [0], 0, 1.0, None) != []:
        _fail("max_new_tokens=0 should return no tokens", [], "something else")
    print("✅ generate passes the hidden tests too.")


def check_strawberry_prediction(prediction, smol) -> None:
    """The predict-then-check question: how many tokens does SmolLM2 see for ' strawberry'?"""
    if prediction is None or not isinstance(prediction, int) or isinstance(prediction, bool):
        _fail("set `strawberry_token_count` to a whole number (your prediction)", "an int", repr(prediction))
    actual = len(smol.encode(" strawberry"))
    if prediction != actual:
        _fail("your prediction of how many tokens ' strawberry' becomes", actual, prediction,
              "run the tokenizer cell below and look at the chips")
    print(f"✅ Right: ' strawberry' is {actual} token for SmolLM2, so its letters never reach the model.")
