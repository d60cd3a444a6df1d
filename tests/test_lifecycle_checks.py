"""Notebook A's answers agree with torch and with hand-computed cases, and its exercises pass them
while catching typical learner mistakes under their declared keys (tests assert keys, never wording)."""
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import lifecycle as checks
from course_lib.exercises import EXERCISES, ExerciseFailure, Trial
from course_lib.exercises import lifecycle as answers
from course_lib.models.llama import causal_mask as rectangular_causal_mask


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- answers: cosine similarity and nearest neighbours ----


def test_cosine_similarity_matches_torch_with_broadcasting():
    a, b = randn(3, 1, 8, seed=1), randn(1, 5, 8, seed=2)
    got = answers.cosine_similarity(a, b)
    assert got.shape == (3, 5)
    assert torch.allclose(got, F.cosine_similarity(a, b, dim=-1), atol=1e-6)


def test_cosine_similarity_hand_cases_zero_vectors_and_integers():
    assert answers.cosine_similarity([3.0, 4.0], [4.0, 3.0]).item() == pytest.approx(24 / 25)
    assert answers.cosine_similarity([1.0, 0.0], [-2.0, 0.0]).item() == pytest.approx(-1.0)
    assert answers.cosine_similarity(torch.tensor([1, 2]), torch.tensor([2, 4])).item() == pytest.approx(1.0)
    assert answers.cosine_similarity(torch.zeros(3), torch.ones(3)).item() == 0.0
    assert answers.cosine_similarity(torch.zeros(3), torch.zeros(3)).item() == 0.0
    tiny = torch.full((4,), 3e-9)  # below eps: torch clamps each length separately, so do we
    assert answers.cosine_similarity(tiny, torch.ones(4)).item() == pytest.approx(
        F.cosine_similarity(tiny, torch.ones(4), dim=-1).item())


def test_cosine_similarity_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        answers.cosine_similarity(torch.ones(3), torch.ones(4))


def test_nearest_neighbors_ranks_by_cosine_and_skips_excluded_rows():
    rows = torch.tensor([[10.0, 10.0], [1.0, 0.1], [0.0, 1.0], [2.0, 1.0]])
    query = torch.tensor([1.0, 0.0])
    got = answers.nearest_neighbors(rows, query, 3)
    assert [i for i, _ in got] == [1, 3, 0]
    assert [s for _, s in got] == pytest.approx([1 / math.sqrt(1.01), 2 / math.sqrt(5), 1 / math.sqrt(2)])
    assert all(type(i) is int and type(s) is float for i, s in got)
    assert answers.nearest_neighbors(rows, query, 2, exclude=[1, 3]) == [(0, pytest.approx(1 / math.sqrt(2))),
                                                                          (2, pytest.approx(0.0))]
    assert [i for i, _ in answers.nearest_neighbors(rows, query, 1, exclude=torch.tensor([1]))] == [3]


@pytest.mark.parametrize("k, exclude, message", [
    (0, (), "from 1 to 4"), (5, (), "from 1 to 4"), (3, (0, 1), "from 1 to 2"), (1.5, (), "whole number"),
    (1, (4,), r"\[4\]"), (1, (-1,), r"\[-1\]"), (1, ("a",), "whole-number row indices"),
])
def test_nearest_neighbors_refuses_bad_k_and_exclude(k, exclude, message):
    with pytest.raises(ValueError, match=message):
        answers.nearest_neighbors(torch.eye(4), torch.ones(4), k, exclude=exclude)


def test_nearest_neighbors_refuses_mismatched_dimensions():
    with pytest.raises(ValueError, match=r"got \(4, 4\) and \(3,\)"):
        answers.nearest_neighbors(torch.eye(4), torch.ones(3), 1)


# ---- answers: causal mask and attention ----


def test_causal_mask_is_the_boolean_lower_triangle():
    assert answers.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert answers.causal_mask(0).shape == (0, 0)
    with pytest.raises(ValueError, match="whole number >= 0"):
        answers.causal_mask(-1)


@pytest.mark.parametrize("q_shape, k_shape, v_shape", [
    ((3, 4), (3, 4), (3, 4)),
    ((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 8)),
    ((2, 2, 3, 8), (2, 2, 6, 8), (2, 2, 6, 5)),
])
def test_attention_matches_torch_fused_attention(q_shape, k_shape, v_shape):
    q, k, v = randn(*q_shape, seed=1), randn(*k_shape, seed=2), randn(*v_shape, seed=3)
    tq, tk = q_shape[-2], k_shape[-2]
    random_mask = torch.rand(tq, tk, generator=torch.Generator().manual_seed(4)) > 0.5
    random_mask[:, 0] = True
    for mask in (None, rectangular_causal_mask(tq, tk), random_mask):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert torch.allclose(answers.scaled_dot_product_attention(q, k, v, mask), expected, atol=1e-5)


def test_attention_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weight = 1 / (1 + math.exp(-2 / math.sqrt(2)))  # softmax([2, 0] / sqrt(2))[0]
    assert answers.scaled_dot_product_attention(q, k, v).tolist()[0] == pytest.approx([weight, 1 - weight])


def test_a_fully_masked_row_gives_zeros_like_torch_fused_attention():
    q, k, v = randn(4, 8, seed=1), randn(4, 8, seed=2), randn(4, 8, seed=3)
    mask = rectangular_causal_mask(4, 4).clone()
    mask[2] = False
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ours = answers.scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(torch_out[2], torch.zeros(8))  # the documented torch behaviour we copy
    assert torch.equal(ours[2], torch.zeros(8))
    assert torch.allclose(ours, torch_out, atol=1e-6)


def test_attention_is_stable_with_huge_scores_and_refuses_bad_input():
    q, k, v = randn(2, 5, 16, seed=1) * 100, randn(2, 5, 16, seed=2) * 100, randn(2, 5, 16, seed=3)
    out = answers.scaled_dot_product_attention(q, k, v, rectangular_causal_mask(5, 5))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=rectangular_causal_mask(5, 5)),
                          atol=1e-5)
    with pytest.raises(ValueError, match="boolean"):
        answers.scaled_dot_product_attention(q, k, v, torch.ones(5, 5))
    with pytest.raises(ValueError, match="expected q"):
        answers.scaled_dot_product_attention(q, k[..., :8], v)


# ---- answers: sampling ----

PROBABILITIES = torch.tensor([0.5, 0.3, 0.15, 0.05])
LOGITS = PROBABILITIES.log()


def test_sampling_probabilities_hand_cases():
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0), PROBABILITIES)
    squared = PROBABILITIES ** 2 / (PROBABILITIES ** 2).sum()  # softmax(log p / 0.5)
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 0.5), squared)
    assert answers.sampling_probabilities(LOGITS, 0).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0, top_k=2), torch.tensor([0.625, 0.375, 0, 0]))
    # top_p=0.7: 0.5 is short of it, 0.5 + 0.3 reaches it, so the token that crosses stays in.
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0, top_p=0.7), torch.tensor([0.625, 0.375, 0, 0]))
    assert answers.sampling_probabilities(LOGITS, 1.0, top_p=0.2).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0, top_p=1.0), PROBABILITIES)
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0, top_k=10), PROBABILITIES)


def test_top_k_keeps_ties_and_top_p_works_on_the_renormalised_top_k():
    tied = answers.sampling_probabilities(torch.tensor([1.0, 2.0, 2.0, 0.0]), 1.0, top_k=1)
    assert tied.tolist() == [0.0, 0.5, 0.5, 0.0]
    # top_k=3 leaves [0.5, 0.3, 0.15] / 0.95; before the third token lie 0.8 / 0.95 = 0.84 >= 0.82.
    assert torch.allclose(answers.sampling_probabilities(LOGITS, 1.0, top_k=3, top_p=0.82),
                          torch.tensor([0.625, 0.375, 0, 0]))


def test_the_temperature_comes_before_top_p():
    # At T=1, top_p=0.7 keeps 2 tokens; at T=0.5 the top token alone holds 0.5**2 / 0.365 = 0.68.
    hot_enough = answers.sampling_probabilities(LOGITS, 0.5, top_p=0.65)
    assert hot_enough.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_sampling_probabilities_is_stable_and_sums_to_one():
    huge = answers.sampling_probabilities(torch.tensor([1000.0, 999.0, -1000.0]), 0.01, top_p=0.9)
    assert torch.isfinite(huge).all() and huge.sum().item() == pytest.approx(1.0)
    vocabulary = randn(49152, seed=5) * 4
    for top_k, top_p in [(None, None), (50, None), (None, 0.9), (40, 0.5)]:
        p = answers.sampling_probabilities(vocabulary, 0.8, top_k, top_p)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert int((answers.sampling_probabilities(vocabulary, 0.8, top_k=40) > 0).sum()) == 40


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -0.1}, "temperature must be a number >= 0"),
    ({"temperature": float("nan")}, "temperature must be a number >= 0"),
    ({"temperature": "hot"}, "temperature must be a number >= 0"),
    ({"temperature": 1.0, "top_k": 0}, "top_k must be a whole number >= 1"),
    ({"temperature": 1.0, "top_k": 2.5}, "top_k must be a whole number >= 1"),
    ({"temperature": 0.0, "top_k": -1}, "top_k must be a whole number >= 1"),
    ({"temperature": 1.0, "top_p": 0.0}, r"top_p must be a number in \(0, 1\]"),
    ({"temperature": 1.0, "top_p": 1.5}, r"top_p must be a number in \(0, 1\]"),
    ({"temperature": 0.0, "top_p": float("nan")}, r"top_p must be a number in \(0, 1\]"),
])
def test_sampling_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        answers.sampling_probabilities(LOGITS, **kwargs)
    with pytest.raises(ValueError, match=message):
        answers.sample_next_token(LOGITS, **kwargs)


@pytest.mark.parametrize("logits, message", [
    (torch.zeros(2, 3), "non-empty 1-D"), (torch.zeros(0), "non-empty 1-D"),
    (torch.tensor([1.0, float("nan")]), "NaN"), (torch.full((3,), float("-inf")), "all logits are -inf"),
])
def test_sampling_refuses_bad_logits(logits, message):
    with pytest.raises(ValueError, match=message):
        answers.sample_next_token(logits)


def test_sample_next_token_is_greedy_at_zero_and_follows_the_generator():
    assert answers.sample_next_token(torch.tensor([0.0, 5.0, 4.9]), 0.0) == 1
    assert type(answers.sample_next_token(LOGITS, 1.0)) is int
    draws = [[answers.sample_next_token(LOGITS, 1.0, generator=g) for _ in range(30)]
             for g in (torch.Generator().manual_seed(3), torch.Generator().manual_seed(3))]
    assert draws[0] == draws[1] and len(set(draws[0])) > 1
    generator = torch.Generator().manual_seed(0)
    picks = [answers.sample_next_token(LOGITS, 1.0, top_k=2, generator=generator) for _ in range(2000)]
    assert set(picks) == {0, 1}
    assert picks.count(0) / len(picks) == pytest.approx(0.625, abs=0.05)


# ---- the exercises pass the answers ----


def test_the_answers_pass_every_check(capsys):
    checks.check_cosine_similarity(answers.cosine_similarity)
    checks.check_nearest_neighbors(answers.nearest_neighbors)
    checks.check_causal_mask(answers.causal_mask)
    checks.check_scaled_dot_product_attention(answers.scaled_dot_product_attention)
    checks.check_scaled_dot_product_attention_hidden(answers.scaled_dot_product_attention)
    checks.check_sample_next_token(answers.sample_next_token)
    checks.check_sample_next_token_hidden(answers.sample_next_token)
    assert capsys.readouterr().out.count("✅") == 7


def test_mistake_free_learner_versions_pass(capsys):
    """The learner-style functions below pass when they make no mistake, so each failure is the mistake's."""
    checks.check_nearest_neighbors(neighbours)
    checks.check_scaled_dot_product_attention(attention)
    checks.check_scaled_dot_product_attention_hidden(attention)
    checks.check_sample_next_token(sampler)
    checks.check_sample_next_token_hidden(sampler)
    assert capsys.readouterr().out.count("✅") == 5


def not_implemented(*args, **kwargs):
    raise NotImplementedError


def failure(check, wrong) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(wrong)
    assert isinstance(caught.value, AssertionError)  # what nbgrader counts as a failed test
    return caught.value


@pytest.mark.parametrize("check", [
    checks.check_cosine_similarity, checks.check_nearest_neighbors, checks.check_causal_mask,
    checks.check_scaled_dot_product_attention, checks.check_scaled_dot_product_attention_hidden,
    checks.check_sample_next_token, checks.check_sample_next_token_hidden,
])
def test_an_unimplemented_exercise_says_so(check):
    assert failure(check, not_implemented).key == "not_implemented"


# ---- the checks catch mistakes: cosine similarity, nearest neighbours, causal mask ----


def dot_product(a, b):
    return (torch.as_tensor(a).float() * torch.as_tensor(b).float()).sum(-1)


def cosine_without_eps(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def cosine_with_the_whole_norm(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum(-1) / (a.norm() * b.norm()).clamp_min(1e-8)


def cosine_over_every_dimension(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-8)


def cosine_flattened(a, b):
    return answers.cosine_similarity(a, b).flatten()


def cosine_squared(a, b):
    return answers.cosine_similarity(a, b) ** 2


def cosine_as_a_float(a, b):
    return answers.cosine_similarity(a, b).sum().item()


def cosine_without_float(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)


COSINE_MISTAKES = [
    (dot_product, "dot_product"),
    (cosine_without_eps, "zero_vector"),
    (cosine_with_the_whole_norm, "whole_norm"),
    (cosine_over_every_dimension, "shape"),
    (cosine_flattened, "broadcast"),
    (cosine_squared, "values"),
    (cosine_as_a_float, "not_a_tensor"),
    (cosine_without_float, "integers"),
]


@pytest.mark.parametrize("wrong, key", COSINE_MISTAKES)
def test_cosine_mistakes_are_caught(wrong, key):
    assert failure(checks.check_cosine_similarity, wrong).key == key


def test_changing_an_input_in_place_is_caught():
    def normalising_in_place(a, b):
        a /= a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        b /= b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return (a * b).sum(-1)

    assert failure(checks.check_cosine_similarity, normalising_in_place).key == "changed_input"


def neighbours(matrix, vector, k, exclude=(), *, mistake=None):
    """A learner's nearest_neighbors, with one chosen mistake."""
    if mistake != "no checks" and (k < 1 or k > len(matrix) - len(set(exclude)) or matrix.shape[1] != len(vector)):
        raise ValueError("bad k or shapes")
    if mistake == "dot product":
        scores = matrix @ vector
    elif mistake == "distance":
        scores = -(matrix - vector).norm(dim=-1)
    else:
        scores = F.cosine_similarity(matrix, vector[None], dim=-1)
    if mistake == "exclude after topk":
        top = torch.topk(scores, k).indices.tolist()
        return [(i, float(scores[i])) for i in top if i not in exclude]
    scores = scores.clone()
    if mistake != "ignore exclude":
        scores[list(exclude)] = float("-inf")
    order = torch.argsort(scores, descending=mistake != "ascending")[:k]
    if mistake == "reversed":
        order = order.flip(0)
    if mistake == "tensors":
        return [(i, scores[i]) for i in order]
    if mistake == "reports the dot product":
        return [(int(i), float(matrix[i] @ vector)) for i in order]
    return [(int(i), float(scores[i])) for i in order]


NEIGHBOUR_MISTAKES = [
    ("dot product", "dot_product"),
    ("ascending", "ascending"),
    ("reversed", "reversed"),
    ("distance", "ranking"),
    ("reports the dot product", "similarity"),
    ("ignore exclude", "excluded_returned"),
    ("exclude after topk", "exclude_after_top_k"),
    ("tensors", "not_pairs"),
    ("no checks", "no_refusal"),
]


@pytest.mark.parametrize("mistake, key", NEIGHBOUR_MISTAKES)
def test_nearest_neighbour_mistakes_are_caught(mistake, key):
    assert failure(checks.check_nearest_neighbors, functools.partial(neighbours, mistake=mistake)).key == key


MASK_MISTAKES = [
    (lambda T: torch.ones(T, T, dtype=torch.bool).triu(), "transposed"),
    (lambda T: ~torch.ones(T, T, dtype=torch.bool).tril(), "inverted"),
    (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), "no_diagonal"),
    (lambda T: torch.ones(T, T, dtype=torch.bool), "values"),
    (lambda T: torch.ones(T, T + 1, dtype=torch.bool).tril(), "shape"),
    (lambda T: torch.ones(T, T).tril(), "dtype"),
    (lambda T: torch.zeros(T, T).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")),
     "additive_mask"),
    (lambda T: torch.ones(T, T, dtype=torch.bool).tril().tolist(), "not_a_tensor"),
]


@pytest.mark.parametrize("wrong, key", MASK_MISTAKES)
def test_causal_mask_mistakes_are_caught(wrong, key):
    assert failure(checks.check_causal_mask, wrong).key == key


# ---- the checks catch mistakes: attention ----


def attention(q, k, v, mask=None, *, mistake=None):
    """A learner's scaled_dot_product_attention, with one chosen mistake."""
    d = q.shape[-1]
    scale = {"no sqrt": 1.0, "divide by d": d}.get(mistake, math.sqrt(d))
    scores = (q @ (k.T if mistake == "k.T" else k.transpose(-2, -1))) / scale
    dim = -2 if mistake == "softmax over queries" else -1
    if mask is not None:
        if mistake == "inverted mask":
            mask = ~mask
        if mistake == "mask after softmax":
            return (scores.softmax(dim) * mask) @ v
        scores = scores.masked_fill(~mask, 0.0 if mistake == "mask with 0" else float("-inf"))
    if mistake == "manual exp":
        weights = scores.exp() / scores.exp().sum(dim, keepdim=True)
    else:
        weights = scores.softmax(dim)
    if mask is not None and mistake != "NaN rows":
        weights = weights.nan_to_num(0.0)
    if mistake == "weights only":
        return weights
    out = weights @ v
    return {"list": out.tolist(), "doubled": 2 * out}.get(mistake, out)


ATTENTION_MISTAKES = [
    ("no sqrt", "no_scale", False),
    ("divide by d", "scaled_by_d", False),
    ("softmax over queries", "softmax_over_queries", False),
    ("inverted mask", "inverted_mask", False),
    ("mask with 0", "masked_with_zero", False),
    ("mask after softmax", "masked_after_softmax", False),
    ("k.T", "raised", False),
    ("list", "not_a_tensor", False),
    ("weights only", "shape", False),
    ("doubled", "values", False),
    ("NaN rows", "empty_row_nan", True),
    ("manual exp", "overflow", True),
]


@pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")  # the k.T mistake itself warns
@pytest.mark.parametrize("mistake, key, hidden", ATTENTION_MISTAKES)
def test_attention_mistakes_are_caught(mistake, key, hidden):
    check = checks.check_scaled_dot_product_attention_hidden if hidden else checks.check_scaled_dot_product_attention
    assert failure(check, functools.partial(attention, mistake=mistake)).key == key


# ---- the checks catch mistakes: sampling ----


def sampler(logits, temperature=1.0, top_k=None, top_p=None, generator=None, *, mistake=None):
    """A learner's sample_next_token, written the usual way, with one chosen mistake."""
    if mistake != "no checks":
        if temperature < 0 or logits.dim() != 1:
            raise ValueError("bad temperature or logits")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError("bad top_k")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError("bad top_p")
    if temperature == 0:
        return int(torch.argmin(logits) if mistake == "argmin at zero" else torch.argmax(logits))
    if mistake == "top-p only on small vocabularies" and len(logits) > 1000:
        top_p = None
    if mistake == "temperature on probabilities":
        probabilities = torch.softmax(logits, -1) / temperature
    elif mistake == "temperature multiplies":
        probabilities = torch.softmax(logits * temperature, -1)
    elif mistake == "temperature after top-p":
        probabilities = torch.softmax(logits, -1)
    elif mistake == "uniform":
        probabilities = torch.ones(len(logits))
    else:
        probabilities = torch.softmax(logits / temperature, -1)
    probabilities = probabilities / probabilities.sum()
    if top_k is not None:
        k = {"top-k one too many": top_k + 1, "top-k one short": top_k - 1, "top-k at least 2": max(top_k, 2)}.get(
            mistake, top_k)
        if mistake != "top-k larger than vocabulary":
            k = min(k, len(logits))
        kth = torch.topk(probabilities, k).values[-1]
        probabilities = torch.where(probabilities >= kth, probabilities, 0.0)
        if mistake != "no renormalising after top-k":
            probabilities = probabilities / probabilities.sum()
    order = torch.arange(len(logits))
    if top_p is not None:
        probabilities, order = torch.sort(probabilities, descending=True)
        cumulative = probabilities.cumsum(0)
        keep = cumulative <= top_p if mistake == "top-p drops the crossing token" else cumulative - probabilities < top_p
        if mistake == "top-p one too many":
            keep[min(int(keep.sum()), len(keep) - 1)] = True
        probabilities = probabilities * keep
    if mistake == "temperature after top-p":
        probabilities = probabilities ** (1 / temperature)
    position = torch.multinomial(probabilities, 1, generator=None if mistake == "global generator" else generator)
    if mistake == "sorted position":
        return int(position)
    if mistake == "one past the end":
        return len(logits)
    token = order[position]
    return token if mistake == "tensor" else int(token)


SAMPLING_MISTAKES = [
    ("argmin at zero", "not_greedy", False),
    ("temperature on probabilities", "temperature_ignored", False),
    ("temperature multiplies", "temperature_multiplies", False),
    ("uniform", "shares", False),
    ("top-k one short", "top_k_one_short", False),
    ("top-k one too many", "top_k_one_too_many", False),
    ("top-k at least 2", "top_k", False),
    ("top-p drops the crossing token", "top_p_misses_crossing", False),
    ("top-p one too many", "top_p_one_too_many", False),
    ("sorted position", "ids_lost_in_sort", False),
    ("global generator", "generator_ignored", False),
    ("tensor", "not_an_int", False),
    ("one past the end", "outside_vocabulary", False),
    ("no checks", "no_refusal", False),
    ("temperature after top-p", "temperature_after_filters", True),
    ("no renormalising after top-k", "top_p_before_renormalising", True),
    ("top-k larger than vocabulary", "top_k_beyond_vocabulary", True),
    ("top-p only on small vocabularies", "outside_nucleus", True),
]


@pytest.mark.parametrize("mistake, key, hidden", SAMPLING_MISTAKES)
def test_sampling_mistakes_are_caught(mistake, key, hidden):
    check = checks.check_sample_next_token_hidden if hidden else checks.check_sample_next_token
    assert failure(check, functools.partial(sampler, mistake=mistake)).key == key


def test_a_nucleus_left_empty_is_named():
    """Dropping the token that crosses top_p leaves nothing to draw when top_p is below the top token's
    probability; the hidden cases name that earlier on the shares, so run the one case alone."""
    wrong = functools.partial(sampler, mistake="top-p drops the crossing token")
    trial = Trial(EXERCISES["sample_next_token"], (wrong,), {})
    with pytest.raises(ExerciseFailure) as caught:
        answers.top_p_below_the_top_token_keeps_it(trial)
    assert caught.value.key == "keep_top_token"


# ---- quantize_int8 ----


def per_row_int8(weight, divisor=127, rounding=torch.round, clamp=True):
    scale = weight.abs().amax(dim=1) / divisor
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = rounding(weight / scale[:, None])
    return (q.clamp(-127, 127) if clamp else q).to(torch.int8), scale


def off_by_one_somewhere(weight):
    q, scale = per_row_int8(weight)
    q[-1, -1] += 1 if q[-1, -1] < 127 else -1
    return q, scale


def nan_for_a_zero_row(weight):
    scale = weight.abs().amax(dim=1) / 127
    scale = scale / (scale > 0)  # 0 / 0: NaN where a row is all zeros
    return torch.round(weight / scale[:, None]).nan_to_num(0).to(torch.int8), scale


def an_infinite_scale(weight):
    q, scale = per_row_int8(weight)
    scale[0] = float("inf")
    return q, scale


def one_scale_for_all(weight):
    scale = weight.abs().max() / 127
    return torch.round(weight / scale).clamp(-127, 127).to(torch.int8), scale.expand(weight.shape[0]).clone()


QUANTIZE_MISTAKES = [
    (lambda w: per_row_int8(w)[0], "not_a_pair"),
    (lambda w: (per_row_int8(w)[0].float(), per_row_int8(w)[1]), "not_int8"),
    (lambda w: (per_row_int8(w)[0].T, per_row_int8(w)[1]), "shape"),
    (lambda w: (per_row_int8(w)[0], w.abs().max().reshape(1) / 127), "per_tensor"),  # a single scale
    (one_scale_for_all, "per_tensor"),
    (lambda w: (torch.round(w / (w.abs().amax(0) / 127)).clamp(-127, 127).to(torch.int8), w.abs().amax(0) / 127),
     "per_column"),
    (functools.partial(per_row_int8, divisor=126), "scale"),
    (functools.partial(per_row_int8, divisor=128, clamp=False), "overflow"),
    (functools.partial(per_row_int8, rounding=torch.trunc), "truncated"),
    (nan_for_a_zero_row, "zero_row"),
    (an_infinite_scale, "not_finite"),
    (off_by_one_somewhere, "values"),
]


@pytest.mark.parametrize("wrong, key", QUANTIZE_MISTAKES)
def test_quantize_int8_mistakes_are_named(wrong, key):
    """Each mistake is caught under its key by the visible cases (a learner sees it before grading)."""
    wrong.__name__ = "quantize_int8"
    assert failure(EXERCISES["quantize_int8"].check, wrong).key == key


def test_quantize_int8_answer_keeps_every_weight_within_half_a_step():
    weight = randn(64, 200) * (10 ** torch.linspace(-3, 1, 64))[:, None]
    weight[5] = 0.0
    q, scale = answers.quantize_int8(weight)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    assert int(q.min()) >= -127 and int(q.abs().max()) == 127
    assert torch.equal(q[5], torch.zeros(200, dtype=torch.int8))
    assert ((weight - q.float() * scale[:, None]).abs() <= scale[:, None] / 2 * (1 + 1e-5)).all()
    with pytest.raises(ValueError, match="2-D floating-point"):
        answers.quantize_int8(torch.ones(3, dtype=torch.int64).reshape(1, 3))


def test_every_declared_mistake_is_caught_above():
    caught = {
        "cosine_similarity": {key for _, key in COSINE_MISTAKES},
        "nearest_neighbors": {key for _, key in NEIGHBOUR_MISTAKES},
        "causal_mask": {key for _, key in MASK_MISTAKES},
        "scaled_dot_product_attention": {key for _, key, _ in ATTENTION_MISTAKES},
        "sample_next_token": {key for _, key, _ in SAMPLING_MISTAKES} | {"keep_top_token"},
        "quantize_int8": {key for _, key in QUANTIZE_MISTAKES},
    }
    assert {name: set(EXERCISES[name].mistakes) - keys for name, keys in caught.items()} == dict.fromkeys(caught, set())


def test_the_checks_leave_torch_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_sample_next_token(answers.sample_next_token)
    assert torch.equal(torch.rand(3), expected)
