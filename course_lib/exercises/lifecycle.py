"""Notebook A's exercises (the lifecycle of a token): cosine_similarity, nearest_neighbors,
causal_mask, scaled_dot_product_attention, sample_next_token and quantize_int8, with the helpers
their answers share.

When an answer is wrong, the cases compute what the usual mistakes would have produced (no sqrt(d),
the mask read the wrong way round, top-p one token short, ...) and name the one that matches, so the
hint points at the line to fix.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F

from course_lib.exercises.engine import Exercise, Hint, Trial, matching, rounded
from course_lib.exercises.onramp import softmax_with_temperature
from course_lib.models import int8, llama
from course_lib.validation import is_number, is_whole


def _as_float(x) -> torch.Tensor:
    """`x` as a tensor of floats (norms and softmax need them): the answers accept lists and ints."""
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.float()


def random_tensors(generator: torch.Generator):
    """randn(*shape) drawing from a seeded `generator`: the same tensors on every run."""
    return lambda *shape: torch.randn(*shape, generator=generator)


# --------------------------------------------------------------------------------------------
# cosine_similarity
# --------------------------------------------------------------------------------------------
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


COSINE_PAIRS = [
    ([1.0, 0.0], [0.0, 1.0], 0.0, "vectors at right angles"),
    ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0, "vectors pointing the same way (one twice as long)"),
    ([1.0, -2.0], [-1.0, 2.0], -1.0, "opposite vectors"),
    ([3.0, 4.0], [4.0, 3.0], 24 / 25, "[3, 4] and [4, 3]"),
]
_cosine_randn = random_tensors(torch.Generator().manual_seed(0))
ROWS, VECTOR = _cosine_randn(5, 4) * 3, _cosine_randn(4)
GRID_A, GRID_B = _cosine_randn(3, 1, 8), _cosine_randn(1, 5, 8)


def cosine_result(t: Trial, a, b, what: str) -> torch.Tensor:
    return t.tensor(t.call(a, b, what=what), None, what)


def hand_computed_pairs(t: Trial) -> None:
    for a, b, expected, what in COSINE_PAIRS:
        a, b = torch.tensor(a), torch.tensor(b)
        got = cosine_result(t, a, b, what)
        if got.numel() != 1 or abs(got.item() - expected) > 1e-5:
            plain_dot_product = got.numel() == 1 and abs(got.item() - float(a @ b)) < 1e-5
            t.fail("dot_product" if plain_dot_product else "values", f"cosine similarity of {what}", expected,
                   rounded(got))


def one_similarity_per_row(t: Trial) -> None:
    got = cosine_result(t, ROWS, VECTOR, "a (5, 4) matrix against one vector of length 4")
    expected = F.cosine_similarity(ROWS, VECTOR, dim=-1).double()
    if got.shape != expected.shape:
        t.fail("shape", "a (5, 4) matrix against a vector of length 4 should give one similarity per row",
               tuple(expected.shape), tuple(got.shape))
    if not torch.allclose(got, expected, atol=1e-5):
        whole_norm = (ROWS @ VECTOR / (ROWS.norm() * VECTOR.norm())).double()
        t.fail("whole_norm" if torch.allclose(got, whole_norm, atol=1e-5) else "values",
               "a matrix against one vector: one similarity per row", rounded(expected), rounded(got))


def broadcasts_to_a_grid(t: Trial) -> None:
    what = "shapes (3, 1, 8) and (1, 5, 8)"
    got = cosine_result(t, GRID_A, GRID_B, what)
    expected = F.cosine_similarity(GRID_A, GRID_B, dim=-1).double()
    if got.shape != expected.shape:
        t.fail("broadcast", f"{what} should broadcast to a (3, 5) grid of similarities", tuple(expected.shape),
               tuple(got.shape))
    if not torch.allclose(got, expected, atol=1e-5):
        t.fail("values", f"{what}: the similarities", rounded(expected)[:5], rounded(got)[:5])


def zero_vectors_give_zero(t: Trial) -> None:
    for a, b, what in [(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]), "a zero vector and [1, 2, 3]"),
                       (torch.zeros(3), torch.zeros(3), "two zero vectors")]:
        got = cosine_result(t, a, b, what)
        if got.numel() != 1 or not torch.isfinite(got).all() or abs(got.item()) > 1e-6:
            t.fail("zero_vector", f"cosine similarity of {what} should be 0, never NaN", 0.0, rounded(got))


def integer_vectors(t: Trial) -> None:
    what = "integer vectors [1, 2, 3] and [2, 4, 6]"
    got = t.call(torch.tensor([1, 2, 3]), torch.tensor([2, 4, 6]), what=what, raised="integers")
    got = t.tensor(got, None, what)
    if got.numel() != 1 or abs(got.item() - 1) > 1e-5:
        t.fail("integers", what, 1.0, rounded(got))


COSINE_SIMILARITY = Exercise(
    name="cosine_similarity",
    answer=cosine_similarity,
    probe=lambda f: f(torch.ones(3), torch.ones(3)),
    mistakes={
        "not_a_tensor": "keep it a tensor (no .item()), so it works on whole batches of vectors",
        "dot_product": "that is the plain dot product: divide it by both vectors' lengths, a · b / (|a| |b|)",
        "values": "a · b / (|a| |b|) over the last dimension, each row with its own length",
        "shape": "sum and take norms over the last dimension: dim=-1",
        "whole_norm": "each row needs its own length: .norm(dim=-1, keepdim=True), not the norm of the whole matrix",
        "broadcast": "use elementwise a * b and norms with keepdim=True, summing over dim=-1 only",
        "zero_vector": "0 / 0 is NaN: clamp each length to at least 1e-8 before dividing, e.g. "
                       "a.norm(dim=-1, keepdim=True).clamp_min(1e-8), as torch's F.cosine_similarity does",
        "integers": "norms need floating-point numbers: convert the inputs with .float() first",
    },
    visible=(hand_computed_pairs, one_similarity_per_row, broadcasts_to_a_grid, zero_vectors_give_zero,
             integer_vectors),
    hints=(
        Hint("Cosine similarity is the dot product divided by both lengths. Work along the last dimension: "
             "`(a * b).sum(dim=-1)` is the dot product of each pair of vectors and `a.norm(dim=-1)` each vector's "
             "length. Norms need floats, so convert first: `torch.as_tensor(a, dtype=torch.float32)`.",
             fits=("not_a_tensor", "shape", "integers")),
        Hint("Divide the dot products by the product of the two lengths, one length per vector: "
             "`a.norm(dim=-1)`, not `a.norm()` (the length of the whole matrix). Elementwise `a * b` broadcasts, "
             "so a (5, 4) matrix against a (4,) vector gives 5 similarities, and (3, 1, 8) against (1, 5, 8) "
             "a (3, 5) grid.",
             fits=("dot_product", "whole_norm", "broadcast", "values")),
        Hint("A zero vector has length 0, and 0 / 0 is NaN. Clamp the denominator before dividing, "
             "`(a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)`: the dot product is 0 too, so the result is 0.",
             fits=("zero_vector",)),
    ),
)


# --------------------------------------------------------------------------------------------
# nearest_neighbors
# --------------------------------------------------------------------------------------------
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

# Rows 0 and 5 are long but far off [1, 0, 0]: the largest dot products, not the most similar
# directions. By cosine the order is 1, 3, 0, 5, 2, 4; by dot product 0, 5, 3, 1, 2, 4.
NEIGHBOUR_ROWS = torch.tensor([[10.0, 10.0, 0.0], [1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [2.0, 1.0, 0.0],
                               [-1.0, 0.0, 0.0], [5.0, 0.0, 6.0]])
QUERY = torch.tensor([1.0, 0.0, 0.0])
BY_COSINE = [1, 3, 0, 5, 2, 4]
WRONG_TOP_3 = {(0, 5, 3): "dot_product", (4, 2, 5): "ascending", (0, 3, 1): "reversed"}


def neighbours(t: Trial, what: str, k: int, exclude=()) -> list[tuple[int, float]]:
    """The learner's nearest_neighbors of QUERY among NEIGHBOUR_ROWS, checked to be (int, float) pairs."""
    out = t.call(NEIGHBOUR_ROWS, QUERY, k, what=what, exclude=exclude)
    if not isinstance(out, list) or not all(isinstance(pair, tuple) and len(pair) == 2 for pair in out):
        t.fail("not_pairs", f"{what}: the result should be a list of (index, similarity) tuples",
               "[(int, float), ...]", repr(out)[:200])
    if not all(isinstance(i, int) and not isinstance(i, bool) and isinstance(s, float) for i, s in out):
        t.fail("not_pairs", f"{what}: each pair should hold a Python int and a Python float", "[(int, float), ...]",
               repr(out)[:200])
    return out


def ranks_by_cosine(t: Trial) -> None:
    similarities = F.cosine_similarity(NEIGHBOUR_ROWS, QUERY, dim=-1)
    got = neighbours(t, "the 3 rows nearest to [1, 0, 0]", 3)
    ids = [i for i, _ in got]
    if ids != BY_COSINE[:3]:
        t.fail(WRONG_TOP_3.get(tuple(ids), "ranking"), "the 3 rows nearest to [1, 0, 0], most similar first",
               BY_COSINE[:3], ids)
    for i, s in got:
        if abs(s - similarities[i].item()) > 1e-5:
            t.fail("similarity", f"the similarity reported for row {i}", round(similarities[i].item(), 5), round(s, 5))


def skips_excluded_rows(t: Trial) -> None:
    ids = [i for i, _ in neighbours(t, "k=2 with exclude=[1]", 2, exclude=[1])]
    if 1 in ids:
        t.fail("excluded_returned", "exclude=[1]: row 1 must not be returned", [3, 0], ids)
    if ids != [3, 0]:
        t.fail("exclude_after_top_k", "k=2 with exclude=[1] should still return 2 rows, the best ones not excluded",
               [3, 0], ids)


def ranks_every_row(t: Trial) -> None:
    ids = [i for i, _ in neighbours(t, "k=6, every row", 6)]
    if ids != BY_COSINE:
        t.fail("ranking", "k equal to the number of rows should rank them all", BY_COSINE, ids)


def refuses_bad_k_and_shapes(t: Trial) -> None:
    t.refuses("k=0", NEIGHBOUR_ROWS, QUERY, 0)
    t.refuses("k=7 for a matrix of 6 rows", NEIGHBOUR_ROWS, QUERY, 7)
    t.refuses("k=6 with exclude=[0] (only 5 rows left)", NEIGHBOUR_ROWS, QUERY, 6, exclude=[0])
    t.refuses("a vector of length 4 against rows of length 3", NEIGHBOUR_ROWS, torch.ones(4), 2)


NEAREST_NEIGHBORS = Exercise(
    name="nearest_neighbors",
    answer=nearest_neighbors,
    probe=lambda f: f(torch.eye(3), torch.ones(3), 1),
    mistakes={
        "not_pairs": "return a list of (row index, similarity) pairs, e.g. [(3, 0.98), (0, 0.71)], "
                     "with int(i), float(s)",
        "dot_product": "that is the ranking by dot product: rank by cosine similarity, so a long vector does not "
                       "win just by being long",
        "ascending": "those are the least similar rows: sort from most to least similar (torch.topk does)",
        "reversed": "the right rows in reverse order: most similar first",
        "ranking": "rank every row by cosine_similarity(matrix, vector) and take the top k",
        "similarity": "report the cosine similarity of that row, not its dot product or distance",
        "excluded_returned": "skip the indices in `exclude`",
        "exclude_after_top_k": "exclude first, then take the top k (e.g. set the excluded rows' similarity to "
                               "-inf before topk)",
        "no_refusal": "check k against the number of rows that are not excluded, and matrix.shape[1] against "
                      "vector.shape[0]; raise ValueError with a message that says which is wrong",
    },
    visible=(ranks_by_cosine, skips_excluded_rows, ranks_every_row, refuses_bad_k_and_shapes),
    hints=(
        Hint("Score every row at once with your `cosine_similarity(matrix, vector)`: one number per row. "
             "Then `torch.topk(similarities, k)` returns the `k` largest, most similar first, as `.values` "
             "and `.indices` (the row numbers).",
             fits=("dot_product", "ascending", "reversed", "ranking", "similarity")),
        Hint("Before `topk`, set the excluded rows' similarities to `-inf` (`similarities[list(exclude)] = "
             "-math.inf`): they can never be picked, and `topk` still finds `k` other rows. Check the inputs "
             "first: the vector's length against `matrix.shape[1]`, and `k` from 1 to the number of rows not "
             "excluded, with `raise ValueError(\"...\")` saying which is wrong.",
             fits=("excluded_returned", "exclude_after_top_k", "no_refusal")),
        Hint("Build the list from `top.indices` and `top.values` as plain Python numbers, e.g. "
             "`(int(i), float(s))` for each pair taken together with `zip`.",
             fits=("not_pairs",)),
    ),
)


# --------------------------------------------------------------------------------------------
# causal_mask
# --------------------------------------------------------------------------------------------
def causal_mask(T: int) -> torch.Tensor:
    """Boolean (T, T), True where attention is allowed: query i may look at keys j <= i."""
    if not is_whole(T) or T < 0:
        raise ValueError(f"T must be a whole number >= 0 (the sequence length), got {T!r}")
    return llama.causal_mask(int(T), int(T))


def lower_triangle(t: Trial) -> None:
    """A boolean lower triangle, diagonal included: True where query i may look at key j <= i."""
    for size in (4, 7, 1):  # a 1 x 1 mask cannot tell the mistakes apart, so it comes last
        what = f"causal_mask({size})"
        got = t.call(size, what=what)
        if not torch.is_tensor(got):
            t.fail("not_a_tensor", f"{what} should return a torch tensor", "torch.Tensor", type(got).__name__)
        expected = torch.ones(size, size, dtype=torch.bool).tril()
        if got.shape != expected.shape:
            t.fail("shape", f"{what} should be a square matrix, one row per query, one column per key",
                   tuple(expected.shape), tuple(got.shape))
        if got.dtype != torch.bool:
            additive = got.is_floating_point() and bool(torch.isinf(got).any())
            t.fail("additive_mask" if additive else "dtype", f"{what} should be a boolean tensor", "torch.bool",
                   got.dtype)
        got = got.cpu()
        if not torch.equal(got, expected):
            wrong_masks = {"inverted": ~expected, "transposed": expected.T, "no_diagonal": expected.tril(-1)}
            key = next((key for key, wrong in wrong_masks.items() if torch.equal(got, wrong)), "values")
            t.fail(key, what, expected.int().tolist(), got.int().tolist())


CAUSAL_MASK = Exercise(
    name="causal_mask",
    answer=causal_mask,
    probe=lambda f: f(2),
    mistakes={
        "not_a_tensor": "build it with torch.ones(T, T, dtype=torch.bool)",
        "shape": "one row per query and one column per key: a (T, T) matrix",
        "dtype": "use dtype=torch.bool, e.g. torch.ones(T, T, dtype=torch.bool).tril()",
        "additive_mask": "this exercise wants the boolean mask, True where allowed; the -inf belongs inside attention",
        "inverted": "the mask convention is inverted: True means *allowed* (torch's convention), the lower triangle",
        "transposed": "rows are queries and columns keys: query i may see keys j <= i, the lower triangle "
                      "(torch.tril); you have it transposed",
        "no_diagonal": "a token may attend to itself: keep the diagonal (j <= i, not j < i)",
        "values": "True where j <= i: torch.tril",
    },
    visible=(lower_triangle,),
    hints=(
        Hint("Start from a (T, T) tensor of `True`: `torch.ones(T, T, dtype=torch.bool)`. Row `i` stands for "
             "query token `i` and column `j` for key token `j`; the entry says whether token `i` may look at "
             "token `j`.",
             fits=("not_a_tensor", "shape", "dtype", "additive_mask")),
        Hint("Token `i` may look at itself and at every token before it, `j <= i`: the entries on and below "
             "the diagonal (the lower triangle). `True` means allowed, so the entries above the diagonal, "
             "the future, are the ones that become `False`.",
             fits=("inverted", "transposed", "no_diagonal")),
        Hint("`.tril()` keeps the lower triangle of a matrix, diagonal included, and sets everything above "
             "it to zero, which is `False` for a boolean tensor. Print `causal_mask(4).int()` to see it.",
             fits=("values",)),
    ),
)


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# --------------------------------------------------------------------------------------------
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

def attention_mistakes(q, k, v, mask) -> dict[str, torch.Tensor]:
    """What the usual mistakes give on these inputs, by key."""
    q, k, v = q.double(), k.double(), v.double()
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1)

    def masked_softmax(s, allowed, dim=-1):
        if allowed is None:
            return s.softmax(dim)
        return s.masked_fill(~allowed, float("-inf")).softmax(dim).nan_to_num(0.0)

    mistakes = {
        "no_scale": masked_softmax(scores, mask) @ v,
        "scaled_by_d": masked_softmax(scores / d, mask) @ v,
        "softmax_over_queries": masked_softmax(scores / math.sqrt(d), mask, dim=-2) @ v,
    }
    if mask is not None:
        scaled = scores / math.sqrt(d)
        mistakes.update({
            "inverted_mask": masked_softmax(scaled, ~mask) @ v,
            "masked_with_zero": scaled.masked_fill(~mask, 0.0).softmax(-1) @ v,
            "masked_after_softmax": (scaled.softmax(-1) * mask) @ v,
        })
    return mistakes


def attention_close(a, b) -> bool:
    return torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@dataclass(frozen=True)
class AttentionCase:
    """The learner's attention against torch's fused F.scaled_dot_product_attention on these inputs;
    a wrong output is matched against what the usual mistakes give."""
    what: str
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    mask: torch.Tensor | None = None
    otherwise: str = "values"  # the key of a wrong output that matches no usual mistake

    def __call__(self, t: Trial) -> None:
        q, k, v, mask = self.q, self.k, self.v, self.mask
        got = t.tensor(t.call(q, k, v, *(() if mask is None else (mask,)), what=self.what), None, self.what)
        expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
        if got.shape != expected.shape:
            t.fail("shape", f"{self.what}: the output shape", tuple(expected.shape), tuple(got.shape))
        if attention_close(got, expected):
            return
        if torch.isnan(got).any():
            empty_rows = mask is not None and not mask.any(-1).all()
            t.fail("empty_row_nan" if empty_rows else "overflow", f"{self.what}: the output contains NaN",
                   "finite values", "NaN")
        keys = matching(got, expected, attention_mistakes(q, k, v, mask), attention_close) or [self.otherwise]
        t.fail(keys, f"{self.what}: the output differs from torch's F.scaled_dot_product_attention",
               rounded(expected)[:6], rounded(got)[:6])


_visible_randn = random_tensors(torch.Generator().manual_seed(0))
ONE_SEQUENCE = _visible_randn(3, 4), _visible_randn(3, 4), _visible_randn(3, 4)
WITH_HEADS = _visible_randn(2, 3, 5, 8), _visible_randn(2, 3, 5, 8), _visible_randn(2, 3, 5, 8)

_hidden_generator = torch.Generator().manual_seed(1)
_hidden_randn = random_tensors(_hidden_generator)
FEWER_QUERIES = _hidden_randn(2, 2, 3, 8), _hidden_randn(2, 2, 6, 8), _hidden_randn(2, 2, 6, 5)
RANDOM_MASK = torch.rand(2, 1, 3, 6, generator=_hidden_generator) > 0.5
RANDOM_MASK[..., 0] = True  # every query may see at least one key
EMPTY_ROW = _hidden_randn(4, 8), _hidden_randn(4, 8), _hidden_randn(4, 8)
EMPTY_ROW_MASK = llama.causal_mask(4, 4)
EMPTY_ROW_MASK[2] = False  # query 2 may see no key
HUGE = _hidden_randn(2, 5, 16) * 30, _hidden_randn(2, 5, 16) * 30, _hidden_randn(2, 5, 16)


def empty_row_gives_zeros(t: Trial) -> None:
    what = "a mask whose row 2 allows no key"
    got = t.tensor(t.call(*EMPTY_ROW, EMPTY_ROW_MASK, what=what), None, what)
    if got.shape == (4, 8) and not (torch.isfinite(got[2]).all() and (got[2] == 0).all()):
        t.fail("empty_row_nan", "a query allowed to see no key should output zeros, as torch's fused attention does",
               [0.0] * 8, rounded(got[2]))


SCALED_DOT_PRODUCT_ATTENTION = Exercise(
    name="scaled_dot_product_attention",
    answer=scaled_dot_product_attention,
    probe=lambda f: f(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)),
    mistakes={
        "raised": "a size mismatch? use k.transpose(-2, -1), not k.T, so batch dimensions stay where they are",
        "not_a_tensor": "return weights @ v",
        "shape": "scores are q @ k.transpose(-2, -1), (..., Tq, Tk); the output is weights @ v, (..., Tq, dv)",
        "no_scale": "forgot to divide the scores by sqrt(d): "
                    "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
        "scaled_by_d": "divided the scores by d: the scale is sqrt(d), math.sqrt(q.shape[-1])",
        "softmax_over_queries": "softmax runs over the keys, dim=-1, so that each query's weights sum to 1",
        "inverted_mask": "the mask convention is inverted: True means *allowed* (torch's fused-attention "
                         "convention), so fill the scores where the mask is False: "
                         "scores.masked_fill(~mask, float('-inf'))",
        "masked_with_zero": "masked scores must become -inf, not 0: exp(0) = 1 still gives a masked key weight",
        "masked_after_softmax": "mask the scores before the softmax (with -inf), not the weights after it: "
                                "zeroed weights no longer sum to 1",
        "empty_row_nan": "a query allowed to see no key has softmax over only -inf, which is NaN (torch's fused "
                         "attention returns zeros there): zero the masked weights after the softmax, "
                         "weights.masked_fill(~mask, 0.0)",
        "overflow": "exp() of large scores overflows to inf (and inf / inf is NaN): use torch.softmax, which "
                    "subtracts each row's max first",
        "values": "softmax(q @ k.transpose(-2, -1) / sqrt(d)) @ v, masking before the softmax",
    },
    visible=(
        AttentionCase("3 tokens, d=4, no mask", *ONE_SEQUENCE),
        AttentionCase("3 tokens with a causal mask", *ONE_SEQUENCE, llama.causal_mask(3, 3)),
        AttentionCase("batch 2, 3 heads, 5 tokens, d=8, causal mask", *WITH_HEADS, llama.causal_mask(5, 5)),
    ),
    hidden=(
        AttentionCase("3 queries over 6 keys, values of size 5", *FEWER_QUERIES),
        AttentionCase("3 queries over 6 keys with a causal mask (the 3 newest tokens)", *FEWER_QUERIES,
                      llama.causal_mask(3, 6)),
        AttentionCase("a random mask of shape (2, 1, 3, 6), broadcast over the heads", *FEWER_QUERIES, RANDOM_MASK),
        empty_row_gives_zeros,
        AttentionCase("a mask whose row 2 allows no key", *EMPTY_ROW, EMPTY_ROW_MASK),
        AttentionCase("huge scores (q and k scaled by 30)", *HUGE, llama.causal_mask(5, 5), otherwise="overflow"),
    ),
    hints=(
        Hint("Three steps: scores from `q` and `k`, weights from a softmax of the scores, and the output "
             "`weights @ v`, of shape (..., T_q, d_v). All the query-key dot products at once are "
             "`q @ k.transpose(-2, -1)`, shape (..., T_q, T_k): `transpose(-2, -1)` swaps only the last two "
             "dimensions, where `.T` would also move the batch and head ones.",
             fits=("raised", "not_a_tensor", "shape")),
        Hint("Divide the scores by the square root of d, `math.sqrt(q.shape[-1])` (not by d), then take "
             "`torch.softmax(scores, dim=-1)`: over the keys, so each query's weights sum to 1. "
             "`torch.softmax` subtracts each row's maximum itself, so huge scores do not overflow.",
             fits=("no_scale", "scaled_by_d", "softmax_over_queries", "overflow")),
        Hint("With a mask, before the softmax set the scores where it is `False` to `-inf`: "
             "`scores.masked_fill(~mask, -math.inf)` (`~` flips True and False; `exp(-inf)` is 0, while a "
             "score of 0 would still get weight). A query that may see no key comes out of the softmax as NaN: "
             "afterwards, set the weights where the mask is `False` back to 0 with `masked_fill` again.",
             fits=("inverted_mask", "masked_with_zero", "masked_after_softmax", "empty_row_nan", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# sample_next_token
# --------------------------------------------------------------------------------------------
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

# Share of draws: 2,000 draws put a token's share within 0.05 of its probability (at least 4.5
# standard deviations), while every mistake the hints name moves some share by more than 0.1 or
# draws a token that must never come.
DRAWS = 2000
SHARE_TOLERANCE = 0.05

# Most likely first: token 1 (0.45), 3 (0.30), 0 (0.12), 4 (0.08), 2 (0.05); shuffled so that a
# position in sorted order is not the token id.
PROBABILITIES = torch.tensor([0.12, 0.45, 0.05, 0.30, 0.08])
LOGITS = PROBABILITIES.log()


def describe(settings: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings.items())


def draw(t: Trial, logits, generator=None, **settings) -> int:
    """One token from the learner's sample_next_token, checked to be an int id in the vocabulary."""
    what = f"sample_next_token with {describe(settings)}"
    if settings.get("top_k", 0) > len(logits):
        error_key = "top_k_beyond_vocabulary"
    elif "top_p" in settings:
        error_key = "keep_top_token"  # the likely error: multinomial on a nucleus left empty
    else:
        error_key = "raised"
    token = t.call(logits, what=what, raised=error_key, generator=generator, **settings)
    if not isinstance(token, int) or isinstance(token, bool):
        t.fail("not_an_int", f"{what} should return a Python int", "an int such as 3",
               f"{type(token).__name__}: {token!r}"[:120])
    if not 0 <= token < len(logits):
        t.fail("outside_vocabulary", f"{what} returned a token id outside the vocabulary", f"0 .. {len(logits) - 1}",
               token)
    return token


def keep_most_likely(probabilities: torch.Tensor, n: int) -> torch.Tensor:
    """The n most likely tokens only, renormalised: a pool one token too small or too large."""
    kept = torch.zeros_like(probabilities)
    top = torch.topk(probabilities, max(1, min(n, len(probabilities)))).indices
    kept[top] = probabilities[top]
    return kept / kept.sum()


def sampling_mistakes(temperature: float, top_k, top_p) -> dict[str, torch.Tensor]:
    """The distributions the usual mistakes draw from, by key."""
    softmax = sampling_probabilities(LOGITS, temperature)
    expected = sampling_probabilities(LOGITS, temperature, top_k, top_p)
    pool = int((expected > 0).sum())
    mistakes = {
        "temperature_ignored": sampling_probabilities(LOGITS, 1.0, top_k, top_p),
        "temperature_multiplies": sampling_probabilities(LOGITS, 1 / temperature, top_k, top_p),
        "ids_lost_in_sort": torch.sort(expected, descending=True).values,
    }
    if top_k is not None and top_p is None:
        mistakes["top_k_one_short"] = keep_most_likely(softmax, top_k - 1)
        mistakes["top_k_one_too_many"] = keep_most_likely(softmax, top_k + 1)
    if top_p is not None:
        # The order mistakes first: on the hidden cases they give the same pool as a nucleus one
        # token too large, and they are the likelier cause there.
        pool_at_temperature_1 = softmax * (sampling_probabilities(LOGITS, 1.0, top_k, top_p) > 0)
        mistakes["temperature_after_filters"] = pool_at_temperature_1 / pool_at_temperature_1.sum()
        after_top_k = filter_probabilities(softmax, top_k)
        if top_k is not None:
            # Measuring top-p on the top-k probabilities before renormalising them (they sum to
            # kept_mass) is the same as a top_p larger by 1 / kept_mass on the renormalised ones.
            kept_mass = float(softmax[after_top_k > 0].sum())
            mistakes["top_p_before_renormalising"] = filter_probabilities(after_top_k,
                                                                          top_p=min(1.0, top_p / kept_mass))
        mistakes["top_p_misses_crossing"] = keep_most_likely(after_top_k, pool - 1)
        mistakes["top_p_one_too_many"] = keep_most_likely(after_top_k, pool + 1)
    return mistakes


def shares_close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Close shares, and never a token that b rules out."""
    return bool(((a - b).abs() <= SHARE_TOLERANCE).all() and (a[b == 0] == 0).all())


@dataclass(frozen=True)
class Shares:
    """DRAWS tokens drawn with these settings: each token's share of them should be its probability,
    and a token the filters rule out never drawn. A wrong mix is matched against the usual mistakes'."""
    seed: int
    temperature: float
    top_k: int | None = None
    top_p: float | None = None

    def __call__(self, t: Trial) -> None:
        settings = {"temperature": self.temperature}
        if self.top_k is not None:
            settings["top_k"] = self.top_k
        if self.top_p is not None:
            settings["top_p"] = self.top_p
        generator = torch.Generator().manual_seed(self.seed)
        counts = torch.zeros(len(LOGITS), dtype=torch.float64)
        for _ in range(DRAWS):
            counts[draw(t, LOGITS, generator, **settings)] += 1
        got = counts / DRAWS
        expected = sampling_probabilities(LOGITS, self.temperature, self.top_k, self.top_p)
        if shares_close(got, expected):
            return
        mistakes = sampling_mistakes(self.temperature, self.top_k, self.top_p)
        keys = matching(got, expected, mistakes, shares_close) or ["shares"]
        what = f"with {describe(settings)}, the share of {DRAWS} draws that picked each token id 0..4"
        excluded = [i for i in range(len(got)) if expected[i] == 0 and got[i] > 0]
        if excluded:
            what += f" (token ids {excluded} should never be drawn)"
        t.fail(keys, what, rounded(expected, 3), rounded(got, 3))


def greedy_at_zero(t: Trial) -> None:
    for logits, argmax in [([0.5, 3.0, -1.0, 2.9], 1), ([-2.0, -5.0, -1.0], 2), ([7.0, 1.0], 0)]:
        token = draw(t, torch.tensor(logits), temperature=0.0)
        if token != argmax:
            t.fail("not_greedy", f"at temperature 0 the pick should be the argmax of {logits}", argmax, token)


def greedy_whatever_the_filters(t: Trial) -> None:
    for settings in ({"top_k": 3}, {"top_p": 0.5}, {"top_k": 2, "top_p": 0.9}):
        if draw(t, LOGITS, temperature=0.0, **settings) != 1:
            t.fail("not_greedy", f"at temperature 0 with {describe(settings)} the pick should still be the argmax",
                   1, "another token")


def always_the_top_token(t: Trial, key: str, what: str, seed: int, **settings) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(100):
        if draw(t, LOGITS, generator, **settings) != 1:
            t.fail(key, what, 1, "another token")


def top_k_of_one_is_the_top_token(t: Trial) -> None:
    always_the_top_token(t, "top_k", "top_k=1 should always pick the most likely token", seed=4,
                         temperature=1.5, top_k=1)


def top_p_below_the_top_token_keeps_it(t: Trial) -> None:
    always_the_top_token(t, "keep_top_token", "top_p=0.3 is below the top token's 0.45, so it alone should be "
                         "drawn", seed=11, temperature=1.0, top_p=0.3)


def follows_the_generator(t: Trial) -> None:
    t.same_draws(lambda generator: [draw(t, LOGITS, generator, temperature=1.0) for _ in range(40)],
                 "generator_ignored", "two runs with generators seeded alike should draw the same tokens")


def draws_from_the_nucleus_of_a_real_vocabulary(t: Trial) -> None:
    vocabulary = torch.randn(49152, generator=torch.Generator().manual_seed(5)) * 4
    nucleus = sampling_probabilities(vocabulary, 0.8, top_p=0.9) > 0
    generator = torch.Generator().manual_seed(13)
    for _ in range(50):
        token = draw(t, vocabulary, generator, temperature=0.8, top_p=0.9)
        if not nucleus[token]:
            t.fail("outside_nucleus", "over a 49,152-token vocabulary with temperature=0.8, top_p=0.9, a token "
                   "outside the nucleus was drawn", f"one of the {int(nucleus.sum())} nucleus tokens",
                   f"token {token}")


def refuses_bad_settings(t: Trial) -> None:
    t.refuses("temperature=-1", LOGITS, temperature=-1.0)
    t.refuses("top_k=0", LOGITS, temperature=1.0, top_k=0)
    for top_p in (0.0, 1.5):
        t.refuses(f"top_p={top_p}", LOGITS, temperature=1.0, top_p=top_p)


def refuses_more_bad_input(t: Trial) -> None:
    t.refuses("temperature=-0.5", LOGITS, temperature=-0.5)
    for top_k in (-3, 2.5):
        t.refuses(f"top_k={top_k}", LOGITS, temperature=1.0, top_k=top_k)
    t.refuses("top_p=-0.1", LOGITS, temperature=1.0, top_p=-0.1)
    t.refuses("logits of shape (2, 5)", LOGITS.repeat(2, 1), temperature=1.0)


SAMPLE_NEXT_TOKEN = Exercise(
    name="sample_next_token",
    answer=sample_next_token,
    probe=lambda f: f(torch.zeros(3), 1.0),
    mistakes={
        "not_an_int": "convert the picked tensor with int(...)",
        "outside_vocabulary": "return the id of the token drawn, a number from 0 to len(logits) - 1",
        "not_greedy": "temperature 0 means greedy, whatever the filters (they always keep the top token): "
                      "return int(torch.argmax(logits)), no sampling",
        "temperature_ignored": "the temperature had no effect: divide the *logits* by the temperature before the "
                               "softmax (dividing the probabilities by T and renormalising cancels out)",
        "temperature_multiplies": "multiplied the logits by the temperature: divide them by it, logits / temperature",
        "ids_lost_in_sort": "token ids got lost in the sorting: map positions in the sorted order back to token ids "
                            "with the indices torch.sort returns",
        "top_k": "keep the k largest probabilities, torch.topk(probabilities, k), and zero the rest",
        "top_k_one_short": "top-k should keep exactly the k most likely tokens: torch.topk(probabilities, k)",
        "top_k_one_too_many": "top-k kept one token too many: keep exactly the k most likely",
        "top_k_beyond_vocabulary": "a top_k larger than the vocabulary keeps every token (torch.topk needs "
                                   "k <= len(logits), so use min(top_k, len(logits)))",
        "temperature_after_filters": "apply the temperature first, then top-k and top-p: the nucleus is taken from "
                                     "the distribution after temperature",
        "top_p_before_renormalising": "renormalise after top-k, before top-p: the nucleus is measured on the "
                                      "filtered distribution",
        "top_p_misses_crossing": "top-p left out the token that crosses the threshold: keep each token whose "
                                 "preceding tokens (most likely first) hold less than top_p, i.e. cumsum - p < top_p",
        "top_p_one_too_many": "top-p kept one token too many: the nucleus is the *smallest* set whose total "
                              "reaches top_p",
        "keep_top_token": "always keep at least the most likely token: a token stays if the tokens before it "
                          "(most likely first) hold less than top_p",
        "outside_nucleus": "sort the probabilities (after the temperature), keep a token while cumsum - p < top_p, "
                           "and map the sorted positions back to token ids",
        "shares": "draw with torch.multinomial from softmax(logits / temperature), filtered by top-k then top-p",
        "generator_ignored": "pass the generator on: torch.multinomial(probabilities, 1, generator=generator)",
        "no_refusal": "check the inputs first and raise ValueError with a message: temperature >= 0, top_k a whole "
                      "number >= 1 (isinstance(top_k, int)), top_p in (0, 1], and the logits of one position "
                      "(logits.dim() == 1)",
    },
    visible=(
        greedy_at_zero,
        Shares(seed=0, temperature=1.0),
        Shares(seed=1, temperature=0.5),
        Shares(seed=2, temperature=1.0, top_k=2),
        top_k_of_one_is_the_top_token,
        Shares(seed=3, temperature=1.0, top_p=0.8),
        follows_the_generator,
        refuses_bad_settings,
    ),
    hidden=(
        greedy_whatever_the_filters,
        Shares(seed=10, temperature=0.5, top_p=0.8),
        Shares(seed=11, temperature=1.0, top_k=3, top_p=0.8),
        top_p_below_the_top_token_keeps_it,
        Shares(seed=12, temperature=1.0, top_k=50, top_p=1.0),  # both keep every token
        draws_from_the_nucleus_of_a_real_vocabulary,
        refuses_more_bad_input,
    ),
    hints=(
        Hint("Check the arguments first and `raise ValueError(\"...\")` for a negative temperature, a `top_k` "
             "that is not a whole number of at least 1, a `top_p` outside (0, 1], or logits that are not 1-D. "
             "At temperature 0 return `int(torch.argmax(logits))` at once; otherwise take `torch.softmax(..., "
             "dim=-1)` of the *logits* divided by the temperature, and end with "
             "`int(torch.multinomial(probabilities, 1, generator=generator))`.",
             fits=("no_refusal", "not_greedy", "temperature_ignored", "temperature_multiplies", "not_an_int",
                   "outside_vocabulary", "generator_ignored", "shares")),
        Hint("Top-k works on the probabilities after the temperature: `torch.topk(probabilities, k).values[-1]` "
             "is the k-th largest, so keep what is at least that with `torch.where(probabilities >= kth, "
             "probabilities, 0.0)`, and divide by the sum before top-p. A `top_k` larger than the vocabulary "
             "keeps everything: `min(top_k, len(probabilities))`.",
             fits=("top_k", "top_k_one_short", "top_k_one_too_many", "top_k_beyond_vocabulary",
                   "temperature_after_filters", "top_p_before_renormalising")),
        Hint("Top-p: sort most likely first, `sorted_p, order = probabilities.sort(descending=True)`; then "
             "`sorted_p.cumsum(0) - sorted_p` is what the tokens *before* each one hold. Keep a token while that "
             "is `< top_p` (the token crossing the line stays, and so does the top one), zero the others, and "
             "put the values back at their token ids with `order`, e.g. `torch.zeros_like(probabilities)"
             ".scatter(0, order, sorted_p)`.",
             fits=("top_p_misses_crossing", "top_p_one_too_many", "keep_top_token", "ids_lost_in_sort",
                   "outside_nucleus")),
    ),
)


# --------------------------------------------------------------------------------------------
# quantize_int8
# --------------------------------------------------------------------------------------------
def quantize_int8(weight) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scale): int8 values of the same shape and one float scale per row, weight ~ q * scale[:, None]."""
    weight = torch.as_tensor(weight)
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"expected a 2-D floating-point weight matrix, got {weight.dim()}-D {weight.dtype}")
    return int8.quantize_int8(weight)


def _quantized(t: Trial, weight: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The learner's (q, scale), after checking their types, shapes and that each row has its own scale."""
    got = t.call(weight, what=what)
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(torch.is_tensor(x) for x in got)):
        t.fail("not_a_pair", f"{what}: return two tensors, (q, scale)", "(q, scale)", type(got).__name__)
    q, scale = got
    if q.dtype != torch.int8:
        t.fail("not_int8", f"{what}: q should hold 8-bit integers", "torch.int8", q.dtype)
    if tuple(q.shape) != tuple(weight.shape):
        t.fail("shape", f"{what}: q has one integer per weight", tuple(weight.shape), tuple(q.shape))
    rows, expected = weight.shape[0], weight.double().abs().amax(dim=1) / 127
    if scale.numel() == 1 and rows > 1:
        t.fail("per_tensor", f"{what}: one scale per row", (rows,), tuple(scale.shape))
    if tuple(scale.shape) == (weight.shape[1],) and weight.shape[1] != rows:
        t.fail("per_column", f"{what}: one scale per row", (rows,), tuple(scale.shape))
    if tuple(scale.shape) != (rows,):
        t.fail("shape", f"{what}: scale has one number per row", (rows,), tuple(scale.shape))
    if not scale.is_floating_point() or not torch.isfinite(scale).all():
        t.fail("zero_row" if bool((weight == 0).all(dim=1).any()) else "not_finite",
               f"{what}: every scale should be a finite float", "finite floats", _few(scale))
    scale = scale.double()
    nonzero = expected > 0
    if torch.allclose(scale[nonzero], scale[nonzero][:1].expand(int(nonzero.sum())), rtol=1e-6) \
            and not torch.allclose(expected[nonzero], expected[nonzero][:1].expand(int(nonzero.sum())), rtol=1e-6):
        t.fail("per_tensor", f"{what}: every row got the same scale, though its rows differ in size",
               _few(expected), _few(scale))
    if int(q.min()) < -127:
        t.fail("overflow", f"{what}: q should stay within -127..127", "-127 or more", int(q.min()))
    if not torch.allclose(scale[nonzero], expected[nonzero], rtol=1e-5):
        t.fail("scale", f"{what}: each row's scale should be max |w| / 127", _few(expected[nonzero]),
               _few(scale[nonzero]))
    return q, scale


def _few(values: torch.Tensor) -> list[float]:
    return rounded(values.flatten()[:6], 6)


def within_half_a_step(t: Trial, weight: torch.Tensor, what: str) -> None:
    """The promise of rounding to the nearest level: each weight is off by at most half its row's step."""
    q, scale = _quantized(t, weight, what)
    steps = weight.double() / scale[:, None]  # where each weight falls, in steps of its row's scale
    error = (steps - q.double()).abs()
    if (error > 0.5 + 1e-4).any():
        # Every integer on zero's side of its weight: cut toward zero instead of rounded.
        truncated = bool((q.double().abs() <= steps.abs() + 1e-4).all())
        row = int((error > 0.5 + 1e-4).any(dim=1).nonzero()[0])
        t.fail("truncated" if truncated else "values",
               f"{what}: q * scale should be within half a step (scale / 2) of each weight; row {row} is not",
               "at most 0.5 steps off", f"{error[row].max().item():.3g} steps off")


def _rows_of_many_sizes(seed: int, rows: int, cols: int, dtype=torch.float32) -> torch.Tensor:
    """Random rows whose sizes span four orders of magnitude, as a real layer's rows can."""
    generator = torch.Generator().manual_seed(seed)
    sizes = 10 ** (torch.rand(rows, 1, generator=generator) * 4 - 3)
    return (torch.randn(rows, cols, generator=generator) * sizes).to(dtype)


def a_matrix_by_hand(t: Trial) -> None:
    weight = torch.tensor([[127.0, -63.4, 0.4], [2.54, -1.0, 0.3]])
    what = "quantize_int8 of [[127, -63.4, 0.4], [2.54, -1.0, 0.3]]"
    q, _ = _quantized(t, weight, what)
    expected = [[127, -63, 0], [127, -50, 15]]
    if q.tolist() != expected:
        within_half_a_step(t, weight, what)  # names truncation
        t.fail("values", f"{what}: the integers (round(w / scale))", expected, q.tolist())


def rows_of_many_sizes(t: Trial) -> None:
    within_half_a_step(t, _rows_of_many_sizes(0, 16, 48), "a (16, 48) matrix whose rows differ in size")


def a_row_of_zeros(t: Trial) -> None:
    weight = _rows_of_many_sizes(1, 4, 8)
    weight[2] = 0.0
    what = "a (4, 8) matrix whose third row is all zeros"
    q, scale = _quantized(t, weight, what)
    if bool((q[2] != 0).any()):
        t.fail("zero_row", f"{what}: a row of zeros stays zeros", [0] * 8, q[2].tolist())
    within_half_a_step(t, weight, what)


def extremes_reach_127(t: Trial) -> None:
    weight = _rows_of_many_sizes(2, 8, 32)
    weight[3, 5] = -weight[3].abs().max() * 2  # a row whose largest weight is negative
    what = "a matrix whose row 3 peaks at a negative weight"
    q, _ = _quantized(t, weight, what)
    if int(q[3, 5]) != -127:
        t.fail("overflow" if int(q[3, 5]) == -128 else "scale", f"{what}: its largest |w| should land on -127",
               -127, int(q[3, 5]))
    within_half_a_step(t, weight, what)


def a_layer_sized_matrix(t: Trial) -> None:
    within_half_a_step(t, _rows_of_many_sizes(3, 576, 1536), "a (576, 1536) matrix, SmolLM2's feed-forward size")


def a_float64_matrix(t: Trial) -> None:
    within_half_a_step(t, _rows_of_many_sizes(4, 8, 16, torch.float64), "a float64 matrix")


QUANTIZE_INT8 = Exercise(
    name="quantize_int8",
    answer=quantize_int8,
    probe=lambda f: f(torch.ones(2, 3)),
    mistakes={
        "not_a_pair": "return both: q (int8, the weight's shape) and scale (one float per row), as (q, scale)",
        "not_int8": "convert the rounded values with .to(torch.int8)",
        "shape": "q has the weight's shape; scale has one entry per row: weight.abs().amax(dim=1) / 127",
        "per_tensor": "one scale for the whole matrix squeezes the small rows onto a few levels: take the "
                      "maximum per row, weight.abs().amax(dim=1), so each row gets its own scale",
        "per_column": "amax over dim=0 gives one scale per column: take it over dim=1, one per row (per output)",
        "scale": "each row's scale is its largest |w| divided by 127, so that weight lands exactly on ±127",
        "overflow": "int8 holds -128..127: a value of 128 wraps round to -128. Divide by 127 (not 128) and clamp "
                    "to -127..127, so the range stays symmetric",
        "truncated": ".to(torch.int8) cuts toward zero: round to the nearest integer first with torch.round",
        "zero_row": "a row of zeros has max 0, and 0 / 0 is NaN: give such a row a scale of 1 (any scale stores "
                    "0 exactly), e.g. torch.where(scale > 0, scale, torch.ones_like(scale))",
        "not_finite": "every scale must be a finite float: compute it in floating point, max |w| / 127",
        "values": "q = round(w / scale[:, None]), clamped to -127..127, with scale = max |w| per row / 127",
    },
    visible=(a_matrix_by_hand, rows_of_many_sizes, a_row_of_zeros),
    hidden=(extremes_reach_127, a_layer_sized_matrix, a_float64_matrix),
    hints=(
        Hint("Two steps: one scale per row, then the integers. `weight.abs().amax(dim=1)` is each row's "
             "largest absolute value (`dim=1` runs along a row, so one number per row); divide it by 127. "
             "Return both, `return q, scale`.",
             fits=("not_a_pair", "shape", "per_tensor", "per_column", "scale", "not_finite")),
        Hint("Divide each row by its own scale: `scale[:, None]` turns the (rows,) scales into a column "
             "(rows, 1) that lines up with every weight of its row. Round with `torch.round` *before* "
             "`.to(torch.int8)` (which alone cuts toward zero), and `.clamp(-127, 127)` to stay in range.",
             fits=("values", "truncated", "not_int8", "overflow")),
        Hint("A row of zeros has scale 0, and 0 / 0 is NaN: before dividing, give those rows a scale of 1 "
             "with `torch.where(scale > 0, scale, torch.ones_like(scale))`.",
             fits=("zero_row",)),
    ),
)

EXERCISES = (COSINE_SIMILARITY, NEAREST_NEIGHBORS, CAUSAL_MASK, SCALED_DOT_PRODUCT_ATTENTION, SAMPLE_NEXT_TOKEN,
             QUANTIZE_INT8)
