"""Notebook D's exercises: the losses of post-training (SFT, a reward model, DPO), and the claim.

Supervised fine-tuning (SFT) trains on (prompt, response) pairs with the pre-training loss, but
only the response is scored: the model should learn to write the answer, not the question.
A reward model scores answers so that the one people preferred wins (Bradley-Terry). DPO
(Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model Is Secretly a Reward
Model") learns from the same preference pairs without a reward model or sampling.

Shapes: logits (batch, time, vocab); labels (batch, time), where labels[b, t] is the token that
follows position t (the caller has shifted them: logits[b, t] scores labels[b, t]); loss_mask
(batch, time), True (or 1) on response tokens, False (0) on the prompt and on padding.

When an answer is wrong, the cases compute what the usual mistakes would have given (the mask
ignored or inverted, a mean per sequence, a mean instead of a sum, chosen and rejected swapped,
beta on one term only, log(sigmoid()) overflowing, ...) and name the one that matches. The
notebook's "evaluate the claim" is checked against what it measured.
"""
from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from course_lib.data.instructions import FLAWS
from course_lib.exercises.engine import Exercise, Float64Case, Hint, Trial
from course_lib.validation import is_number

# The label value F.cross_entropy skips (its default ignore_index; Hugging Face uses it for the
# positions a model should not learn from).
IGNORE_INDEX = -100


def _checked(logits, labels, loss_mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits in at least float32, labels, and the mask as booleans; or a ValueError saying what is wrong."""
    if not torch.is_tensor(logits) or logits.dim() != 3 or not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor of shape (batch, time, vocab), got "
                         f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__}")
    labels = torch.as_tensor(labels, device=logits.device)
    mask = torch.as_tensor(loss_mask, device=logits.device)
    if tuple(labels.shape) != tuple(logits.shape[:2]) or tuple(mask.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"labels and loss_mask must have shape (batch, time) = {tuple(logits.shape[:2])}, "
                         f"got {tuple(labels.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"loss_mask must be boolean or 0/1 integers, got dtype {mask.dtype}")
        mask = mask.bool()
    # Half-precision logits lose too much in a softmax over a large vocabulary; float64 stays float64.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits, labels.long(), mask


def sft_loss(logits, labels, loss_mask) -> torch.Tensor:
    """Mean cross-entropy, in nats, over the response tokens only: learn to write the answer, not the question.

    The sum over every masked position in the batch of -log softmax(logits)[label], divided by the
    number of masked positions in the whole batch (not a mean per sequence: a long answer counts
    more than a short one, token by token). Raises ValueError if the mask selects no position.
    """
    logits, labels, mask = _checked(logits, labels, loss_mask)
    if not mask.any():
        raise ValueError("loss_mask selects no position (no response token), and the mean over no "
                         "token is 0/0: give each batch at least one response token")
    # Labels outside the mask become IGNORE_INDEX, which F.cross_entropy leaves out of the mean.
    targets = labels.masked_fill(~mask, IGNORE_INDEX)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def sequence_logprob(logits, labels, loss_mask) -> torch.Tensor:
    """Each sequence's log-probability of its response: shape (batch,).

    The SUM over the response (masked) positions of log softmax(logits)[label]: the log of the
    probability the model gives the whole answer, one token after the other. A sequence with no
    response token gets 0 (the empty sum). DPO compares these between two answers and two models.
    """
    logits, labels, mask = _checked(logits, labels, loss_mask)
    log_probs = F.log_softmax(logits, dim=-1)
    # Any valid index will do where the mask is off: those positions are zeroed below.
    picked = log_probs.gather(-1, labels.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, picked, torch.zeros((), dtype=picked.dtype, device=picked.device)).sum(dim=-1)


def _checked_pair(*tensors) -> list[torch.Tensor]:
    tensors = [torch.as_tensor(t) for t in tensors]
    tensors = [t if t.is_floating_point() else t.float() for t in tensors]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1 or tensors[0].dim() != 1 or tensors[0].numel() == 0:
        raise ValueError(f"expected tensors of the same shape (batch,), one value per pair, got shapes "
                         f"{[tuple(t.shape) for t in tensors]}")
    return tensors


def bradley_terry_loss(r_chosen, r_rejected) -> torch.Tensor:
    """The reward model's loss: mean over the pairs of -log sigmoid(r_chosen - r_rejected).

    Bradley-Terry: the probability that the chosen answer wins is sigmoid of the reward
    difference, so the loss is minus its log. F.logsigmoid stays finite where log(sigmoid(x))
    would take log(0) (x = -200 already in float32).
    """
    r_chosen, r_rejected = _checked_pair(r_chosen, r_rejected)
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
             beta: float) -> torch.Tensor:
    """DPO's loss for each pair, shape (batch,), NOT averaged (the trainer takes the mean).

    -log sigmoid(beta * ((pc - rc) - (pr - rr))), with pc, pr the policy's sequence log-probabilities
    of the chosen and rejected answers and rc, rr the frozen reference model's. The policy is
    pushed to raise the chosen answer's log-probability relative to the reference more than the
    rejected one's; beta > 0 sets how far from the reference it may move (small beta: far).
    """
    if not is_number(beta) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    pc, pr, rc, rr = _checked_pair(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                                   ref_rejected_logps)
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))


# --------------------------------------------------------------------------------------------
# What the cases below share
# --------------------------------------------------------------------------------------------
# A wrong version's result on an input where that mistake cannot be made (a mean over the batch of
# a batch of 1, say): NaN matches no result.
NOT_MADE = torch.tensor(math.nan)

# Logits of ±1000: exp() overflows, and log(softmax) takes log(0), for any but a stable computation.
HUGE_LOGITS = torch.tensor([[[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0], [-1000.0, -1000.0, 1000.0]]])
HUGE_LABELS = torch.tensor([[0, 2, 0]])

UNSTABLE = ("exp() of a logit as large as 1000 overflows to inf (and log(softmax) gives log(0) = -inf for a "
            "token with a tiny probability): use F.log_softmax or F.cross_entropy, which subtract the largest "
            "logit first (the log-sum-exp trick)")
IN_PLACE = ("use operations that return new tensors (labels.masked_fill(~mask, -100), torch.where, "
            "log_probs * mask), not in-place ones (masked_fill_, x[...] = ..., +=): the caller still needs "
            "its batch")
INT_MASK = ("loss_mask may come as 0/1 integers instead of booleans: convert it first, mask = loss_mask.bool() "
            "(indexing with an integer tensor picks rows by number, and ~ on integers is not a logical not)")
LOG_SIGMOID = ("log(sigmoid(x)) is log(0) = -inf once sigmoid(x) underflows to 0 (x = -200 already in float32), "
               "and log(1 + exp(-x)) overflows exp(): use F.logsigmoid(x), which is computed stably "
               "(-F.logsigmoid(x) equals F.softplus(-x))")
NOT_A_TENSOR = ("return the loss as a torch tensor, not a Python number (no .item() or float()): "
                "training calls loss.backward() on it")
SHIFTED_AGAIN = ("you shifted the labels again: this function does NOT shift, logits[b, t] already scores "
                 "labels[b, t] (the caller shifted them)")


def compared(what: str, *args, key: str = "values", nonfinite: str = "not_finite", grad: tuple[int, ...] = ()):
    """The learner's function against the answer on args. A case with its own key (huge logits, an
    integer mask) names an error the learner's function raises there by that key too."""
    return Float64Case(what, args, key=key, not_finite=nonfinite, raised="raised" if key == "values" else key, grad=grad)


def logits_case(what: str, logits, labels, loss_mask, *, key: str = "values", nonfinite: str = "not_finite",
                grad: bool = False):
    """A case of sft_loss or sequence_logprob; on logits this large, inf or NaN means exp() overflowed."""
    return compared(what, logits, labels, loss_mask, key=key, nonfinite="unstable" if logits.abs().max() > 80
                    else nonfinite, grad=(0,) if grad else ())


def probe_on_one_response(fn):
    """sft_loss or sequence_logprob on one sequence of 3 positions, the last 2 the response."""
    return fn(torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), torch.tensor([[False, True, True]]))


def spans_mask(spans: list[tuple[int, int]], time: int) -> torch.Tensor:
    """(batch, time) booleans, True on positions start <= t < end of each sequence's (start, end)."""
    t = torch.arange(time)
    return torch.stack([(t >= start) & (t < end) for start, end in spans])


def random_batch(seed: int, batch: int, time: int, vocab: int, scale: float = 2.0):
    """Seeded logits, labels and a mask of (prompt, response, padding): every sequence has a response."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, time, vocab, generator=generator) * scale
    labels = torch.randint(vocab, (batch, time), generator=generator)
    draw = random.Random(seed)
    spans = []
    for _ in range(batch):
        start = draw.randint(0, time - 1)
        spans.append((start, draw.randint(start + 1, time)))
    return logits, labels, spans_mask(spans, time)


def random_shape_batches(seeds, max_batch: int):
    """(what, logits, labels, mask) for seeded random shapes and logit scales."""
    for seed in seeds:
        draw = random.Random(seed)
        shape = (draw.randint(1, max_batch), draw.randint(1, 12), draw.randint(2, 50))
        yield (f"random logits of shape {shape} (seed {seed})",
               *random_batch(seed, *shape, scale=draw.choice((0.5, 3.0, 20.0))))


def with_mask(batch, spans: list[tuple[int, int]]):
    """The batch's logits and labels with the mask of these (start, end) responses instead."""
    logits, labels, _ = batch
    return logits, labels, spans_mask(spans, labels.shape[1])


def in_float64(batch):
    logits, labels, mask = batch
    return logits.double(), labels, mask


def with_integer_mask(batch):
    logits, labels, mask = batch
    return logits, labels, mask.long()


def label_probabilities(labels: torch.Tensor, vocab: int, probabilities: torch.Tensor) -> torch.Tensor:
    """Logits under which labels[b, t] has probability probabilities[b, t], the other tokens sharing the rest."""
    p = probabilities.double()
    others = (1 - p) / (vocab - 1)
    logits = others.log()[..., None].expand(*labels.shape, vocab).clone()
    logits.scatter_(-1, labels[..., None], p.log()[..., None])
    return logits.float()


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.log_softmax(-1).gather(-1, labels[..., None]).squeeze(-1)


def on_logprobs(mistake):
    """A wrong version of sft_loss or sequence_logprob, from what it does with log p(label) at each
    position and the mask as booleans: mistake(log_p, mask)."""
    return lambda logits, labels, loss_mask: mistake(token_logprobs(logits, labels), loss_mask.bool())


def response_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of values over the response tokens of the whole batch."""
    return (values * mask).sum() / mask.sum()


def shifted_again(mask_with_labels: bool):
    """log p(label) summed over each response and the number of response tokens, with the labels
    shifted once more and the mask shifted along with the labels or with the logits."""
    def shifted(logits, labels, loss_mask):
        if labels.shape[1] < 2:
            return NOT_MADE, NOT_MADE
        mask = loss_mask.bool()
        mask = mask[:, 1:] if mask_with_labels else mask[:, :-1]
        return (token_logprobs(logits[:, :-1], labels[:, 1:]) * mask).sum(-1), mask.sum()
    return shifted


def int_mask_as_index(logits, labels, loss_mask):
    """The mean -log p over nll[loss_mask] with a 0/1 integer mask, which picks rows 0 and 1."""
    if loss_mask.dtype == torch.bool:
        return NOT_MADE
    return -token_logprobs(logits, labels)[loss_mask.long()].mean()


# --------------------------------------------------------------------------------------------
# sft_loss
# --------------------------------------------------------------------------------------------
def sft_shifted_again(mask_with_labels: bool):
    def wrong(logits, labels, loss_mask):
        sums, count = shifted_again(mask_with_labels)(logits, labels, loss_mask)
        return -sums.sum() / count
    return wrong


SFT_WRONG = {
    "int_mask": int_mask_as_index,
    "mask_ignored": on_logprobs(lambda log_p, mask: -log_p.mean()),
    "mask_inverted": on_logprobs(lambda log_p, mask: -log_p[~mask].mean()),
    "divided_by_all": on_logprobs(lambda log_p, mask: -(log_p * mask).mean()),
    "sum": on_logprobs(lambda log_p, mask: -(log_p * mask).sum()),
    "mean_of_means": on_logprobs(lambda log_p, mask: (-(log_p * mask).sum(-1) / mask.sum(-1)).mean()),
    "divided_by_batch_size": on_logprobs(lambda log_p, mask: -(log_p * mask).sum(-1).mean() if len(log_p) > 1
                                         else NOT_MADE),
    "bits": on_logprobs(lambda log_p, mask: -response_mean(log_p, mask) / math.log(2)),
    "no_minus": on_logprobs(lambda log_p, mask: response_mean(log_p, mask)),
    "probability": on_logprobs(lambda log_p, mask: response_mean(log_p.exp(), mask)),
    "minus_probability": on_logprobs(lambda log_p, mask: -response_mean(log_p.exp(), mask)),
    "one_minus_probability": on_logprobs(lambda log_p, mask: response_mean(1 - log_p.exp(), mask)),
    "per_position": on_logprobs(lambda log_p, mask: -log_p * mask),
    "per_sequence": on_logprobs(lambda log_p, mask: -(log_p * mask).sum(-1) / mask.sum(-1)),
    "shifted_again": sft_shifted_again(mask_with_labels=True),
    "shifted_again_mask_with_logits": sft_shifted_again(mask_with_labels=False),
}


def hand_sft_case():
    """One sequence of 5 positions over 8 tokens: a prompt of 3 (label probability 1/8), a response of 2 (1/2)."""
    labels = torch.tensor([[4, 1, 6, 2, 5]])
    logits = label_probabilities(labels, 8, torch.tensor([[1 / 8, 1 / 8, 1 / 8, 1 / 2, 1 / 2]]))
    return logits, labels, spans_mask([(3, 5)], 5)


SFT_VALUES = ("the sum over the response tokens (loss_mask True) of -log softmax(logits)[label], divided by "
              "their number in the whole batch: F.cross_entropy(logits.reshape(-1, vocab), "
              "labels.masked_fill(~mask, -100).reshape(-1)) (-100 is ignore_index), or nll[mask].mean()")
SFT_BATCH = with_mask(random_batch(0, 2, 6, 7), [(2, 6), (3, 5)])
SFT_GRADIENT = random_batch(10, 4, 6, 9)


def sft_refuses_an_empty_mask(t: Trial) -> None:
    t.refuses("sft_loss with a loss_mask that is all False (no response token)", *SFT_BATCH[:2],
              torch.zeros(2, 6, dtype=torch.bool))


def sft_refuses_an_empty_integer_mask(t: Trial) -> None:
    t.refuses("sft_loss with a 0/1 integer loss_mask that is all 0", *SFT_GRADIENT[:2],
              torch.zeros(4, 6, dtype=torch.long))


SFT_LOSS = Exercise(
    name="sft_loss",
    answer=sft_loss,
    probe=probe_on_one_response,
    mistakes={
        "values": SFT_VALUES,
        "raised": SFT_VALUES,
        "shape": "one number, the mean over every response token of the batch: a 0-dimensional tensor",
        "not_a_tensor": NOT_A_TENSOR,
        "no_gradient": "build the loss from `logits` with torch operations only: .item(), .detach(), .numpy(), "
                       "torch.tensor(...) or torch.no_grad() cut the graph that loss.backward() follows",
        "changed_input": IN_PLACE,
        "not_finite": "NaN or inf on ordinary logits: a mean over no token is 0/0. Divide the sum over the whole "
                      "batch by the number of response tokens in the whole batch (and use F.log_softmax or "
                      "F.cross_entropy)",
        "empty_row": "NaN: one sequence has no response token, so a mean per sequence is 0/0 there. Divide the sum "
                     "over the whole batch by the number of response tokens in the whole batch",
        "unstable": UNSTABLE,
        "int_mask": INT_MASK,
        "no_refusal": "a mask that selects no position leaves nothing to learn, and the mean over no token is "
                      "0/0: raise ValueError with a message when loss_mask selects nothing (not mask.any())",
        "mask_ignored": "that is the mean over ALL positions, prompt included: loss_mask was ignored. Keep only the "
                        "response tokens: nll[mask].mean(), or (nll * mask).sum() / mask.sum()",
        "mask_inverted": "that is the mean over the prompt (and padding) positions: the mask is inverted. "
                         "loss_mask is True on the response, the tokens to learn: keep those",
        "divided_by_all": "you zeroed the prompt positions but divided by every position: divide by the number of "
                          "response tokens, mask.sum()",
        "sum": "that is the sum over the response tokens: divide by their number, mask.sum()",
        "mean_of_means": "that is a mean per sequence, then the mean of those means: a short answer then weighs as "
                         "much as a long one. Divide the sum over the whole batch by the number of response tokens "
                         "in the whole batch",
        "divided_by_batch_size": "that sums over each sequence and averages over the batch: divide by the number of "
                                 "response tokens, mask.sum(), not by the batch size",
        "bits": "that is in bits (log base 2): the loss is in nats, the natural log (F.log_softmax, F.cross_entropy)",
        "no_minus": "the minus sign is missing: the loss is -log p(label), a positive number",
        "probability": "that is the probability of the label, softmax without the log: the loss is "
                       "-log softmax(logits)[label], use F.log_softmax",
        "minus_probability": "that is minus the probability of the label, softmax without the log: the loss is "
                             "-log softmax(logits)[label], use F.log_softmax",
        "one_minus_probability": "that is 1 - the probability of the label, softmax without the log: the loss is "
                                 "-log softmax(logits)[label], use F.log_softmax",
        "per_position": "that is the loss at each position: average the response positions into one number",
        "per_sequence": "that is one loss per sequence: average over every response token of the batch, into one "
                        "number",
        "shifted_again": SHIFTED_AGAIN,
        "shifted_again_mask_with_logits": SHIFTED_AGAIN,
    },
    wrong=SFT_WRONG,
    visible=(
        logits_case("one sequence, shape (1, 5, 8): a prompt of 3 tokens (label probability 1/8), then a response "
                    "of 2 (label probability 1/2): the loss is log 2 ≈ 0.6931", *hand_sft_case()),
        logits_case("a batch of 2, shape (2, 6, 7): sequence 0 has a response of 4 tokens, sequence 1 of 2 tokens, "
                    "then 1 of padding", *SFT_BATCH),
        logits_case("huge logits (±1000), shape (1, 3, 3), the response at positions 1 and 2", HUGE_LOGITS,
                    HUGE_LABELS, torch.tensor([[False, True, True]]), key="unstable"),
        logits_case("the batch of shape (2, 6, 7) with logits.requires_grad = True", *SFT_BATCH, grad=True),
        sft_refuses_an_empty_mask,
    ),
    hidden=(
        logits_case("a batch of 1, shape (1, 12, 30), the response from position 5 on",
                    *with_mask(random_batch(1, 1, 12, 30), [(5, 12)])),
        logits_case("float64 logits, shape (3, 7, 11)", *in_float64(random_batch(2, 3, 7, 11))),
        logits_case("loss_mask given as 0/1 integers (torch.long), shape (3, 8, 13)",
                    *with_integer_mask(random_batch(3, 3, 8, 13)), key="int_mask",
                    nonfinite="int_mask"),
        logits_case("a batch of 3, shape (3, 5, 6), where sequence 1 has no response token (all prompt and "
                    "padding)", *with_mask(random_batch(4, 3, 5, 6), [(1, 4), (5, 5), (2, 5)]),
                    nonfinite="empty_row"),
        logits_case("large logits (scale 50), shape (2, 16, 40)", *random_batch(5, 2, 16, 40, scale=50.0)),
        *(logits_case(*batch) for batch in random_shape_batches(range(6, 10), max_batch=4)),
        logits_case("shape (4, 6, 9), float64, with logits.requires_grad = True", SFT_GRADIENT[0].double(),
                    *SFT_GRADIENT[1:], grad=True),
        sft_refuses_an_empty_integer_mask,
    ),
    hints=(
        Hint("Start with the log-probability of every label: `log_probs = torch.log_softmax(logits, dim=-1)` "
             "(stable even for logits of 1000, where `exp` overflows), then pick each label's entry with "
             "`log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)`, one number per (batch, time) position. "
             "Do not shift anything: `logits[b, t]` already scores `labels[b, t]`.",
             fits=("unstable", "probability", "minus_probability", "one_minus_probability", "bits",
                   "shifted_again", "shifted_again_mask_with_logits", "raised")),
        Hint("Now keep the answer positions only. Turn the mask into booleans first, `mask = "
             "torch.as_tensor(loss_mask).bool()` (it may come as 0/1 integers); then `picked[mask]` is a flat "
             "list of every answer token's log-probability in the whole batch. Take ONE mean over that list, "
             "not a mean per sequence: a long answer counts more than a short one.",
             fits=("int_mask", "mask_ignored", "mask_inverted", "divided_by_all", "mean_of_means",
                   "divided_by_batch_size", "per_sequence", "per_position", "empty_row", "sum")),
        Hint("The loss is minus that mean, a positive number and a 0-dimensional tensor: `-picked[mask].mean()`. "
             "Before it, `if not mask.any(): raise ValueError(\"...\")`, since the mean of no token is 0/0. "
             "Stay in torch (no `.item()`) and use no in-place operations such as `masked_fill_`.",
             fits=("no_minus", "no_refusal", "not_finite", "shape", "not_a_tensor", "no_gradient",
                   "changed_input", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# sequence_logprob
# --------------------------------------------------------------------------------------------
ONE_VALUE_PER_SEQUENCE = "return one value per sequence, shape (batch,): sum over time only, .sum(dim=-1)"
LOGPROB_VALUES = ("for each sequence, the SUM over its response tokens (loss_mask True) of log softmax(logits)"
                  "[label]: (F.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1) * mask).sum(-1)")
LOGPROB_BATCH = random_batch(20, 3, 6, 9)

SEQUENCE_LOGPROB = Exercise(
    name="sequence_logprob",
    answer=sequence_logprob,
    probe=probe_on_one_response,
    mistakes={
        "values": LOGPROB_VALUES,
        "raised": LOGPROB_VALUES,
        "shape": "one value per sequence, shape (batch,): sum over time only, .sum(dim=-1)",
        "not_a_tensor": "return a torch tensor of shape (batch,), built with torch operations (no .item(), "
                        ".tolist() or Python floats): DPO's loss calls backward through it",
        "no_gradient": "build it from `logits` with torch operations only: .item(), .detach(), .numpy(), "
                       "torch.tensor(...) or torch.no_grad() cut the graph that DPO's loss.backward() follows "
                       "back to the policy",
        "changed_input": IN_PLACE,
        "not_finite": "NaN or inf: a sequence with no response token has log-probability 0, the empty SUM (a mean "
                      "over no token is 0/0); and use F.log_softmax, not log(softmax)",
        "unstable": UNSTABLE,
        "int_mask": INT_MASK,
        "mean_per_response": "that is the mean over each response: DPO needs the SUM of the log-probabilities, "
                             "the log of the probability of the whole answer",
        "mask_ignored": "that sums over every position, prompt included: loss_mask was ignored. Keep only the "
                        "response tokens: (log_probs * mask).sum(-1)",
        "mask_inverted": "that sums over the prompt (and padding) positions: the mask is inverted. loss_mask is "
                         "True on the response",
        "sign": "the sign is wrong: return the log-probability (a negative number), not the loss -log p",
        "bits": "that is in bits (log base 2): use the natural log, F.log_softmax",
        "probabilities": "that sums probabilities, softmax without the log: use F.log_softmax",
        "squeezed": "a batch of 1 still gives shape (1,), one value per sequence: no .squeeze() or .sum() over "
                    "everything at the end",
        "batch_total": f"that is the total over the whole batch: {ONE_VALUE_PER_SEQUENCE}",
        "batch_mean": f"that is the mean over the batch: {ONE_VALUE_PER_SEQUENCE}",
        "token_mean": f"that is one number, the mean over every response token: {ONE_VALUE_PER_SEQUENCE}, a SUM "
                      "per sequence",
        "sft_loss": f"that is the SFT loss, one number: {ONE_VALUE_PER_SEQUENCE}, a SUM of log-probabilities per "
                    "sequence",
        "per_position": "that is one value per position: sum them over time, .sum(dim=-1)",
        "shifted_again": SHIFTED_AGAIN,
        "shifted_again_mask_with_logits": SHIFTED_AGAIN,
    },
    wrong={
        "mean_per_response": on_logprobs(lambda log_p, mask: (log_p * mask).sum(-1) / mask.sum(-1)),
        "mask_ignored": on_logprobs(lambda log_p, mask: log_p.sum(-1)),
        "mask_inverted": on_logprobs(lambda log_p, mask: (log_p * ~mask).sum(-1)),
        "sign": on_logprobs(lambda log_p, mask: -(log_p * mask).sum(-1)),
        "bits": on_logprobs(lambda log_p, mask: (log_p * mask).sum(-1) / math.log(2)),
        "probabilities": on_logprobs(lambda log_p, mask: (log_p.exp() * mask).sum(-1)),
        "squeezed": on_logprobs(lambda log_p, mask: (log_p * mask).sum(-1)[0] if len(log_p) == 1 else NOT_MADE),
        "batch_total": on_logprobs(lambda log_p, mask: (log_p * mask).sum() if len(log_p) > 1 else NOT_MADE),
        "batch_mean": on_logprobs(lambda log_p, mask: (log_p * mask).sum(-1).mean() if len(log_p) > 1 else NOT_MADE),
        "token_mean": on_logprobs(response_mean),
        "sft_loss": on_logprobs(lambda log_p, mask: -response_mean(log_p, mask)),
        "per_position": on_logprobs(lambda log_p, mask: log_p * mask),
        "shifted_again": lambda *batch: shifted_again(mask_with_labels=True)(*batch)[0],
        "shifted_again_mask_with_logits": lambda *batch: shifted_again(mask_with_labels=False)(*batch)[0],
    },
    visible=(
        logits_case("two sequences, shape (2, 4, 4): sequence 0's response is 3 tokens of probability 1/2, 1/2 and "
                    "1/4, sequence 1's is 1 token of probability 1/2 (then padding): the results are log(1/16) ≈ "
                    "-2.7726 and log(1/2) ≈ -0.6931",
                    label_probabilities(torch.tensor([[3, 0, 2, 1], [1, 1, 3, 0]]), 4,
                                        torch.tensor([[1 / 4, 1 / 2, 1 / 2, 1 / 4], [1 / 4, 1 / 4, 1 / 2, 1 / 4]])),
                    torch.tensor([[3, 0, 2, 1], [1, 1, 3, 0]]), spans_mask([(1, 4), (2, 3)], 4)),
        logits_case("a batch of 3, shape (3, 6, 9), with responses of different lengths", *LOGPROB_BATCH),
        logits_case("a batch of 1 in float64, shape (1, 10, 17)",
                    *in_float64(with_mask(random_batch(21, 1, 10, 17), [(4, 9)]))),
        logits_case("loss_mask given as 0/1 integers (torch.long), shape (2, 8, 13)",
                    *with_integer_mask(random_batch(23, 2, 8, 13)), key="int_mask",
                    nonfinite="int_mask"),
        logits_case("a batch of 3 where sequence 1 has no response token: its log-probability is 0, the empty sum",
                    *with_mask(random_batch(24, 3, 5, 6), [(1, 4), (5, 5), (2, 5)])),
        logits_case("huge logits (±1000), shape (1, 3, 3), every position in the response", HUGE_LOGITS,
                    HUGE_LABELS, torch.ones(1, 3, dtype=torch.bool), key="unstable"),
        *(logits_case(*batch) for batch in random_shape_batches(range(25, 28), max_batch=5)),
        logits_case("the batch of shape (3, 6, 9) with logits.requires_grad = True", *LOGPROB_BATCH, grad=True),
    ),
    passed=lambda t: "✅ sequence_logprob passes the tests.",
    hints=(
        Hint("Start as in `sft_loss`: `torch.log_softmax(logits, dim=-1)`, then `.gather(-1, "
             "labels.unsqueeze(-1)).squeeze(-1)` for each label's log-probability, shape (batch, time). No "
             "shift, the natural log, and no minus sign: a log-probability is a negative number, not a loss.",
             fits=("unstable", "probabilities", "bits", "sign", "shifted_again", "shifted_again_mask_with_logits",
                   "raised")),
        Hint("Here the mask must keep the sequences apart, so do not pull the answer tokens out with "
             "`picked[mask]` (that mixes every sequence into one list). Zero the prompt and padding positions "
             "instead: multiply by the mask, or `torch.where(mask, picked, 0.0)`, after `mask = "
             "torch.as_tensor(loss_mask).bool()`.",
             fits=("int_mask", "mask_ignored", "mask_inverted", "changed_input", "token_mean", "sft_loss")),
        Hint("Then add up over time only, `.sum(dim=-1)`, which leaves shape (batch,): a SUM, not a mean, so a "
             "sequence with no answer token gets 0. Keep that shape even for a batch of 1 (no `.squeeze()`), and "
             "stay in torch (no `.item()` or `.tolist()`).",
             fits=("shape", "per_position", "mean_per_response", "batch_total", "batch_mean", "squeezed",
                   "not_finite", "not_a_tensor", "no_gradient", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# bradley_terry_loss
# --------------------------------------------------------------------------------------------
def on_difference(mistake):
    """A wrong Bradley-Terry loss, from what it does with the reward differences: mistake(d)."""
    return lambda r_chosen, r_rejected: mistake(r_chosen - r_rejected)


BT_WITHOUT_LOG = ("sigmoid without the log: the probability that the chosen answer wins is sigmoid(r_chosen - "
                  "r_rejected), the loss is minus its log, -F.logsigmoid(...)")
BT_VALUES = ("the mean over the pairs of -log sigmoid(r_chosen - r_rejected): "
             "-F.logsigmoid(r_chosen - r_rejected).mean()")
# Swapping chosen and rejected changes the mean loss by the mean difference (softplus(x) - softplus(-x) = x):
# these differences, 2, -0.5, 1 and -1.5, average 0.25, not 0.
BT_CHOSEN, BT_REJECTED = torch.tensor([2.0, 0.0, 1.5, -1.0]), torch.tensor([0.0, 0.5, 0.5, 0.5])


def seeded_rewards(seed: int, size: int, scale: float = 1.0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(size, generator=generator, dtype=dtype) * scale,
            torch.randn(size, generator=generator, dtype=dtype) * scale)


def random_reward_pairs(seed: int):
    draw = random.Random(seed)
    size, scale = draw.randint(2, 32), draw.choice((0.5, 5.0, 50.0))
    return (f"{size} random pairs, rewards of scale {scale} (seed {seed})", *seeded_rewards(seed, size, scale))


BRADLEY_TERRY_LOSS = Exercise(
    name="bradley_terry_loss",
    answer=bradley_terry_loss,
    probe=lambda f: f(torch.zeros(2), torch.zeros(2)),
    mistakes={
        "values": BT_VALUES,
        "raised": BT_VALUES,
        "shape": "one number, the mean over the pairs: a 0-dimensional tensor",
        "not_a_tensor": NOT_A_TENSOR,
        "no_gradient": "build the loss from the rewards with torch operations only: .item(), .detach(), .numpy(), "
                       "torch.tensor(...) or torch.no_grad() cut the graph back to the reward model",
        "log_sigmoid": LOG_SIGMOID,
        "swapped": "chosen and rejected are swapped: the loss is -logsigmoid(r_chosen - r_rejected), small when the "
                   "chosen answer has the higher reward",
        "sum": "that is the sum over the pairs: return their mean, .mean()",
        "no_minus": "the minus sign is missing: the loss is -logsigmoid(...), a positive number",
        "bits": "that is in bits (log base 2): use the natural log, F.logsigmoid",
        "sigmoid": f"that is {BT_WITHOUT_LOG}",
        "minus_sigmoid": f"that is minus the probability, {BT_WITHOUT_LOG}",
        "one_minus_sigmoid": f"that is 1 - the probability, {BT_WITHOUT_LOG}",
        "per_pair": "that is one loss per pair: return their mean, one number, .mean()",
    },
    wrong={
        "swapped": on_difference(lambda d: -F.logsigmoid(-d).mean()),
        "sum": on_difference(lambda d: -F.logsigmoid(d).sum()),
        "no_minus": on_difference(lambda d: F.logsigmoid(d).mean()),
        "bits": on_difference(lambda d: -F.logsigmoid(d).mean() / math.log(2)),
        "sigmoid": on_difference(lambda d: torch.sigmoid(d).mean()),
        "minus_sigmoid": on_difference(lambda d: -torch.sigmoid(d).mean()),
        "one_minus_sigmoid": on_difference(lambda d: (1 - torch.sigmoid(d)).mean()),
        "per_pair": on_difference(lambda d: -F.logsigmoid(d)),
    },
    visible=(
        compared("equal rewards, 3 pairs: the chosen answer wins with probability sigmoid(0) = 1/2, the loss is "
                 "log 2 ≈ 0.6931", torch.tensor([1.0, -2.0, 0.5]), torch.tensor([1.0, -2.0, 0.5]),
                 nonfinite="log_sigmoid"),
        compared("4 pairs, r_chosen = [2, 0, 1.5, -1], r_rejected = [0, 0.5, 0.5, 0.5]", BT_CHOSEN, BT_REJECTED,
                 nonfinite="log_sigmoid"),
        compared("reward differences of +200, -200 and 2 (float32): the loss is (0 + 200 + 0.127) / 3 ≈ 66.709",
                 torch.tensor([200.0, -200.0, 3.0]), torch.tensor([0.0, 0.0, 1.0]), key="log_sigmoid",
                 nonfinite="log_sigmoid"),
        compared("the 4 pairs with requires_grad = True on both rewards", BT_CHOSEN, BT_REJECTED,
                 nonfinite="log_sigmoid", grad=(0, 1)),
    ),
    hidden=(
        compared("a single pair, shape (1,)", torch.tensor([0.3]), torch.tensor([1.2]), nonfinite="log_sigmoid"),
        compared("16 pairs in float64", *seeded_rewards(30, 16, dtype=torch.float64), nonfinite="log_sigmoid"),
        *(compared(*random_reward_pairs(seed), nonfinite="log_sigmoid") for seed in range(31, 35)),
        compared("reward differences of ±10,000 in float64 (sigmoid(-10000) is 0 even in float64)",
                 torch.tensor([1e4, -1e4, 0.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                 key="log_sigmoid", nonfinite="log_sigmoid"),
        compared("8 pairs in float64 with requires_grad = True", *seeded_rewards(35, 8, dtype=torch.float64),
                 nonfinite="log_sigmoid", grad=(0, 1)),
    ),
    hints=(
        Hint("Work pair by pair on the difference `r_chosen - r_rejected`, positive when the chosen answer is "
             "ahead. Its sigmoid, `torch.sigmoid(...)`, is the chance that the chosen answer wins, and the loss "
             "is minus the natural log of that chance: a positive number, small when the chosen answer leads.",
             fits=("swapped", "sigmoid", "minus_sigmoid", "one_minus_sigmoid", "no_minus", "bits", "raised")),
        Hint("Do not write `torch.log(torch.sigmoid(d))`: at `d = -200` the sigmoid rounds to 0 in float32 and "
             "the log is `-inf`. `torch.nn.functional.logsigmoid(d)` gives the same log, computed stably.",
             fits=("log_sigmoid",)),
        Hint("That gives one loss per pair; return their mean, `.mean()` (not `.sum()`), a 0-dimensional tensor. "
             "Keep it a tensor (no `.item()`): training calls `backward()` on it. Check: equal rewards give "
             "`ln 2 ≈ 0.6931`.",
             fits=("per_pair", "sum", "shape", "not_a_tensor", "no_gradient", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# dpo_loss
# --------------------------------------------------------------------------------------------
def dpo_case(what: str, pc, pr, rc, rr, beta: float, key: str = "values", grad: bool = False):
    return compared(f"{what}, beta = {beta}", pc, pr, rc, rr, beta, key=key, nonfinite="log_sigmoid",
                    grad=(0, 1) if grad else ())


def margin(pc, pr, rc, rr):
    """How much more the policy favours the chosen answer than the reference does."""
    return (pc - rc) - (pr - rr)


def dpo_wrong(mistake):
    """A wrong DPO loss, from what it does with the per-pair losses -logsigmoid(beta * margin)."""
    return lambda pc, pr, rc, rr, beta: mistake(-F.logsigmoid(beta * margin(pc, pr, rc, rr)))


DPO_VALUES = ("-F.logsigmoid(beta * ((pc - rc) - (pr - rr))) for each pair, with the arguments in the order "
              "(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)")
DPO_WHOLE = "it multiplies the whole difference, -logsigmoid(beta * ((pc - rc) - (pr - rr)))"
DPO_WITHOUT_LOG = "sigmoid without the log: the loss is -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))"


def t32(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def hidden_dpo_inputs():
    """The hidden cases' log-probabilities: sums over answers of a few dozen tokens, tens to hundreds
    of nats, drawn from one seeded generator in this order (8 pairs in float64, 4 random batches,
    6 pairs for the gradient, 3 pairs to refuse)."""
    generator = torch.Generator().manual_seed(40)

    def logps(size: int, dtype=torch.float32) -> torch.Tensor:
        return -(torch.rand(size, generator=generator, dtype=torch.float64) * 250 + 20).to(dtype)

    float64 = tuple(logps(8, torch.float64) for _ in range(4))
    batches = []
    for seed in range(41, 45):
        draw = random.Random(seed)
        size, beta = draw.randint(2, 16), draw.choice((0.01, 0.05, 0.2, 1.0, 2))
        batches.append((f"{size} random pairs (seed {seed})", *(logps(size) for _ in range(4)), beta))
    gradient = tuple(logps(6, torch.float64) for _ in range(4))
    return float64, batches, gradient, tuple(logps(3) for _ in range(4))


DPO_SAME = t32(-12.0, -30.5, -7.25), t32(-15.0, -22.0, -9.5)
DPO_PAIRS = (t32(-10.0, -25.0, -40.0, -8.0), t32(-12.0, -20.0, -35.0, -30.0),
             t32(-14.0, -22.0, -41.0, -20.0), t32(-11.0, -23.0, -36.0, -30.0))
DPO_FLOAT64, DPO_RANDOM, DPO_GRADIENT, DPO_REFUSED = hidden_dpo_inputs()


def dpo_refuses_beta(*betas: float, pairs: tuple):
    def case(t: Trial) -> None:
        for beta in betas:
            t.refuses(f"dpo_loss with beta = {beta}", *pairs, beta)
    return case


DPO_LOSS = Exercise(
    name="dpo_loss",
    answer=dpo_loss,
    probe=lambda f: f(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), 0.1),
    mistakes={
        "values": DPO_VALUES,
        "raised": DPO_VALUES,
        "shape": "one loss per pair, shape (batch,), without .mean(): the trainer averages them",
        "not_a_tensor": "return a torch tensor of shape (batch,), one loss per pair (no .item() or .tolist()): the "
                        "trainer averages it and calls backward()",
        "no_gradient": "build the loss from the policy's log-probabilities with torch operations only: .item(), "
                       ".detach(), .numpy(), torch.tensor(...) or torch.no_grad() cut the graph back to the policy "
                       "(the reference is frozen; the policy's log-probabilities must carry the gradient)",
        "no_refusal": "beta must be > 0: raise ValueError with a message otherwise",
        "log_sigmoid": LOG_SIGMOID,
        "no_beta": f"beta is missing: {DPO_WHOLE}",
        "beta_chosen_only": f"beta multiplies only the chosen term: {DPO_WHOLE}",
        "beta_rejected_only": f"beta multiplies only the rejected term: {DPO_WHOLE}",
        "reference_sign": "the reference terms have the wrong sign: subtract the reference's log-probabilities, "
                          "pc - rc and pr - rr",
        "rejected_sign": "the rejected term has the wrong sign: it is subtracted, (pc - rc) - (pr - rr). Check the "
                         "order of the arguments too: (policy_chosen, policy_rejected, ref_chosen, ref_rejected, "
                         "beta)",
        "no_reference": "the reference terms are missing: DPO measures the policy against the frozen reference, "
                        "(pc - rc) - (pr - rr)",
        "swapped": "chosen and rejected are swapped (or the reference's and the policy's): the margin is "
                   "(pc - rc) - (pr - rr), positive when the policy favours the chosen answer more than the "
                   "reference does",
        "no_minus": "the minus sign is missing: the loss is -logsigmoid(...), a positive number",
        "sigmoid": f"that is {DPO_WITHOUT_LOG}",
        "minus_sigmoid": f"that is minus the probability, {DPO_WITHOUT_LOG}",
        "one_minus_sigmoid": f"that is 1 - the probability, {DPO_WITHOUT_LOG}",
        "squeezed": "a single pair still gives shape (1,), one loss per pair: no .squeeze(), .mean() or .sum() at "
                    "the end",
        "mean": "that is the mean over the pairs: return the per-pair values, shape (batch,), without .mean(); the "
                "trainer averages them",
        "sum": "that is the sum over the pairs: return the per-pair values, shape (batch,)",
        "fixed_beta": "use the `beta` passed in, not a fixed 0.1",
    },
    wrong={
        "no_beta": lambda pc, pr, rc, rr, beta: -F.logsigmoid(margin(pc, pr, rc, rr)),
        "beta_chosen_only": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - rc) - (pr - rr)),
        "beta_rejected_only": lambda pc, pr, rc, rr, beta: -F.logsigmoid((pc - rc) - beta * (pr - rr)),
        "reference_sign": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc + rc) - (pr + rr))),
        "rejected_sign": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) + (pr - rr))),
        "no_reference": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr)),
        "swapped": lambda pc, pr, rc, rr, beta: -F.logsigmoid(-beta * margin(pc, pr, rc, rr)),
        "no_minus": dpo_wrong(lambda losses: -losses),
        "sigmoid": lambda pc, pr, rc, rr, beta: torch.sigmoid(beta * margin(pc, pr, rc, rr)),
        "minus_sigmoid": lambda pc, pr, rc, rr, beta: -torch.sigmoid(beta * margin(pc, pr, rc, rr)),
        "one_minus_sigmoid": lambda pc, pr, rc, rr, beta: 1 - torch.sigmoid(beta * margin(pc, pr, rc, rr)),
        "squeezed": dpo_wrong(lambda losses: losses[0] if len(losses) == 1 else NOT_MADE),
        "mean": dpo_wrong(lambda losses: losses.mean() if len(losses) > 1 else NOT_MADE),
        "sum": dpo_wrong(lambda losses: losses.sum() if len(losses) > 1 else NOT_MADE),
        "fixed_beta": lambda pc, pr, rc, rr, beta: (-F.logsigmoid(0.1 * margin(pc, pr, rc, rr)) if beta != 0.1
                                                    else NOT_MADE),
    },
    visible=(
        dpo_case("the policy equal to the reference, 3 pairs: every margin is 0, each loss log 2 ≈ 0.6931",
                 *DPO_SAME, *DPO_SAME, 0.1),
        dpo_case("4 pairs whose margins (pc - rc) - (pr - rr) are 5, -6, 0 and 12", *DPO_PAIRS, 0.1),
        dpo_case("the same 4 pairs", *DPO_PAIRS, 0.5),
        dpo_case("the 4 pairs with requires_grad = True on the policy's log-probabilities", *DPO_PAIRS, 0.1,
                 grad=True),
        dpo_refuses_beta(0, -0.1, pairs=DPO_PAIRS),
    ),
    hidden=(
        dpo_case("a single pair, shape (1,)", t32(-20.0), t32(-18.0), t32(-21.0), t32(-17.5), 0.1),
        dpo_case("8 pairs in float64", *DPO_FLOAT64, 0.1),
        dpo_case("margins of +890 and -890 (float32)", t32(-10.0, -900.0), t32(-900.0, -10.0), t32(-50.0, -50.0),
                 t32(-50.0, -50.0), 1.0, key="log_sigmoid"),
        *(dpo_case(*pairs) for pairs in DPO_RANDOM),
        dpo_case("6 pairs in float64 with requires_grad = True on the policy's log-probabilities", *DPO_GRADIENT,
                 0.3, grad=True),
        dpo_refuses_beta(-1.0, 0.0, pairs=DPO_REFUSED),
    ),
    hints=(
        Hint("DPO is the Bradley-Terry loss on implicit rewards: how far the policy has moved from the frozen "
             "reference on each answer. For the chosen answers that is `policy_chosen_logps - ref_chosen_logps`, "
             "for the rejected ones `policy_rejected_logps - ref_rejected_logps`, one number per pair.",
             fits=("reference_sign", "no_reference", "raised")),
        Hint("The margin is the chosen answer's move minus the rejected answer's move. `beta` (the one passed "
             "in) multiplies the WHOLE margin, brackets around both terms, and the loss is minus "
             "`torch.nn.functional.logsigmoid` of that product (stable, as in `bradley_terry_loss`).",
             fits=("rejected_sign", "swapped", "no_beta", "beta_chosen_only", "beta_rejected_only", "fixed_beta",
                   "log_sigmoid", "sigmoid", "minus_sigmoid", "one_minus_sigmoid", "no_minus")),
        Hint("First refuse a bad `beta`: `if not beta > 0: raise ValueError(\"...\")`. The key line is "
             "`-torch.nn.functional.logsigmoid(beta * (chosen - rejected))`; return it as it is, shape (batch,), "
             "with no `.mean()`, `.sum()` or `.squeeze()` (the trainer averages), and no `.item()`.",
             fits=("no_refusal", "shape", "mean", "sum", "squeezed", "not_a_tensor", "no_gradient", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# Evaluate the claim: three answers, checked against what the notebook measured
# --------------------------------------------------------------------------------------------
CLOSER_TO = ("chance", "right")


def overlap_closer_to(sft_overlap: float, chance: float) -> str:
    """Is the SFT model's word overlap with the right answers nearer the chance level or a perfect 1?"""
    return "chance" if abs(sft_overlap - chance) < abs(1 - sft_overlap) else "right"


def hardest_flaws(reward_accuracy: dict[str, float]) -> list[str]:
    """The flaws the reward model caught least often on held-out pairs (ties: all of them)."""
    lowest = min(reward_accuracy[f] for f in FLAWS)
    return [f for f in FLAWS if reward_accuracy[f] == lowest]


def post_training_claims(*, sft_overlap: float, chance: float, reward_accuracy: dict[str, float]) -> tuple[str, str, str]:
    """The three answers that agree with these measurements: a fine-tune of an open base model
    shapes behaviour (it does not build knowledge), where the SFT model's overlap landed, and the
    flaw the reward model caught least often."""
    return "b", overlap_closer_to(sft_overlap, chance), hardest_flaws(reward_accuracy)[0]


def the_startups_job(t: Trial) -> None:
    if t.submitted[0] != "b":
        t.fail("job", "1. What did the startup do?", '"b": they shaped a model someone else pre-trained',
               repr(t.submitted[0]))


def where_the_sft_overlap_landed(t: Trial) -> None:
    answer, overlap, chance = t.submitted[1], t.context["sft_overlap"], t.context["chance"]
    if answer not in CLOSER_TO:
        t.fail("not_a_choice", "2. Set sft_overlap_closer_to", f"one of {CLOSER_TO}", repr(answer))
    measured = overlap_closer_to(overlap, chance)
    if answer != measured:
        t.fail("overlap", "2. Where did your SFT model's answers land?", repr(measured), repr(answer),
               hint=f"you measured a word overlap of {overlap:.2f} with the right answers; answers about some "
                    f"other function score {chance:.2f}, a perfect answer 1")


def the_hardest_flaw(t: Trial) -> None:
    answer, accuracy = t.submitted[2], t.context["reward_accuracy"]
    if answer not in FLAWS:
        t.fail("not_a_flaw", "3. Set hardest_flaw", f"one of {FLAWS}", repr(answer))
    winners = hardest_flaws(accuracy)
    if answer not in winners:
        t.fail("hardest_flaw", "3. Which flaw did your reward model catch least often?",
               " or ".join(map(repr, winners)), repr(answer),
               hint="read the held-out accuracy per flaw: " + ", ".join(f"{f} {accuracy[f]:.0%}" for f in FLAWS))


POST_TRAINING_CLAIMS = Exercise(
    name="post_training_claims",
    answer=post_training_claims,
    probe=None,
    mistakes={
        "job": "fine-tuning and preference tuning change how a model answers; what it can know was set by the "
               "pre-training of the open base model they started from",
        "not_a_choice": "",
        "overlap": "compare the SFT model's word overlap with the chance level and with a perfect 1",
        "not_a_flaw": "",
        "hardest_flaw": "the flaw with the lowest held-out accuracy in the reward model's chart",
    },
    visible=(the_startups_job, where_the_sft_overlap_landed, the_hardest_flaw),
    passed=lambda t: "✅ All three answers agree with what you measured.",
    hints=(
        Hint("Question 1 is about the claim itself: the startup began from an *open base model*, pre-trained "
             "by someone else, then fine-tuned it and tuned it on preferences. Reread the note under D2's "
             "chart of base against SFT: which of the two bars did SFT move, and where does it say the knowledge "
             "comes from? Set `claim_job` to the string `\"a\"` or `\"b\"`.",
             fits=("job",)),
        Hint("Question 2: in D2's chart of base against SFT, the \"word overlap with the right answer\" bar after "
             "SFT is `sft_summary[\"word overlap with the right answer\"]`, and the dotted line is `chance` (what "
             "an answer about another function scores). Print both, then ask which is nearer that overlap: "
             "`chance` or a perfect 1. Answer exactly `\"chance\"` or `\"right\"`.",
             fits=("overlap", "not_a_choice")),
        Hint("Question 3: D3's bar chart of the reward model shows, for each flaw, the share of held-out pairs "
             "where the chosen answer scored higher; `print(reward_accuracy)` gives the same numbers. The flaw "
             "caught least often is the lowest one. Copy its name exactly as `FLAWS` spells it.",
             fits=("hardest_flaw", "not_a_flaw")),
    ),
)

EXERCISES = (SFT_LOSS, SEQUENCE_LOGPROB, BRADLEY_TERRY_LOSS, DPO_LOSS, POST_TRAINING_CLAIMS)
