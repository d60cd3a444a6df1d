"""Checks for notebook A's exercises: cosine similarity, nearest neighbours, the causal mask,
scaled dot-product attention and sampling the next token.

When an answer is wrong, the checks compute what the usual mistakes would have produced (no
sqrt(d), the mask read the wrong way round, top-p one token short, ...) and name the one that
matches, so the hint points at the line to fix.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.checks.common import check_same_draws, fail, refuses, run
from course_lib.models.llama import causal_mask as rectangular_causal_mask
from course_lib.reference.lifecycle import filter_probabilities, sampling_probabilities

# Share of draws: 2,000 draws put a token's share within 0.05 of its probability (at least 4.5
# standard deviations), while every mistake the hints name moves some share by more than 0.1 or
# draws a token that must never come.
DRAWS = 2000
SHARE_TOLERANCE = 0.05


def _as_tensor_result(out, what: str, hint: str) -> torch.Tensor:
    if not torch.is_tensor(out):
        fail(f"{what}: the result should be a torch tensor", "torch.Tensor", type(out).__name__, hint)
    return out.detach().double()


def _rounded(values, digits: int = 4):
    return [round(x, digits) for x in torch.as_tensor(values).double().flatten().tolist()]


def _matching_hint(got: torch.Tensor, expected: torch.Tensor, mistakes: dict[str, torch.Tensor],
                   close) -> str:
    """The hints of the mistakes whose result `got` matches (and the right answer does not).

    Two mistakes can give the same result on a case; then both are named.
    """
    matches = [hint for hint, result in mistakes.items()
               if result.shape == got.shape and close(got, result)
               and not (close(expected, result) and close(result, expected))]
    return "\n   or: ".join(matches)


# ---- cosine similarity ----------------------------------------------------------------------


def _cosine(fn, a, b, what: str, hint: str = "") -> torch.Tensor:
    out = run(fn, what, a, b, hint=hint)
    return _as_tensor_result(out, what, "keep it a tensor (no .item()), so it works on whole batches of vectors")


def check_cosine_similarity(fn) -> None:
    """Hand-computed pairs, scale invariance, batches with broadcasting, zero vectors, integer input."""
    pairs = [
        ([1.0, 0.0], [0.0, 1.0], 0.0, "vectors at right angles"),
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0, "vectors pointing the same way (one twice as long)"),
        ([1.0, -2.0], [-1.0, 2.0], -1.0, "opposite vectors"),
        ([3.0, 4.0], [4.0, 3.0], 24 / 25, "[3, 4] and [4, 3]"),
    ]
    for a, b, expected, what in pairs:
        got = _cosine(fn, torch.tensor(a), torch.tensor(b), what)
        if got.numel() != 1 or abs(got.item() - expected) > 1e-5:
            dot = float(torch.tensor(a) @ torch.tensor(b))
            hint = ("that is the plain dot product: divide it by both vectors' lengths, a · b / (|a| |b|)"
                    if got.numel() == 1 and abs(got.item() - dot) < 1e-5 else "a · b / (|a| |b|)")
            fail(f"cosine similarity of {what}", expected, _rounded(got), hint)

    generator = torch.Generator().manual_seed(0)
    rows, vector = torch.randn(5, 4, generator=generator) * 3, torch.randn(4, generator=generator)
    got = _cosine(fn, rows, vector, "a (5, 4) matrix against one vector of length 4")
    expected = F.cosine_similarity(rows, vector, dim=-1).double()
    if got.shape != expected.shape:
        fail("a (5, 4) matrix against a vector of length 4 should give one similarity per row",
             tuple(expected.shape), tuple(got.shape), "sum and take norms over the last dimension: dim=-1")
    if not torch.allclose(got, expected, atol=1e-5):
        whole_norm = (rows @ vector / (rows.norm() * vector.norm())).double()
        hint = ("each row needs its own length: .norm(dim=-1, keepdim=True), not the norm of the whole matrix"
                if torch.allclose(got, whole_norm, atol=1e-5) else "a · b / (|a| |b|) for each row, over dim=-1")
        fail("a matrix against one vector: one similarity per row", _rounded(expected), _rounded(got), hint)

    a, b = torch.randn(3, 1, 8, generator=generator), torch.randn(1, 5, 8, generator=generator)
    got = _cosine(fn, a, b, "shapes (3, 1, 8) and (1, 5, 8)")
    expected = F.cosine_similarity(a, b, dim=-1).double()
    if got.shape != expected.shape:
        fail("shapes (3, 1, 8) and (1, 5, 8) should broadcast to a (3, 5) grid of similarities",
             tuple(expected.shape), tuple(got.shape),
             "use elementwise a * b and norms with keepdim=True, summing over dim=-1 only")
    if not torch.allclose(got, expected, atol=1e-5):
        fail("shapes (3, 1, 8) and (1, 5, 8): the similarities", _rounded(expected)[:5], _rounded(got)[:5],
             "a · b / (|a| |b|) over the last dimension, norms with keepdim=True")

    for a, b, what in [(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]), "a zero vector and [1, 2, 3]"),
                       (torch.zeros(3), torch.zeros(3), "two zero vectors")]:
        got = _cosine(fn, a, b, what)
        if got.numel() != 1 or not torch.isfinite(got).all() or abs(got.item()) > 1e-6:
            fail(f"cosine similarity of {what} should be 0, never NaN", 0.0, _rounded(got),
                 "0 / 0 is NaN: clamp each length to at least 1e-8 before dividing, "
                 "e.g. a.norm(dim=-1, keepdim=True).clamp_min(1e-8), as torch's F.cosine_similarity does")

    got = _cosine(fn, torch.tensor([1, 2, 3]), torch.tensor([2, 4, 6]), "integer vectors [1, 2, 3] and [2, 4, 6]",
                  hint="norms need floating-point numbers: convert the inputs with .float() first")
    if got.numel() != 1 or abs(got.item() - 1) > 1e-5:
        fail("integer vectors [1, 2, 3] and [2, 4, 6]", 1.0, _rounded(got), "convert with .float() first")
    print("✅ cosine_similarity passes the tests.")


# ---- nearest neighbours ---------------------------------------------------------------------

# Rows 0 and 5 are long but far off [1, 0, 0]: the largest dot products, not the most similar
# directions. By cosine the order is 1, 3, 0, 5, 2, 4; by dot product 0, 5, 3, 1, 2, 4.
_NEIGHBOUR_ROWS = torch.tensor([[10.0, 10.0, 0.0], [1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [2.0, 1.0, 0.0],
                                [-1.0, 0.0, 0.0], [5.0, 0.0, 6.0]])
_QUERY = torch.tensor([1.0, 0.0, 0.0])


def _neighbours(fn, what: str, k: int, exclude=()) -> list[tuple[int, float]]:
    out = run(fn, what, _NEIGHBOUR_ROWS.clone(), _QUERY.clone(), k, exclude=exclude)
    shape_hint = "return a list of (row index, similarity) pairs, e.g. [(3, 0.98), (0, 0.71)], with int(i), float(s)"
    if not isinstance(out, list) or not all(isinstance(pair, tuple) and len(pair) == 2 for pair in out):
        fail(f"{what}: the result should be a list of (index, similarity) tuples", "[(int, float), ...]",
             repr(out)[:200], shape_hint)
    if not all(isinstance(i, int) and not isinstance(i, bool) and isinstance(s, float) for i, s in out):
        fail(f"{what}: each pair should hold a Python int and a Python float", "[(int, float), ...]",
             repr(out)[:200], shape_hint)
    return out


def check_nearest_neighbors(fn) -> None:
    """Ranking by cosine (not dot product), most similar first, k, exclusion, and clear errors."""
    similarities = F.cosine_similarity(_NEIGHBOUR_ROWS, _QUERY, dim=-1)
    expected = [(i, similarities[i].item()) for i in (1, 3, 0)]

    got = _neighbours(fn, "the 3 rows nearest to [1, 0, 0]", 3)
    ids = [i for i, _ in got]
    if ids != [1, 3, 0]:
        hints = {(0, 5, 3): "that is the ranking by dot product: rank by cosine similarity, so a long vector "
                            "does not win just by being long",
                 (4, 2, 5): "those are the least similar rows: sort from most to least similar (torch.topk does)",
                 (0, 3, 1): "the right rows in reverse order: most similar first"}
        fail("the 3 rows nearest to [1, 0, 0], most similar first", [1, 3, 0], ids,
             hints.get(tuple(ids), "rank every row by cosine_similarity(matrix, vector) and take the top k"))
    for (i, s), (_, s_expected) in zip(got, expected):
        if abs(s - s_expected) > 1e-5:
            fail(f"the similarity reported for row {i}", round(s_expected, 5), round(s, 5),
                 "report the cosine similarity of that row, not its dot product or distance")

    got = _neighbours(fn, "k=2 with exclude=[1]", 2, exclude=[1])
    ids = [i for i, _ in got]
    if 1 in ids:
        fail("exclude=[1]: row 1 must not be returned", [3, 0], ids, "skip the indices in `exclude`")
    if ids != [3, 0]:
        fail("k=2 with exclude=[1] should still return 2 rows, the best ones not excluded", [3, 0], ids,
             "exclude first, then take the top k (e.g. set the excluded rows' similarity to -inf before topk)")

    got = _neighbours(fn, "k=6, every row", 6)
    if [i for i, _ in got] != [1, 3, 0, 5, 2, 4]:
        fail("k equal to the number of rows should rank them all", [1, 3, 0, 5, 2, 4], [i for i, _ in got])

    size_hint = "check k against the number of rows that are not excluded and raise ValueError with a message"
    refuses(fn, "k=0", size_hint, _NEIGHBOUR_ROWS, _QUERY, 0)
    refuses(fn, "k=7 for a matrix of 6 rows", size_hint, _NEIGHBOUR_ROWS, _QUERY, 7)
    refuses(fn, "k=6 with exclude=[0] (only 5 rows left)", size_hint, _NEIGHBOUR_ROWS, _QUERY, 6, exclude=[0])
    refuses(fn, "a vector of length 4 against rows of length 3",
             "compare matrix.shape[1] with vector.shape[0] and raise ValueError naming both shapes",
             _NEIGHBOUR_ROWS, torch.ones(4), 2)
    print("✅ nearest_neighbors passes the tests.")


# ---- causal mask ----------------------------------------------------------------------------


def check_causal_mask(fn) -> None:
    """A boolean lower triangle, diagonal included: True where query i may look at key j <= i."""
    for size in (4, 7, 1):  # a 1 x 1 mask cannot tell the mistakes apart, so it comes last
        got = run(fn, f"causal_mask({size})", size)
        if not torch.is_tensor(got):
            fail(f"causal_mask({size}) should return a torch tensor", "torch.Tensor", type(got).__name__,
                 "build it with torch.ones(T, T, dtype=torch.bool)")
        expected = torch.ones(size, size, dtype=torch.bool).tril()
        if got.shape != expected.shape:
            fail(f"causal_mask({size}) should be a square matrix, one row per query, one column per key",
                 tuple(expected.shape), tuple(got.shape))
        if got.dtype != torch.bool:
            hint = ("this exercise wants the boolean mask, True where allowed; the -inf belongs inside attention"
                    if got.is_floating_point() and torch.isinf(got).any()
                    else "use dtype=torch.bool, e.g. torch.ones(T, T, dtype=torch.bool).tril()")
            fail(f"causal_mask({size}) should be a boolean tensor", "torch.bool", got.dtype, hint)
        got = got.cpu()
        if torch.equal(got, expected):
            continue
        mistakes = {
            "the mask convention is inverted: True means *allowed* (torch's convention), the lower triangle":
                ~expected,
            "rows are queries and columns keys: query i may see keys j <= i, the lower triangle (torch.tril); "
            "you have it transposed": expected.T,
            "a token may attend to itself: keep the diagonal (j <= i, not j < i)": expected.tril(-1),
        }
        hint = next((h for h, wrong in mistakes.items() if torch.equal(got, wrong)), "True where j <= i: torch.tril")
        fail(f"causal_mask({size})", expected.int().tolist(), got.int().tolist(), hint)
    print("✅ causal_mask passes the tests.")


# ---- scaled dot-product attention ----------------------------------------------------------

def _attention_mistakes(q, k, v, mask) -> dict[str, torch.Tensor]:
    """What the usual mistakes give on these inputs, keyed by the hint that names each."""
    q, k, v = q.double(), k.double(), v.double()
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1)

    def masked_softmax(s, allowed, dim=-1):
        if allowed is None:
            return s.softmax(dim)
        return s.masked_fill(~allowed, float("-inf")).softmax(dim).nan_to_num(0.0)

    mistakes = {
        "forgot to divide the scores by sqrt(d): scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])":
            masked_softmax(scores, mask) @ v,
        "divided the scores by d: the scale is sqrt(d), math.sqrt(q.shape[-1])": masked_softmax(scores / d, mask) @ v,
        "softmax runs over the keys, dim=-1, so that each query's weights sum to 1":
            masked_softmax(scores / math.sqrt(d), mask, dim=-2) @ v,
    }
    if mask is not None:
        scaled = scores / math.sqrt(d)
        mistakes.update({
            "the mask convention is inverted: True means *allowed* (torch's fused-attention convention), so "
            "fill the scores where the mask is False: scores.masked_fill(~mask, float('-inf'))":
                masked_softmax(scaled, ~mask) @ v,
            "masked scores must become -inf, not 0: exp(0) = 1 still gives a masked key weight":
                scaled.masked_fill(~mask, 0.0).softmax(-1) @ v,
            "mask the scores before the softmax (with -inf), not the weights after it: "
            "zeroed weights no longer sum to 1": (scaled.softmax(-1) * mask) @ v,
        })
    return mistakes


def _random_tensors(generator: torch.Generator):
    """randn(*shape) drawing from a seeded `generator`: the same tensors on every run."""
    return lambda *shape: torch.randn(*shape, generator=generator)


def _compare_attention(fn, what: str, q, k, v, mask=None, hint: str = "") -> None:
    args = (q.clone(), k.clone(), v.clone()) + (() if mask is None else (mask.clone(),))
    out = run(fn, what, *args, hint="a size mismatch? use k.transpose(-2, -1), not k.T, so batch dimensions "
                                     "stay where they are")
    got = _as_tensor_result(out, what, "return weights @ v")
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    if got.shape != expected.shape:
        fail(f"{what}: the output shape", tuple(expected.shape), tuple(got.shape),
             "scores are q @ k.transpose(-2, -1), (..., Tq, Tk); the output is weights @ v, (..., Tq, dv)")

    def close(a, b):
        return torch.allclose(a, b, atol=1e-5, rtol=1e-4)

    if close(got, expected):
        return
    if torch.isnan(got).any():
        empty_rows = mask is not None and not mask.any(-1).all()
        fail(f"{what}: the output contains NaN", "finite values", "NaN",
             "a query allowed to see no key has softmax over only -inf, which is NaN; torch's fused attention "
             "returns zeros there. Zero the masked weights after the softmax: weights.masked_fill(~mask, 0.0)"
             if empty_rows else "NaN: did exp() overflow? use torch.softmax, which subtracts each row's max")
    mistake = _matching_hint(got, expected, _attention_mistakes(q, k, v, mask), close)
    fail(f"{what}: the output differs from torch's F.scaled_dot_product_attention", _rounded(expected)[:6],
         _rounded(got)[:6],
         mistake or hint or "softmax(q @ k.transpose(-2, -1) / sqrt(d)) @ v, masking before the softmax")


def check_scaled_dot_product_attention(fn) -> None:
    """Against torch's fused attention: one sequence, with a causal mask, with batch and head dimensions."""
    randn = _random_tensors(torch.Generator().manual_seed(0))
    q, k, v = randn(3, 4), randn(3, 4), randn(3, 4)
    _compare_attention(fn, "3 tokens, d=4, no mask", q, k, v)
    _compare_attention(fn, "3 tokens with a causal mask", q, k, v, rectangular_causal_mask(3, 3))
    q, k, v = randn(2, 3, 5, 8), randn(2, 3, 5, 8), randn(2, 3, 5, 8)
    _compare_attention(fn, "batch 2, 3 heads, 5 tokens, d=8, causal mask", q, k, v, rectangular_causal_mask(5, 5))
    print("✅ scaled_dot_product_attention passes the visible tests.")


def check_scaled_dot_product_attention_hidden(fn) -> None:
    """More shapes (Tq != Tk, dv != d), random masks, a fully masked row, and huge scores."""
    generator = torch.Generator().manual_seed(1)
    randn = _random_tensors(generator)
    q, k, v = randn(2, 2, 3, 8), randn(2, 2, 6, 8), randn(2, 2, 6, 5)
    _compare_attention(fn, "3 queries over 6 keys, values of size 5", q, k, v)
    _compare_attention(fn, "3 queries over 6 keys with a causal mask (the 3 newest tokens)", q, k, v,
                       rectangular_causal_mask(3, 6))
    mask = torch.rand(2, 1, 3, 6, generator=generator) > 0.5
    mask[..., 0] = True  # every query may see at least one key
    _compare_attention(fn, "a random mask of shape (2, 1, 3, 6), broadcast over the heads", q, k, v, mask)

    mask = rectangular_causal_mask(4, 4).clone()
    mask[2] = False
    q, k, v = randn(4, 8), randn(4, 8), randn(4, 8)
    out = run(fn, "a mask whose row 2 allows no key", q, k, v, mask)
    got = _as_tensor_result(out, "a mask whose row 2 allows no key", "return weights @ v")
    if got.shape == (4, 8) and not (torch.isfinite(got[2]).all() and (got[2] == 0).all()):
        fail("a query allowed to see no key should output zeros, as torch's fused attention does",
             [0.0] * 8, _rounded(got[2]),
             "softmax over only -inf is NaN: zero the masked weights after the softmax, "
             "weights.masked_fill(~mask, 0.0)")
    _compare_attention(fn, "a mask whose row 2 allows no key", q, k, v, mask)

    q, k, v = randn(2, 5, 16) * 30, randn(2, 5, 16) * 30, randn(2, 5, 16)
    _compare_attention(fn, "huge scores (q and k scaled by 30)", q, k, v, rectangular_causal_mask(5, 5),
                       hint="scores this large overflow exp() to inf: use torch.softmax, which subtracts each "
                            "row's max first")
    print("✅ scaled_dot_product_attention passes the hidden tests too.")


# ---- sampling the next token --------------------------------------------------------------

# Most likely first: token 1 (0.45), 3 (0.30), 0 (0.12), 4 (0.08), 2 (0.05); shuffled so that a
# position in sorted order is not the token id.
_PROBABILITIES = torch.tensor([0.12, 0.45, 0.05, 0.30, 0.08])
_LOGITS = _PROBABILITIES.log()


def _draw(fn, logits, generator=None, **settings) -> int:
    what = f"sample_next_token with {_describe(settings)}"
    if settings.get("top_k", 0) > len(logits):
        hint = (f"top_k={settings['top_k']} is more than the {len(logits)} tokens: it keeps every token "
                "(torch.topk needs k <= len(logits), so use min(top_k, len(logits)))")
    elif "top_p" in settings:
        hint = ("if no token was left, keep at least the most likely one: a token stays if the tokens before it "
                "hold < top_p")
    else:
        hint = ""
    token = run(fn, what, logits.clone(), generator=generator, **settings, hint=hint)
    if not isinstance(token, int) or isinstance(token, bool):
        fail(f"{what} should return a Python int", "an int such as 3", f"{type(token).__name__}: {token!r}"[:120],
             "convert the picked tensor with int(...)")
    if not 0 <= token < len(logits):
        fail(f"{what} returned a token id outside the vocabulary", f"0 .. {len(logits) - 1}", token)
    return token


def _describe(settings: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings.items())


def _shares(fn, logits, seed: int, draws: int = DRAWS, **settings) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    counts = torch.zeros(len(logits), dtype=torch.float64)
    for _ in range(draws):
        counts[_draw(fn, logits, generator=generator, **settings)] += 1
    return counts / draws


def _keep_most_likely(probabilities: torch.Tensor, n: int) -> torch.Tensor:
    """The n most likely tokens only, renormalised: a pool one token too small or too large."""
    kept = torch.zeros_like(probabilities)
    top = torch.topk(probabilities, max(1, min(n, len(probabilities)))).indices
    kept[top] = probabilities[top]
    return kept / kept.sum()


def _sampling_mistakes(temperature: float, top_k, top_p) -> dict[str, torch.Tensor]:
    """The distributions the usual mistakes draw from, keyed by the hint that names each."""
    softmax = sampling_probabilities(_LOGITS, temperature)
    expected = sampling_probabilities(_LOGITS, temperature, top_k, top_p)
    pool = int((expected > 0).sum())
    mistakes = {
        "the temperature had no effect: divide the *logits* by the temperature before the softmax "
        "(dividing the probabilities by T and renormalising cancels out)":
            sampling_probabilities(_LOGITS, 1.0, top_k, top_p),
        "multiplied the logits by the temperature: divide them by it, logits / temperature":
            sampling_probabilities(_LOGITS, 1 / temperature, top_k, top_p),
        "token ids got lost in the sorting: map positions in the sorted order back to token ids "
        "with the indices torch.sort returns": torch.sort(expected, descending=True).values,
    }
    if top_k is not None and top_p is None:
        mistakes.update({
            f"top_k={top_k} should keep exactly the {top_k} most likely tokens: torch.topk(probabilities, k)":
                _keep_most_likely(softmax, top_k - 1),
            f"top_k={top_k} kept one token too many: keep exactly the {top_k} most likely":
                _keep_most_likely(softmax, top_k + 1),
        })
    if top_p is not None:
        # The order mistakes first: on the hidden cases they give the same pool as a nucleus one
        # token too large, and they are the likelier cause there.
        pool_at_temperature_1 = softmax * (sampling_probabilities(_LOGITS, 1.0, top_k, top_p) > 0)
        mistakes["apply the temperature first, then top-k and top-p: the nucleus is taken from the "
                 "distribution after temperature"] = pool_at_temperature_1 / pool_at_temperature_1.sum()
        after_top_k = filter_probabilities(softmax, top_k)
        if top_k is not None:
            # Measuring top-p on the top-k probabilities before renormalising them (they sum to
            # kept_mass) is the same as a top_p larger by 1 / kept_mass on the renormalised ones.
            kept_mass = float(softmax[after_top_k > 0].sum())
            mistakes["renormalise after top-k, before top-p: the nucleus is measured on the filtered "
                     "distribution"] = filter_probabilities(after_top_k, top_p=min(1.0, top_p / kept_mass))
        mistakes[f"top-p left out the token that crosses the threshold: keep each token whose preceding "
                 f"tokens (most likely first) hold less than top_p={top_p}, i.e. cumsum - p < top_p"] = \
            _keep_most_likely(after_top_k, pool - 1)
        mistakes["top-p kept one token too many: the nucleus is the *smallest* set whose total reaches top_p"] = \
            _keep_most_likely(after_top_k, pool + 1)
    return mistakes


def _check_shares(fn, seed: int, temperature: float, top_k=None, top_p=None) -> None:
    settings = {"temperature": temperature}
    if top_k is not None:
        settings["top_k"] = top_k
    if top_p is not None:
        settings["top_p"] = top_p
    expected = sampling_probabilities(_LOGITS, temperature, top_k, top_p)
    got = _shares(fn, _LOGITS, seed, **settings)

    def close(a, b):
        # Close shares, and never a token that b rules out.
        return bool(((a - b).abs() <= SHARE_TOLERANCE).all() and (a[b == 0] == 0).all())

    if close(got, expected):
        return
    hint = _matching_hint(got, expected, _sampling_mistakes(temperature, top_k, top_p), close)
    excluded = [i for i in range(len(got)) if expected[i] == 0 and got[i] > 0]
    what = f"with {_describe(settings)}, the share of {DRAWS} draws that picked each token id 0..4"
    if excluded:
        what += f" (token ids {excluded} should never be drawn)"
    fail(what, _rounded(expected, 3), _rounded(got, 3),
         hint or "draw with torch.multinomial from softmax(logits / temperature), filtered by top-k then top-p")


def _check_greedy(fn) -> None:
    for logits, argmax in [([0.5, 3.0, -1.0, 2.9], 1), ([-2.0, -5.0, -1.0], 2), ([7.0, 1.0], 0)]:
        token = _draw(fn, torch.tensor(logits), temperature=0.0)
        if token != argmax:
            fail(f"at temperature 0 the pick should be the argmax of {logits}", argmax, token,
                 "temperature 0 means greedy: return int(torch.argmax(logits)), no sampling")


def _check_generator_is_used(fn) -> None:
    check_same_draws(lambda generator: [_draw(fn, _LOGITS, generator=generator, temperature=1.0) for _ in range(40)],
                     "two runs with generators seeded alike should draw the same tokens",
                     "pass the generator on: torch.multinomial(probabilities, 1, generator=generator)")


def check_sample_next_token(fn) -> None:
    """Greedy at temperature 0; draws that follow the temperature, top-k and top-p; the generator; bad input."""
    _check_greedy(fn)
    _check_shares(fn, seed=0, temperature=1.0)
    _check_shares(fn, seed=1, temperature=0.5)
    _check_shares(fn, seed=2, temperature=1.0, top_k=2)
    generator = torch.Generator().manual_seed(4)
    for _ in range(100):
        if _draw(fn, _LOGITS, generator=generator, temperature=1.5, top_k=1) != 1:
            fail("top_k=1 should always pick the most likely token", 1, "another token",
                 "keep the k largest probabilities, torch.topk(probabilities, k), and zero the rest")
    _check_shares(fn, seed=3, temperature=1.0, top_p=0.8)
    _check_generator_is_used(fn)
    refuses(fn, "temperature=-1", "check `if temperature < 0: raise ValueError(...)` first",
             _LOGITS, temperature=-1.0)
    refuses(fn, "top_k=0", "top_k must be a whole number >= 1; raise ValueError otherwise",
             _LOGITS, temperature=1.0, top_k=0)
    for top_p in (0.0, 1.5):
        refuses(fn, f"top_p={top_p}", "top_p must lie in (0, 1]; raise ValueError otherwise", _LOGITS,
                 temperature=1.0, top_p=top_p)
    print("✅ sample_next_token passes the visible tests.")


def check_sample_next_token_hidden(fn) -> None:
    """Filters with temperature and with each other, boundaries, a real vocabulary's size, more bad input."""
    for settings in ({"top_k": 3}, {"top_p": 0.5}, {"top_k": 2, "top_p": 0.9}):
        if _draw(fn, _LOGITS, temperature=0.0, **settings) != 1:
            fail(f"at temperature 0 with {_describe(settings)} the pick should still be the argmax", 1,
                 "another token", "temperature 0 is greedy whatever the filters: they always keep the top token")
    _check_shares(fn, seed=10, temperature=0.5, top_p=0.8)
    _check_shares(fn, seed=11, temperature=1.0, top_k=3, top_p=0.8)
    generator = torch.Generator().manual_seed(11)
    for _ in range(100):
        if _draw(fn, _LOGITS, generator=generator, temperature=1.0, top_p=0.3) != 1:
            fail("top_p=0.3 is below the top token's 0.45, so it alone should be drawn", 1, "another token",
                 "always keep at least the most likely token: keep a token when the tokens before it hold < top_p")
    _check_shares(fn, seed=12, temperature=1.0, top_k=50, top_p=1.0)  # both keep every token

    vocabulary = torch.randn(49152, generator=torch.Generator().manual_seed(5)) * 4
    pool = sampling_probabilities(vocabulary, 0.8, top_p=0.9) > 0
    generator = torch.Generator().manual_seed(13)
    for _ in range(50):
        token = _draw(fn, vocabulary, generator=generator, temperature=0.8, top_p=0.9)
        if not pool[token]:
            fail("over a 49,152-token vocabulary with temperature=0.8, top_p=0.9, a token outside the nucleus "
                 "was drawn", f"one of the {int(pool.sum())} nucleus tokens", f"token {token}",
                 "sort the probabilities (after the temperature), keep a token while cumsum - p < top_p, and "
                 "map the sorted positions back to token ids")

    refuses(fn, "temperature=-0.5", "check `if temperature < 0: raise ValueError(...)`", _LOGITS, temperature=-0.5)
    for top_k in (-3, 2.5):
        refuses(fn, f"top_k={top_k}", "top_k must be a whole number >= 1 (isinstance(top_k, int))", _LOGITS,
                 temperature=1.0, top_k=top_k)
    refuses(fn, "top_p=-0.1", "top_p must lie in (0, 1]", _LOGITS, temperature=1.0, top_p=-0.1)
    refuses(fn, "logits of shape (2, 5)", "sample from one position's logits: check logits.dim() == 1",
             _LOGITS.repeat(2, 1), temperature=1.0)
    print("✅ sample_next_token passes the hidden tests too.")
