"""Reference answers for notebook A (the lifecycle of a token): embeddings, attention, sampling."""
from __future__ import annotations

import math
import operator
from typing import Iterable

import torch

from course_lib.models import llama
from course_lib.reference.onramp import softmax_with_temperature
from course_lib.validation import is_number, is_whole

# torch.nn.functional.cosine_similarity's default: lengths below it count as eps, so a zero vector
# gives similarity 0 instead of 0 / 0 = NaN.
COSINE_EPS = 1e-8


def cosine_similarity(a, b) -> torch.Tensor:
    """cos(angle) between a and b over the last dimension, broadcasting like a * b.

    a · b / (|a| |b|): 1 for the same direction, 0 at right angles, -1 for opposite directions.
    Each length is clamped to at least COSINE_EPS, so a zero vector gives 0, never NaN.
    """
    a, b = _as_float(a), _as_float(b)
    if a.dim() == 0 or b.dim() == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"cosine similarity compares vectors of the same length along the last dimension; "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a_unit = a / a.norm(dim=-1, keepdim=True).clamp_min(COSINE_EPS)
    b_unit = b / b.norm(dim=-1, keepdim=True).clamp_min(COSINE_EPS)
    return (a_unit * b_unit).sum(dim=-1)


def nearest_neighbors(matrix, vector, k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
    """The k rows of `matrix` (N, D) most cosine-similar to `vector` (D,), most similar first.

    Returns (row index, similarity) pairs; rows whose index is in `exclude` are skipped (for an
    analogy such as king - man + woman, the three input words would otherwise come out on top).
    """
    matrix, vector = _as_float(matrix), _as_float(vector)
    if matrix.dim() != 2 or vector.dim() != 1 or matrix.shape[1] != vector.shape[0]:
        raise ValueError(
            f"expected a matrix of shape (N, D) and a vector of shape (D,), got {tuple(matrix.shape)} "
            f"and {tuple(vector.shape)}"
        )
    try:
        excluded = {operator.index(i) for i in exclude}
    except TypeError:
        raise ValueError(f"exclude must hold whole-number row indices, got {exclude!r}") from None
    outside = sorted(i for i in excluded if not 0 <= i < len(matrix))
    if outside:
        raise ValueError(f"exclude holds {outside}, which are not row indices of a matrix with {len(matrix)} rows")
    candidates = len(matrix) - len(excluded)
    if not is_whole(k) or not 1 <= k <= candidates:
        raise ValueError(f"k must be a whole number from 1 to {candidates} (the rows not excluded), got {k!r}")
    similarities = cosine_similarity(matrix, vector)
    ranking = similarities.index_fill(0, torch.tensor(sorted(excluded), dtype=torch.long), float("-inf"))
    top = torch.topk(ranking, int(k))
    return [(int(i), float(similarities[i])) for i in top.indices]


def causal_mask(T: int) -> torch.Tensor:
    """Boolean (T, T), True where attention is allowed: query i may look at keys j <= i."""
    if not is_whole(T) or T < 0:
        raise ValueError(f"T must be a whole number >= 0 (the sequence length), got {T!r}")
    return llama.causal_mask(int(T), int(T))


def scaled_dot_product_attention(q, k, v, mask=None) -> torch.Tensor:
    """softmax(q @ k^T / sqrt(d)) @ v, over any leading batch (and head) dimensions.

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv). `mask` is boolean and broadcastable to
    (..., Tq, Tk), True where attention is allowed: the convention of torch's fused
    F.scaled_dot_product_attention. A query allowed to see no key at all gets an output of zeros,
    as the fused kernel gives (checked against torch 2.13); plain softmax would give NaN there.
    """
    q, k, v = _as_float(q), _as_float(k), _as_float(v)
    if q.dim() < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"expected q (..., Tq, d), k (..., Tk, d) and v (..., Tk, dv); got {tuple(q.shape)}, "
            f"{tuple(k.shape)} and {tuple(v.shape)}"
        )
    # Dividing by sqrt(d) keeps the scores' spread independent of d, so softmax does not saturate.
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        return scores.softmax(dim=-1) @ v
    mask = torch.as_tensor(mask, device=scores.device)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be boolean (True where attention is allowed), got dtype {mask.dtype}")
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    # A fully masked row is softmax of all -inf, i.e. NaN; zeroing the masked weights makes it 0.
    return weights.masked_fill(~mask, 0.0) @ v


def checked_logits(logits) -> torch.Tensor:
    """`logits` as a floating-point 1-D tensor over the vocabulary, or a ValueError saying what is wrong."""
    logits = torch.as_tensor(logits).detach()
    if logits.dim() != 1 or logits.numel() == 0:
        raise ValueError(
            f"logits must be a non-empty 1-D tensor over the vocabulary, got shape "
            f"{tuple(logits.shape)}; from a model output of shape (batch, sequence, vocab) "
            "pass logits[0, -1]"
        )
    if not logits.is_floating_point():
        logits = logits.float()
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError("logits contain NaN or +inf; check the model output")
    if torch.isneginf(logits).all():
        raise ValueError("all logits are -inf, so no token can be picked")
    return logits


def filter_probabilities(probabilities: torch.Tensor, top_k: int | None = None,
                         top_p: float | None = None) -> torch.Tensor:
    """Keep the top_k most likely tokens, then the top_p nucleus of what is left; renormalise.

    top_k keeps every token tied with the k-th probability. top_p keeps the smallest set of most
    likely tokens whose total probability reaches top_p: a token is kept if the tokens before it
    (most likely first) hold less than top_p, so the token that crosses the threshold stays in, and
    the most likely token always does. None (or top_p = 1) means no filter.
    """
    if top_k is not None and not (is_whole(top_k) and top_k >= 1):
        raise ValueError(f"top_k must be a whole number >= 1 (or None for no limit), got {top_k!r}")
    if top_p is not None and not (is_number(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] (or None for no limit), got {top_p!r}")
    if top_k is not None and top_k < probabilities.numel():
        kth = torch.topk(probabilities, int(top_k)).values[-1]
        probabilities = torch.where(probabilities >= kth, probabilities, 0.0)
        probabilities = probabilities / probabilities.sum()
    if top_p is not None and top_p < 1:
        # A stable sort: of tokens tied at the threshold, the lower id is kept, every time.
        sorted_probabilities, order = torch.sort(probabilities, descending=True, stable=True)
        mass_before = sorted_probabilities.cumsum(0) - sorted_probabilities
        keep = torch.zeros_like(probabilities, dtype=torch.bool)
        keep[order] = mass_before < top_p
        probabilities = torch.where(keep, probabilities, 0.0)
    return probabilities / probabilities.sum()


def sampling_probabilities(logits, temperature: float, top_k: int | None = None,
                           top_p: float | None = None) -> torch.Tensor:
    """The distribution a sampler draws the next token from.

    softmax(logits / temperature), then top_k, then top_p (see filter_probabilities). Temperature 0
    means greedy: all the probability on the argmax.
    """
    logits = checked_logits(logits)
    if not is_number(temperature) or not temperature >= 0:  # also refuses NaN
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}")
    if temperature == 0:
        probabilities = torch.nn.functional.one_hot(logits.argmax(), logits.numel()).to(logits.dtype)
    else:
        probabilities = softmax_with_temperature(logits, float(temperature))
    return filter_probabilities(probabilities, top_k, top_p)  # a one-hot passes every filter unchanged


def sample_next_token(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                      generator: torch.Generator | None = None) -> int:
    """One token id: the argmax at temperature 0, else a draw from sampling_probabilities."""
    probabilities = sampling_probabilities(logits, temperature, top_k, top_p)
    if temperature == 0:
        return int(probabilities.argmax())
    device = generator.device if generator is not None else probabilities.device
    return int(torch.multinomial(probabilities.to(device), 1, generator=generator))


def _as_float(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.float()


