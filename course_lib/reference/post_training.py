"""Reference answers for notebook D: the losses of post-training (SFT, a reward model, DPO).

Supervised fine-tuning (SFT) trains on (prompt, response) pairs with the pre-training loss, but
only the response is scored: the model should learn to write the answer, not the question.
A reward model scores answers so that the one people preferred wins (Bradley-Terry). DPO
(Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model Is Secretly a Reward
Model") learns from the same preference pairs without a reward model or sampling.

Shapes: logits (batch, time, vocab); labels (batch, time), where labels[b, t] is the token that
follows position t (the caller has shifted them: logits[b, t] scores labels[b, t]); loss_mask
(batch, time), True (or 1) on response tokens, False (0) on the prompt and on padding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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
