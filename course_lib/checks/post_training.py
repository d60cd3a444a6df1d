"""Checks for notebook D's exercises: the SFT loss, a sequence's log-probability, the reward
model's Bradley-Terry loss and DPO's loss.

When an answer is wrong, the checks compute what the usual mistakes would have given (the mask
ignored or inverted, a mean per sequence, a mean instead of a sum, chosen and rejected swapped,
beta on one term only, log(sigmoid()) overflowing, ...) and name the one that matches, so the hint
points at the line to fix. Every case runs on copies of its inputs and fails if the function
changed them.
"""
from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from course_lib.checks.common import fail, refuses
from course_lib.checks.pretraining import (
    _HUGE_LOGITS,
    _HUGE_TARGETS,
    _NO_GRADIENT,
    _NOT_A_TENSOR,
    _UNSTABLE,
    _named,
    _run,
)
from course_lib.reference.post_training import bradley_terry_loss, dpo_loss, sequence_logprob, sft_loss

TOLERANCE = 1e-5  # on |got - expected| <= TOLERANCE * (1 + |expected|), elementwise

_IN_PLACE = ("use operations that return new tensors (labels.masked_fill(~mask, -100), torch.where, "
             "log_probs * mask), not in-place ones (masked_fill_, x[...] = ..., +=): the caller still needs "
             "its batch")
_INT_MASK = ("loss_mask may come as 0/1 integers instead of booleans: convert it first, mask = loss_mask.bool() "
             "(indexing with an integer tensor picks rows by number, and ~ on integers is not a logical not)")
_LOG_SIGMOID = ("log(sigmoid(x)) is log(0) = -inf once sigmoid(x) underflows to 0 (x = -200 already in float32), "
                "and log(1 + exp(-x)) overflows exp(): use F.logsigmoid(x), which is computed stably "
                "(-F.logsigmoid(x) equals F.softplus(-x))")


# ---- comparing a result with the reference -------------------------------------------------


def _close(a, b) -> bool:
    """Same shape, finite, and within TOLERANCE * (1 + |b|) of each other elementwise."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return (a.shape == b.shape and bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
            and bool(((a - b).abs() <= TOLERANCE * (1 + b.abs())).all()))


def _show(t: torch.Tensor):
    """A number, or the first 8 values of a tensor, rounded for a failure message."""
    t = torch.as_tensor(t).double()
    if t.dim() == 0:
        return round(t.item(), 6) + 0.0
    values = [round(x, 5) + 0.0 for x in t.flatten().tolist()]  # + 0.0: no -0.0
    return values if len(values) <= 8 else f"{values[:8]} ... ({len(values)} values)"


def _double(x):
    return x.detach().double() if torch.is_tensor(x) and x.is_floating_point() else x


def _copy(x, grad: bool):
    """A copy the learner's function gets, so that the case's own tensors stay as they were."""
    if not torch.is_tensor(x):
        return x
    copy = x.detach().clone()
    return copy.requires_grad_(True) if grad else copy


def _compare(fn, what: str, args: tuple, names: tuple[str, ...], reference, mistakes, *, hint: str,
             shape_hint: str, not_a_tensor: str, nonfinite: str, grad: tuple[int, ...] = (),
             no_gradient: str = "", kwargs: dict | None = None, errors: str = "", in_place: str = _IN_PLACE) -> None:
    """fn(*copies of args, **kwargs) against reference(*args in float64, **kwargs): inputs unchanged,
    type, shape, finiteness, value (naming the matching mistake, from mistakes(*args, **kwargs)), and
    with `grad` the gradient reaching those arguments. `errors`: the hint when fn raises (default `hint`)."""
    kwargs = kwargs or {}
    exact = tuple(_double(a) for a in args)
    expected = reference(*exact, **kwargs).detach()
    given = tuple(_copy(a, i in grad) for i, a in enumerate(args))
    out = _run(fn, what, *given, hint=errors or hint, **kwargs)
    for name, original, copy in zip(names, args, given):
        if torch.is_tensor(copy) and not copy.requires_grad and not torch.equal(copy, original):
            fail(f"{what}: your function changed its input `{name}`", f"`{name}` left as it was",
                 f"a changed `{name}`", in_place)
    if not torch.is_tensor(out):
        fail(f"{what}: the result should be a torch tensor", f"a torch.Tensor of shape {tuple(expected.shape)}",
             f"{type(out).__name__}: {out!r}"[:120], not_a_tensor)
    got = out.detach().double()
    found = mistakes(*exact, **kwargs)
    if got.shape != expected.shape:
        fail(f"{what}: the shape of the result", f"shape {tuple(expected.shape)}", f"shape {tuple(got.shape)}",
             _named(got, expected, found, _close) or shape_hint)
    if not torch.isfinite(got).all():
        fail(f"{what}: the result is not finite", _show(expected), _show(got), nonfinite)
    if not _close(got, expected):
        fail(what, _show(expected), _show(got), _named(got, expected, found, _close) or hint)
    if grad:
        _compare_gradient(what, out, given, args, reference, grad, no_gradient)


def _compare_gradient(what: str, out: torch.Tensor, given: tuple, args: tuple, reference, grad: tuple[int, ...],
                      no_gradient: str) -> None:
    if not out.requires_grad:
        fail(f"{what}: the result should carry a gradient back to its inputs", "result.requires_grad == True",
             "False", no_gradient)
    try:
        out.sum().backward()
    except Exception as error:
        fail(f"{what}: backward() failed", "a gradient", f"{type(error).__name__}: {error}", no_gradient)
    exact = tuple(_double(a).clone().requires_grad_(True) if i in grad else _double(a) for i, a in enumerate(args))
    reference(*exact).sum().backward()
    for i in grad:
        got = given[i].grad
        if got is None or not torch.allclose(got.double(), exact[i].grad, atol=1e-6, rtol=1e-4):
            fail(f"{what}: the gradient with respect to argument {i + 1}", "the reference's gradient",
                 "no gradient" if got is None else "different values", no_gradient)


# ---- inputs --------------------------------------------------------------------------------


def _mask(spans: list[tuple[int, int]], time: int) -> torch.Tensor:
    """(batch, time) booleans, True on positions start <= t < end of each sequence's (start, end)."""
    t = torch.arange(time)
    return torch.stack([(t >= start) & (t < end) for start, end in spans])


def _random_batch(seed: int, batch: int, time: int, vocab: int, scale: float = 2.0):
    """Seeded logits, labels and a mask of (prompt, response, padding): every sequence has a response."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, time, vocab, generator=generator) * scale
    labels = torch.randint(vocab, (batch, time), generator=generator)
    draw = random.Random(seed)
    spans = []
    for _ in range(batch):
        start = draw.randint(0, time - 1)
        spans.append((start, draw.randint(start + 1, time)))
    return logits, labels, _mask(spans, time)


def _label_probabilities(labels: torch.Tensor, vocab: int, probabilities: torch.Tensor) -> torch.Tensor:
    """Logits under which labels[b, t] has probability probabilities[b, t], the other tokens sharing the rest."""
    p = probabilities.double()
    others = (1 - p) / (vocab - 1)
    logits = others.log()[..., None].expand(*labels.shape, vocab).clone()
    logits.scatter_(-1, labels[..., None], p.log()[..., None])
    return logits.float()


# ---- the SFT loss --------------------------------------------------------------------------

_SFT = ("the sum over the response tokens (loss_mask True) of -log softmax(logits)[label], divided by their "
        "number in the whole batch: F.cross_entropy(logits.reshape(-1, vocab), labels.masked_fill(~mask, -100)"
        ".reshape(-1)) (-100 is ignore_index), or nll[mask].mean()")
_SFT_SHAPE = "one number, the mean over every response token of the batch: a 0-dimensional tensor"
_SFT_NAN = ("NaN or inf on ordinary logits: a mean over no token is 0/0. Divide the sum over the whole batch by "
            "the number of response tokens in the whole batch (and use F.log_softmax or F.cross_entropy)")
_SFT_EMPTY_ROW = ("NaN: one sequence has no response token, so a mean per sequence is 0/0 there. Divide the sum "
                  "over the whole batch by the number of response tokens in the whole batch")
_SFT_REFUSE = ("a mask that selects no position leaves nothing to learn, and the mean over no token is 0/0: "
               "raise ValueError with a message when loss_mask selects nothing (not mask.any())")
_SHIFT = ("you shifted the labels again: this function does NOT shift, logits[b, t] already scores labels[b, t] "
          "(the caller shifted them)")


def _token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.log_softmax(-1).gather(-1, labels[..., None]).squeeze(-1)


def _shifted(logits, labels, mask) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(log p summed over each sequence's response, number of response tokens) with the labels shifted once
    more, for the two ways of shifting the mask along."""
    if labels.shape[1] < 2:
        return []
    log_p = _token_logprobs(logits[:, :-1], labels[:, 1:])
    return [((log_p * m).sum(-1), m.sum()) for m in (mask[:, 1:], mask[:, :-1])]


def _sft_mistakes(logits, labels, loss_mask) -> list[tuple[torch.Tensor, str]]:
    """What the usual mistakes give on these inputs, each with the hint that names it."""
    mask = loss_mask.bool()
    nll = -_token_logprobs(logits, labels)
    kept = nll * mask
    count = mask.sum()
    mean = kept.sum() / count
    p = (-nll).exp()
    mistakes = []
    if loss_mask.dtype != torch.bool:
        # Indexing with a 0/1 integer tensor picks whole rows 0 and 1, not positions.
        mistakes.append((nll[loss_mask.long()].mean(), _INT_MASK))
    mistakes += [
        (nll.mean(), "that is the mean over ALL positions, prompt included: loss_mask was ignored. Keep only the "
                     "response tokens: nll[mask].mean(), or (nll * mask).sum() / mask.sum()"),
        (nll[~mask].mean(), "that is the mean over the prompt (and padding) positions: the mask is inverted. "
                            "loss_mask is True on the response, the tokens to learn: keep those"),
        (kept.mean(), "you zeroed the prompt positions but divided by every position: divide by the number of "
                      "response tokens, mask.sum()"),
        (kept.sum(), f"that is the sum over the {int(count)} response tokens: divide by their number, mask.sum()"),
        ((kept.sum(-1) / mask.sum(-1)).mean(),
         "that is a mean per sequence, then the mean of those means: a short answer then weighs as much as a "
         "long one. Divide the sum over the whole batch by the number of response tokens in the whole batch"),
        (kept.sum(-1).mean() if len(kept) > 1 else torch.tensor(math.nan),
         "that sums over each sequence and averages over the batch: divide by the number of response tokens, "
         "mask.sum(), not by the batch size"),
        (mean / math.log(2), "that is in bits (log base 2): the loss is in nats, the natural log "
                             "(F.log_softmax, F.cross_entropy)"),
        (-mean, "the minus sign is missing: the loss is -log p(label), a positive number"),
        ((p * mask).sum() / count, "that is the probability of the label, softmax without the log: the loss is "
                                   "-log softmax(logits)[label], use F.log_softmax"),
        (-(p * mask).sum() / count, "that is minus the probability of the label, softmax without the log: the loss "
                                    "is -log softmax(logits)[label], use F.log_softmax"),
        (((1 - p) * mask).sum() / count, "that is 1 - the probability of the label, softmax without the log: the "
                                         "loss is -log softmax(logits)[label], use F.log_softmax"),
        (kept, "that is the loss at each position: average the response positions into one number"),
        (kept.sum(-1) / mask.sum(-1), "that is one loss per sequence: average over every response token of the "
                                      "batch, into one number"),
    ]
    mistakes += [(-sums.sum() / n, _SHIFT) for sums, n in _shifted(logits, labels, mask)]
    return mistakes


def _sft(fn, what: str, logits, labels, loss_mask, *, hint: str = _SFT, nonfinite: str = _SFT_NAN,
         gradient: bool = False) -> None:
    if logits.abs().max() > 80:
        nonfinite = _UNSTABLE
    _compare(fn, what, (logits, labels, loss_mask), ("logits", "labels", "loss_mask"), sft_loss, _sft_mistakes,
             hint=hint, shape_hint=_SFT_SHAPE, not_a_tensor=_NOT_A_TENSOR, nonfinite=nonfinite,
             grad=(0,) if gradient else (), no_gradient=_NO_GRADIENT)


def _hand_sft_case():
    """One sequence of 5 positions over 8 tokens: a prompt of 3 (label probability 1/8), a response of 2 (1/2)."""
    labels = torch.tensor([[4, 1, 6, 2, 5]])
    logits = _label_probabilities(labels, 8, torch.tensor([[1 / 8, 1 / 8, 1 / 8, 1 / 2, 1 / 2]]))
    return logits, labels, _mask([(3, 5)], 5)


def check_sft_loss(fn) -> None:
    """A hand-computed sequence, a batch of uneven responses with padding, huge logits, a gradient, no response."""
    _sft(fn, "one sequence, shape (1, 5, 8): a prompt of 3 tokens (label probability 1/8), then a response of 2 "
             "(label probability 1/2): the loss is log 2 ≈ 0.6931", *_hand_sft_case())
    logits, labels, _ = _random_batch(0, 2, 6, 7)
    mask = _mask([(2, 6), (3, 5)], 6)
    _sft(fn, "a batch of 2, shape (2, 6, 7): sequence 0 has a response of 4 tokens, sequence 1 of 2 tokens, then "
             "1 of padding", logits, labels, mask)
    _sft(fn, "huge logits (±1000), shape (1, 3, 3), the response at positions 1 and 2", _HUGE_LOGITS[None],
         _HUGE_TARGETS[None], torch.tensor([[False, True, True]]), hint=_UNSTABLE)
    _sft(fn, "the batch of shape (2, 6, 7) with logits.requires_grad = True", logits, labels, mask, gradient=True)
    refuses(fn, "sft_loss with a loss_mask that is all False (no response token)", _SFT_REFUSE,
            logits, labels, torch.zeros(2, 6, dtype=torch.bool))
    print("✅ sft_loss passes the visible tests.")


def check_sft_loss_hidden(fn) -> None:
    """A batch of 1, float64, a 0/1 integer mask, a sequence with no response, large logits, random cases."""
    logits, labels, _ = _random_batch(1, 1, 12, 30)
    _sft(fn, "a batch of 1, shape (1, 12, 30), the response from position 5 on", logits, labels, _mask([(5, 12)], 12))
    logits, labels, mask = _random_batch(2, 3, 7, 11)
    _sft(fn, "float64 logits, shape (3, 7, 11)", logits.double(), labels, mask)
    logits, labels, mask = _random_batch(3, 3, 8, 13)
    _sft(fn, "loss_mask given as 0/1 integers (torch.long), shape (3, 8, 13)", logits, labels, mask.long(),
         hint=_INT_MASK, nonfinite=_INT_MASK)
    logits, labels, _ = _random_batch(4, 3, 5, 6)
    _sft(fn, "a batch of 3, shape (3, 5, 6), where sequence 1 has no response token (all prompt and padding)",
         logits, labels, _mask([(1, 4), (5, 5), (2, 5)], 5), nonfinite=_SFT_EMPTY_ROW)
    _sft(fn, "large logits (scale 50), shape (2, 16, 40)", *_random_batch(5, 2, 16, 40, scale=50.0))
    for seed in range(6, 10):
        draw = random.Random(seed)
        shape = (draw.randint(1, 4), draw.randint(1, 12), draw.randint(2, 50))
        _sft(fn, f"random logits of shape {shape} (seed {seed})",
             *_random_batch(seed, *shape, scale=draw.choice((0.5, 3.0, 20.0))))
    logits, labels, mask = _random_batch(10, 4, 6, 9)
    _sft(fn, "shape (4, 6, 9), float64, with logits.requires_grad = True", logits.double(), labels, mask,
         gradient=True)
    refuses(fn, "sft_loss with a 0/1 integer loss_mask that is all 0", _SFT_REFUSE, logits, labels,
            torch.zeros(4, 6, dtype=torch.long))
    print("✅ sft_loss passes the hidden tests too.")


# ---- a sequence's log-probability ----------------------------------------------------------

_LOGPROB = ("for each sequence, the SUM over its response tokens (loss_mask True) of log softmax(logits)[label]: "
            "(F.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1) * mask).sum(-1)")
_LOGPROB_SHAPE = "one value per sequence, shape (batch,): sum over time only, .sum(dim=-1)"
_LOGPROB_NOT_A_TENSOR = ("return a torch tensor of shape (batch,), built with torch operations (no .item(), "
                         ".tolist() or Python floats): DPO's loss calls backward through it")
_LOGPROB_NO_GRADIENT = ("build it from `logits` with torch operations only: .item(), .detach(), .numpy(), "
                        "torch.tensor(...) or torch.no_grad() cut the graph that DPO's loss.backward() follows "
                        "back to the policy")
_LOGPROB_NAN = ("NaN or inf: a sequence with no response token has log-probability 0, the empty SUM (a mean "
                "over no token is 0/0); and use F.log_softmax, not log(softmax)")


def _logprob_mistakes(logits, labels, loss_mask) -> list[tuple[torch.Tensor, str]]:
    mask = loss_mask.bool()
    log_p = _token_logprobs(logits, labels)
    kept = log_p * mask
    total = kept.sum(-1)
    one_number = "return one value per sequence, shape (batch,): sum over time only, .sum(dim=-1)"
    mistakes = [
        (total / mask.sum(-1), "that is the mean over each response: DPO needs the SUM of the log-probabilities, "
                               "the log of the probability of the whole answer"),
        (log_p.sum(-1), "that sums over every position, prompt included: loss_mask was ignored. Keep only the "
                        "response tokens: (log_probs * mask).sum(-1)"),
        ((log_p * ~mask).sum(-1), "that sums over the prompt (and padding) positions: the mask is inverted. "
                                  "loss_mask is True on the response"),
        (-total, "the sign is wrong: return the log-probability (a negative number), not the loss -log p"),
        (total / math.log(2), "that is in bits (log base 2): use the natural log, F.log_softmax"),
        ((log_p.exp() * mask).sum(-1), "that sums probabilities, softmax without the log: use F.log_softmax"),
    ]
    if len(total) == 1:
        mistakes.append((total[0], "a batch of 1 still gives shape (1,), one value per sequence: no .squeeze() "
                                   "or .sum() over everything at the end"))
    else:
        mistakes += [(total.sum(), f"that is the total over the whole batch: {one_number}"),
                     (total.mean(), f"that is the mean over the batch: {one_number}")]
    mistakes += [
        (kept.sum() / mask.sum(), f"that is one number, the mean over every response token: {one_number}, "
                                  "a SUM per sequence"),
        (-kept.sum() / mask.sum(), f"that is the SFT loss, one number: {one_number}, a SUM of log-probabilities "
                                   "per sequence"),
        (kept, "that is one value per position: sum them over time, .sum(dim=-1)"),
    ]
    mistakes += [(sums, _SHIFT) for sums, _ in _shifted(logits, labels, mask)]
    return mistakes


def _logprob(fn, what: str, logits, labels, loss_mask, *, hint: str = _LOGPROB, nonfinite: str = _LOGPROB_NAN,
             gradient: bool = False) -> None:
    if logits.abs().max() > 80:
        nonfinite = _UNSTABLE
    _compare(fn, what, (logits, labels, loss_mask), ("logits", "labels", "loss_mask"), sequence_logprob,
             _logprob_mistakes, hint=hint, shape_hint=_LOGPROB_SHAPE, not_a_tensor=_LOGPROB_NOT_A_TENSOR,
             nonfinite=nonfinite, grad=(0,) if gradient else (), no_gradient=_LOGPROB_NO_GRADIENT)


def check_sequence_logprob(fn) -> None:
    """The one check of this exercise: a hand-computed pair of sequences, a random batch, a batch of 1 in
    float64, a 0/1 integer mask, a sequence with no response, huge logits, random cases, a gradient."""
    labels = torch.tensor([[3, 0, 2, 1], [1, 1, 3, 0]])
    probabilities = torch.tensor([[1 / 4, 1 / 2, 1 / 2, 1 / 4], [1 / 4, 1 / 4, 1 / 2, 1 / 4]])
    _logprob(fn, "two sequences, shape (2, 4, 4): sequence 0's response is 3 tokens of probability 1/2, 1/2 and 1/4, "
                 "sequence 1's is 1 token of probability 1/2 (then padding): the results are log(1/16) ≈ -2.7726 "
                 "and log(1/2) ≈ -0.6931", _label_probabilities(labels, 4, probabilities), labels,
             _mask([(1, 4), (2, 3)], 4))
    logits, labels, mask = _random_batch(20, 3, 6, 9)
    _logprob(fn, "a batch of 3, shape (3, 6, 9), with responses of different lengths", logits, labels, mask)
    logits, labels, _ = _random_batch(21, 1, 10, 17)
    _logprob(fn, "a batch of 1 in float64, shape (1, 10, 17)", logits.double(), labels, _mask([(4, 9)], 10))
    logits, labels, mask = _random_batch(23, 2, 8, 13)
    _logprob(fn, "loss_mask given as 0/1 integers (torch.long), shape (2, 8, 13)", logits, labels, mask.long(),
             hint=_INT_MASK, nonfinite=_INT_MASK)
    logits, labels, _ = _random_batch(24, 3, 5, 6)
    _logprob(fn, "a batch of 3 where sequence 1 has no response token: its log-probability is 0, the empty sum",
             logits, labels, _mask([(1, 4), (5, 5), (2, 5)], 5))
    _logprob(fn, "huge logits (±1000), shape (1, 3, 3), every position in the response", _HUGE_LOGITS[None],
             _HUGE_TARGETS[None], torch.ones(1, 3, dtype=torch.bool), hint=_UNSTABLE)
    for seed in range(25, 28):
        draw = random.Random(seed)
        shape = (draw.randint(1, 5), draw.randint(1, 12), draw.randint(2, 50))
        _logprob(fn, f"random logits of shape {shape} (seed {seed})",
                 *_random_batch(seed, *shape, scale=draw.choice((0.5, 3.0, 20.0))))
    logits, labels, mask = _random_batch(20, 3, 6, 9)
    _logprob(fn, "the batch of shape (3, 6, 9) with logits.requires_grad = True", logits, labels, mask,
             gradient=True)
    print("✅ sequence_logprob passes the tests.")


# ---- the reward model's loss (Bradley-Terry) -----------------------------------------------

_BT = "the mean over the pairs of -log sigmoid(r_chosen - r_rejected): -F.logsigmoid(r_chosen - r_rejected).mean()"
_BT_NO_GRADIENT = ("build the loss from the rewards with torch operations only: .item(), .detach(), .numpy(), "
                   "torch.tensor(...) or torch.no_grad() cut the graph back to the reward model")


def _bt_mistakes(r_chosen, r_rejected) -> list[tuple[torch.Tensor, str]]:
    d = r_chosen - r_rejected
    losses = -F.logsigmoid(d)
    without_log = ("sigmoid without the log: the probability that the chosen answer wins is sigmoid(r_chosen - "
                   "r_rejected), the loss is minus its log, -F.logsigmoid(...)")
    return [
        (-F.logsigmoid(-d).mean(), "chosen and rejected are swapped: the loss is -logsigmoid(r_chosen - r_rejected), "
                                   "small when the chosen answer has the higher reward"),
        (losses.sum(), "that is the sum over the pairs: return their mean, .mean()"),
        (-losses.mean(), "the minus sign is missing: the loss is -logsigmoid(...), a positive number"),
        (losses.mean() / math.log(2), "that is in bits (log base 2): use the natural log, F.logsigmoid"),
        (torch.sigmoid(d).mean(), f"that is {without_log}"),
        (-torch.sigmoid(d).mean(), f"that is minus the probability, {without_log}"),
        ((1 - torch.sigmoid(d)).mean(), f"that is 1 - the probability, {without_log}"),
        (losses, "that is one loss per pair: return their mean, one number, .mean()"),
    ]


def _bt(fn, what: str, r_chosen, r_rejected, *, hint: str = _BT, gradient: bool = False) -> None:
    _compare(fn, what, (r_chosen, r_rejected), ("r_chosen", "r_rejected"), bradley_terry_loss, _bt_mistakes,
             hint=hint, shape_hint="one number, the mean over the pairs: a 0-dimensional tensor",
             not_a_tensor=_NOT_A_TENSOR, nonfinite=_LOG_SIGMOID, grad=(0, 1) if gradient else (),
             no_gradient=_BT_NO_GRADIENT)


def check_bradley_terry_loss(fn) -> None:
    """Equal rewards (log 2), a batch of pairs, differences of ±200, a gradient."""
    _bt(fn, "equal rewards, 3 pairs: the chosen answer wins with probability sigmoid(0) = 1/2, the loss is "
            "log 2 ≈ 0.6931", torch.tensor([1.0, -2.0, 0.5]), torch.tensor([1.0, -2.0, 0.5]))
    # Swapping chosen and rejected changes the mean loss by the mean difference (softplus(x) - softplus(-x) = x):
    # these differences, 2, -0.5, 1 and -1.5, average 0.25, not 0.
    chosen, rejected = torch.tensor([2.0, 0.0, 1.5, -1.0]), torch.tensor([0.0, 0.5, 0.5, 0.5])
    _bt(fn, "4 pairs, r_chosen = [2, 0, 1.5, -1], r_rejected = [0, 0.5, 0.5, 0.5]", chosen, rejected)
    _bt(fn, "reward differences of +200, -200 and 2 (float32): the loss is (0 + 200 + 0.127) / 3 ≈ 66.709",
        torch.tensor([200.0, -200.0, 3.0]), torch.tensor([0.0, 0.0, 1.0]), hint=_LOG_SIGMOID)
    _bt(fn, "the 4 pairs with requires_grad = True on both rewards", chosen, rejected, gradient=True)
    print("✅ bradley_terry_loss passes the visible tests.")


def check_bradley_terry_loss_hidden(fn) -> None:
    """One pair, float64, random batches, differences of ±10,000 in float64, a gradient in float64."""
    _bt(fn, "a single pair, shape (1,)", torch.tensor([0.3]), torch.tensor([1.2]))
    generator = torch.Generator().manual_seed(30)
    _bt(fn, "16 pairs in float64", torch.randn(16, generator=generator, dtype=torch.float64),
        torch.randn(16, generator=generator, dtype=torch.float64))
    for seed in range(31, 35):
        draw = random.Random(seed)
        size, scale = draw.randint(2, 32), draw.choice((0.5, 5.0, 50.0))
        generator = torch.Generator().manual_seed(seed)
        _bt(fn, f"{size} random pairs, rewards of scale {scale} (seed {seed})",
            torch.randn(size, generator=generator) * scale, torch.randn(size, generator=generator) * scale)
    _bt(fn, "reward differences of ±10,000 in float64 (sigmoid(-10000) is 0 even in float64)",
        torch.tensor([1e4, -1e4, 0.0], dtype=torch.float64), torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64),
        hint=_LOG_SIGMOID)
    generator = torch.Generator().manual_seed(35)
    _bt(fn, "8 pairs in float64 with requires_grad = True", torch.randn(8, generator=generator, dtype=torch.float64),
        torch.randn(8, generator=generator, dtype=torch.float64), gradient=True)
    print("✅ bradley_terry_loss passes the hidden tests too.")


# ---- DPO's loss ----------------------------------------------------------------------------

_DPO = ("-F.logsigmoid(beta * ((pc - rc) - (pr - rr))) for each pair, with the arguments in the order "
        "(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)")
_DPO_SHAPE = "one loss per pair, shape (batch,), without .mean(): the trainer averages them"
_DPO_NOT_A_TENSOR = ("return a torch tensor of shape (batch,), one loss per pair (no .item() or .tolist()): the "
                     "trainer averages it and calls backward()")
_DPO_NO_GRADIENT = ("build the loss from the policy's log-probabilities with torch operations only: .item(), "
                    ".detach(), .numpy(), torch.tensor(...) or torch.no_grad() cut the graph back to the policy "
                    "(the reference is frozen; the policy's log-probabilities must carry the gradient)")
_DPO_REFUSE = "beta must be > 0: raise ValueError with a message otherwise"


def _dpo_mistakes(pc, pr, rc, rr, beta) -> list[tuple[torch.Tensor, str]]:
    z = (pc - rc) - (pr - rr)
    losses = -F.logsigmoid(beta * z)
    whole = "it multiplies the whole difference, -logsigmoid(beta * ((pc - rc) - (pr - rr)))"
    without_log = "sigmoid without the log: the loss is -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))"
    mistakes = [
        (-F.logsigmoid(z), f"beta is missing: {whole}"),
        (-F.logsigmoid(beta * (pc - rc) - (pr - rr)), f"beta multiplies only the chosen term: {whole}"),
        (-F.logsigmoid((pc - rc) - beta * (pr - rr)), f"beta multiplies only the rejected term: {whole}"),
        (-F.logsigmoid(beta * ((pc + rc) - (pr + rr))), "the reference terms have the wrong sign: subtract the "
                                                        "reference's log-probabilities, pc - rc and pr - rr"),
        (-F.logsigmoid(beta * ((pc - rc) + (pr - rr))), "the rejected term has the wrong sign: it is subtracted, "
                                                        "(pc - rc) - (pr - rr). Check the order of the arguments "
                                                        "too: (policy_chosen, policy_rejected, ref_chosen, "
                                                        "ref_rejected, beta)"),
        (-F.logsigmoid(beta * (pc - pr)), "the reference terms are missing: DPO measures the policy against the "
                                          "frozen reference, (pc - rc) - (pr - rr)"),
        (-F.logsigmoid(-beta * z), "chosen and rejected are swapped (or the reference's and the policy's): the "
                                   "margin is (pc - rc) - (pr - rr), positive when the policy favours the chosen "
                                   "answer more than the reference does"),
        (-losses, "the minus sign is missing: the loss is -logsigmoid(...), a positive number"),
        (torch.sigmoid(beta * z), f"that is {without_log}"),
        (-torch.sigmoid(beta * z), f"that is minus the probability, {without_log}"),
        (1 - torch.sigmoid(beta * z), f"that is 1 - the probability, {without_log}"),
    ]
    if len(z) == 1:
        mistakes.append((losses[0], "a single pair still gives shape (1,), one loss per pair: no .squeeze(), "
                                    ".mean() or .sum() at the end"))
    else:
        mistakes += [
            (losses.mean(), "that is the mean over the pairs: return the per-pair values, shape (batch,), without "
                            ".mean(); the trainer averages them"),
            (losses.sum(), "that is the sum over the pairs: return the per-pair values, shape (batch,)"),
        ]
    if beta != 0.1:
        mistakes.append((-F.logsigmoid(0.1 * z), "use the `beta` passed in, not a fixed 0.1"))
    return mistakes


def _dpo(fn, what: str, pc, pr, rc, rr, beta, *, hint: str = _DPO, gradient: bool = False) -> None:
    _compare(fn, f"{what}, beta = {beta}", (pc, pr, rc, rr, beta),
             ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps", "beta"),
             dpo_loss, _dpo_mistakes, hint=hint, shape_hint=_DPO_SHAPE, not_a_tensor=_DPO_NOT_A_TENSOR,
             nonfinite=_LOG_SIGMOID, grad=(0, 1) if gradient else (), no_gradient=_DPO_NO_GRADIENT)


def _t(*values: float, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def check_dpo_loss(fn) -> None:
    """The policy equal to the reference (log 2), two hand-made batches, a gradient, refusing beta <= 0."""
    pc, pr = _t(-12.0, -30.5, -7.25), _t(-15.0, -22.0, -9.5)
    _dpo(fn, "the policy equal to the reference, 3 pairs: every margin is 0, each loss log 2 ≈ 0.6931",
         pc, pr, pc.clone(), pr.clone(), 0.1)
    pc, pr = _t(-10.0, -25.0, -40.0, -8.0), _t(-12.0, -20.0, -35.0, -30.0)
    rc, rr = _t(-14.0, -22.0, -41.0, -20.0), _t(-11.0, -23.0, -36.0, -30.0)
    _dpo(fn, "4 pairs whose margins (pc - rc) - (pr - rr) are 5, -6, 0 and 12", pc, pr, rc, rr, 0.1)
    _dpo(fn, "the same 4 pairs", pc, pr, rc, rr, 0.5)
    _dpo(fn, "the 4 pairs with requires_grad = True on the policy's log-probabilities", pc, pr, rc, rr, 0.1,
         gradient=True)
    for beta in (0, -0.1):
        refuses(fn, f"dpo_loss with beta = {beta}", _DPO_REFUSE, pc, pr, rc, rr, beta)
    print("✅ dpo_loss passes the visible tests.")


def check_dpo_loss_hidden(fn) -> None:
    """One pair, float64, random batches and betas, margins of ±890, a float64 gradient, more refusals."""
    _dpo(fn, "a single pair, shape (1,)", _t(-20.0), _t(-18.0), _t(-21.0), _t(-17.5), 0.1)
    generator = torch.Generator().manual_seed(40)

    def logps(size: int, dtype=torch.float32) -> torch.Tensor:
        # Sums of token log-probabilities over answers of a few dozen tokens: tens to hundreds of nats.
        return -(torch.rand(size, generator=generator, dtype=torch.float64) * 250 + 20).to(dtype)

    _dpo(fn, "8 pairs in float64", *(logps(8, torch.float64) for _ in range(4)), 0.1)
    _dpo(fn, "margins of +890 and -890 (float32)", _t(-10.0, -900.0), _t(-900.0, -10.0), _t(-50.0, -50.0),
         _t(-50.0, -50.0), 1.0, hint=_LOG_SIGMOID)
    for seed in range(41, 45):
        draw = random.Random(seed)
        size, beta = draw.randint(2, 16), draw.choice((0.01, 0.05, 0.2, 1.0, 2))
        _dpo(fn, f"{size} random pairs (seed {seed})", *(logps(size) for _ in range(4)), beta)
    _dpo(fn, "6 pairs in float64 with requires_grad = True on the policy's log-probabilities",
         *(logps(6, torch.float64) for _ in range(4)), 0.3, gradient=True)
    pc, pr, rc, rr = (logps(3) for _ in range(4))
    for beta in (-1.0, 0.0):
        refuses(fn, f"dpo_loss with beta = {beta}", _DPO_REFUSE, pc, pr, rc, rr, beta)
    print("✅ dpo_loss passes the hidden tests too.")


# --- evaluate the claim ------------------------------------------------------------------------
CLAIM_JOBS = {"a": "built the knowledge (pre-training)", "b": "shaped the behaviour of a model someone else pre-trained"}
CLOSER_TO = ("chance", "right")


def check_post_training_claims(claim_job, sft_overlap_closer_to, hardest_flaw, *, sft_overlap: float,
                               chance: float, reward_accuracy: dict[str, float]) -> None:
    """The three answers of notebook D's "evaluate the claim", against what this notebook measured.

    claim_job: "a" or "b" (a fine-tune of an open base model shapes behaviour; it does not build knowledge).
    sft_overlap_closer_to: "chance" or "right": is the SFT model's word overlap with the right answers
    (sft_overlap) nearer the chance level (chance) or a perfect 1?
    hardest_flaw: the flaw the reward model caught least often on held-out pairs (reward_accuracy).
    """
    from course_lib.data.instructions import FLAWS

    if claim_job != "b":
        fail("1. What did the startup do?", '"b": they shaped a model someone else pre-trained',
             repr(claim_job), "fine-tuning and preference tuning change how a model answers; what it can know was "
             "set by the pre-training of the open base model they started from")
    if sft_overlap_closer_to not in CLOSER_TO:
        fail("2. Set sft_overlap_closer_to", f"one of {CLOSER_TO}", repr(sft_overlap_closer_to))
    measured = "chance" if abs(sft_overlap - chance) < abs(1 - sft_overlap) else "right"
    if sft_overlap_closer_to != measured:
        fail("2. Where did your SFT model's answers land?", repr(measured), repr(sft_overlap_closer_to),
             f"you measured a word overlap of {sft_overlap:.2f} with the right answers; answers about some "
             f"other function score {chance:.2f}, a perfect answer 1")
    if hardest_flaw not in FLAWS:
        fail("3. Set hardest_flaw", f"one of {FLAWS}", repr(hardest_flaw))
    lowest = min(reward_accuracy[f] for f in FLAWS)
    if reward_accuracy[hardest_flaw] > lowest:
        fail("3. Which flaw did your reward model catch least often?",
             " or ".join(repr(f) for f in FLAWS if reward_accuracy[f] == lowest), repr(hardest_flaw),
             "read the held-out accuracy per flaw: " + ", ".join(f"{f} {reward_accuracy[f]:.0%}" for f in FLAWS))
    print("✅ All three answers agree with what you measured.")
