"""Notebook A's reference answers agree with torch and with hand-computed cases, and its checks pass
them while catching typical learner mistakes with a message that names the mistake."""
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import lifecycle as checks
from course_lib.models.llama import causal_mask as rectangular_causal_mask
from course_lib.reference import lifecycle as reference


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- reference: cosine similarity and nearest neighbours ----


def test_cosine_similarity_matches_torch_with_broadcasting():
    a, b = randn(3, 1, 8, seed=1), randn(1, 5, 8, seed=2)
    got = reference.cosine_similarity(a, b)
    assert got.shape == (3, 5)
    assert torch.allclose(got, F.cosine_similarity(a, b, dim=-1), atol=1e-6)


def test_cosine_similarity_hand_cases_zero_vectors_and_integers():
    assert reference.cosine_similarity([3.0, 4.0], [4.0, 3.0]).item() == pytest.approx(24 / 25)
    assert reference.cosine_similarity([1.0, 0.0], [-2.0, 0.0]).item() == pytest.approx(-1.0)
    assert reference.cosine_similarity(torch.tensor([1, 2]), torch.tensor([2, 4])).item() == pytest.approx(1.0)
    assert reference.cosine_similarity(torch.zeros(3), torch.ones(3)).item() == 0.0
    assert reference.cosine_similarity(torch.zeros(3), torch.zeros(3)).item() == 0.0
    tiny = torch.full((4,), 3e-9)  # below eps: torch clamps each length separately, so do we
    assert reference.cosine_similarity(tiny, torch.ones(4)).item() == pytest.approx(
        F.cosine_similarity(tiny, torch.ones(4), dim=-1).item())


def test_cosine_similarity_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        reference.cosine_similarity(torch.ones(3), torch.ones(4))


def test_nearest_neighbors_ranks_by_cosine_and_skips_excluded_rows():
    rows = torch.tensor([[10.0, 10.0], [1.0, 0.1], [0.0, 1.0], [2.0, 1.0]])
    query = torch.tensor([1.0, 0.0])
    got = reference.nearest_neighbors(rows, query, 3)
    assert [i for i, _ in got] == [1, 3, 0]
    assert [s for _, s in got] == pytest.approx([1 / math.sqrt(1.01), 2 / math.sqrt(5), 1 / math.sqrt(2)])
    assert all(type(i) is int and type(s) is float for i, s in got)
    assert reference.nearest_neighbors(rows, query, 2, exclude=[1, 3]) == [(0, pytest.approx(1 / math.sqrt(2))),
                                                                          (2, pytest.approx(0.0))]
    assert [i for i, _ in reference.nearest_neighbors(rows, query, 1, exclude=torch.tensor([1]))] == [3]


@pytest.mark.parametrize("k, exclude, message", [
    (0, (), "from 1 to 4"), (5, (), "from 1 to 4"), (3, (0, 1), "from 1 to 2"), (1.5, (), "whole number"),
    (1, (4,), r"\[4\]"), (1, (-1,), r"\[-1\]"), (1, ("a",), "whole-number row indices"),
])
def test_nearest_neighbors_refuses_bad_k_and_exclude(k, exclude, message):
    with pytest.raises(ValueError, match=message):
        reference.nearest_neighbors(torch.eye(4), torch.ones(4), k, exclude=exclude)


def test_nearest_neighbors_refuses_mismatched_dimensions():
    with pytest.raises(ValueError, match=r"got \(4, 4\) and \(3,\)"):
        reference.nearest_neighbors(torch.eye(4), torch.ones(3), 1)


# ---- reference: causal mask and attention ----


def test_causal_mask_is_the_boolean_lower_triangle():
    assert reference.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert reference.causal_mask(0).shape == (0, 0)
    with pytest.raises(ValueError, match="whole number >= 0"):
        reference.causal_mask(-1)


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
        assert torch.allclose(reference.scaled_dot_product_attention(q, k, v, mask), expected, atol=1e-5)


def test_attention_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weight = 1 / (1 + math.exp(-2 / math.sqrt(2)))  # softmax([2, 0] / sqrt(2))[0]
    assert reference.scaled_dot_product_attention(q, k, v).tolist()[0] == pytest.approx([weight, 1 - weight])


def test_a_fully_masked_row_gives_zeros_like_torch_fused_attention():
    q, k, v = randn(4, 8, seed=1), randn(4, 8, seed=2), randn(4, 8, seed=3)
    mask = rectangular_causal_mask(4, 4).clone()
    mask[2] = False
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ours = reference.scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(torch_out[2], torch.zeros(8))  # the documented torch behaviour we copy
    assert torch.equal(ours[2], torch.zeros(8))
    assert torch.allclose(ours, torch_out, atol=1e-6)


def test_attention_is_stable_with_huge_scores_and_refuses_bad_input():
    q, k, v = randn(2, 5, 16, seed=1) * 100, randn(2, 5, 16, seed=2) * 100, randn(2, 5, 16, seed=3)
    out = reference.scaled_dot_product_attention(q, k, v, rectangular_causal_mask(5, 5))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=rectangular_causal_mask(5, 5)),
                          atol=1e-5)
    with pytest.raises(ValueError, match="boolean"):
        reference.scaled_dot_product_attention(q, k, v, torch.ones(5, 5))
    with pytest.raises(ValueError, match="expected q"):
        reference.scaled_dot_product_attention(q, k[..., :8], v)


# ---- reference: sampling ----

PROBABILITIES = torch.tensor([0.5, 0.3, 0.15, 0.05])
LOGITS = PROBABILITIES.log()


def test_sampling_probabilities_hand_cases():
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0), PROBABILITIES)
    squared = PROBABILITIES ** 2 / (PROBABILITIES ** 2).sum()  # softmax(log p / 0.5)
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 0.5), squared)
    assert reference.sampling_probabilities(LOGITS, 0).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0, top_k=2), torch.tensor([0.625, 0.375, 0, 0]))
    # top_p=0.7: 0.5 is short of it, 0.5 + 0.3 reaches it, so the token that crosses stays in.
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0, top_p=0.7), torch.tensor([0.625, 0.375, 0, 0]))
    assert reference.sampling_probabilities(LOGITS, 1.0, top_p=0.2).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0, top_p=1.0), PROBABILITIES)
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0, top_k=10), PROBABILITIES)


def test_top_k_keeps_ties_and_top_p_works_on_the_renormalised_top_k():
    tied = reference.sampling_probabilities(torch.tensor([1.0, 2.0, 2.0, 0.0]), 1.0, top_k=1)
    assert tied.tolist() == [0.0, 0.5, 0.5, 0.0]
    # top_k=3 leaves [0.5, 0.3, 0.15] / 0.95; before the third token lie 0.8 / 0.95 = 0.84 >= 0.82.
    assert torch.allclose(reference.sampling_probabilities(LOGITS, 1.0, top_k=3, top_p=0.82),
                          torch.tensor([0.625, 0.375, 0, 0]))


def test_the_temperature_comes_before_top_p():
    # At T=1, top_p=0.7 keeps 2 tokens; at T=0.5 the top token alone holds 0.5**2 / 0.365 = 0.68.
    hot_enough = reference.sampling_probabilities(LOGITS, 0.5, top_p=0.65)
    assert hot_enough.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_sampling_probabilities_is_stable_and_sums_to_one():
    huge = reference.sampling_probabilities(torch.tensor([1000.0, 999.0, -1000.0]), 0.01, top_p=0.9)
    assert torch.isfinite(huge).all() and huge.sum().item() == pytest.approx(1.0)
    vocabulary = randn(49152, seed=5) * 4
    for top_k, top_p in [(None, None), (50, None), (None, 0.9), (40, 0.5)]:
        p = reference.sampling_probabilities(vocabulary, 0.8, top_k, top_p)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert int((reference.sampling_probabilities(vocabulary, 0.8, top_k=40) > 0).sum()) == 40


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
        reference.sampling_probabilities(LOGITS, **kwargs)
    with pytest.raises(ValueError, match=message):
        reference.sample_next_token(LOGITS, **kwargs)


@pytest.mark.parametrize("logits, message", [
    (torch.zeros(2, 3), "non-empty 1-D"), (torch.zeros(0), "non-empty 1-D"),
    (torch.tensor([1.0, float("nan")]), "NaN"), (torch.full((3,), float("-inf")), "all logits are -inf"),
])
def test_sampling_refuses_bad_logits(logits, message):
    with pytest.raises(ValueError, match=message):
        reference.sample_next_token(logits)


def test_sample_next_token_is_greedy_at_zero_and_follows_the_generator():
    assert reference.sample_next_token(torch.tensor([0.0, 5.0, 4.9]), 0.0) == 1
    assert type(reference.sample_next_token(LOGITS, 1.0)) is int
    draws = [[reference.sample_next_token(LOGITS, 1.0, generator=g) for _ in range(30)]
             for g in (torch.Generator().manual_seed(3), torch.Generator().manual_seed(3))]
    assert draws[0] == draws[1] and len(set(draws[0])) > 1
    generator = torch.Generator().manual_seed(0)
    picks = [reference.sample_next_token(LOGITS, 1.0, top_k=2, generator=generator) for _ in range(2000)]
    assert set(picks) == {0, 1}
    assert picks.count(0) / len(picks) == pytest.approx(0.625, abs=0.05)


# ---- the checks pass the reference ----


def test_reference_answers_pass_every_check(capsys):
    checks.check_cosine_similarity(reference.cosine_similarity)
    checks.check_nearest_neighbors(reference.nearest_neighbors)
    checks.check_causal_mask(reference.causal_mask)
    checks.check_scaled_dot_product_attention(reference.scaled_dot_product_attention)
    checks.check_scaled_dot_product_attention_hidden(reference.scaled_dot_product_attention)
    checks.check_sample_next_token(reference.sample_next_token)
    checks.check_sample_next_token_hidden(reference.sample_next_token)
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


@pytest.mark.parametrize("check", [
    checks.check_cosine_similarity, checks.check_nearest_neighbors, checks.check_causal_mask,
    checks.check_scaled_dot_product_attention, checks.check_scaled_dot_product_attention_hidden,
    checks.check_sample_next_token, checks.check_sample_next_token_hidden,
])
def test_an_unimplemented_exercise_says_so(check):
    with pytest.raises(AssertionError, match="NotImplementedError"):
        check(not_implemented)


# ---- the checks catch mistakes: cosine similarity, nearest neighbours, causal mask ----


def dot_product(a, b):
    return (torch.as_tensor(a).float() * torch.as_tensor(b).float()).sum(-1)


def cosine_without_eps(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def cosine_with_the_whole_norm(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum(-1) / (a.norm() * b.norm()).clamp_min(1e-8)


def cosine_as_a_float(a, b):
    return reference.cosine_similarity(a, b).sum().item()


def cosine_without_float(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)


@pytest.mark.parametrize("wrong, message", [
    (dot_product, "plain dot product"),
    (cosine_without_eps, "never NaN"),
    (cosine_with_the_whole_norm, "its own length"),
    (cosine_as_a_float, "torch tensor"),
    (cosine_without_float, r"\.float\(\)"),
])
def test_cosine_mistakes_are_caught(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_cosine_similarity(wrong)


def neighbours(matrix, vector, k, exclude=(), *, mistake=None):
    """A learner's nearest_neighbors, with one chosen mistake."""
    if mistake != "no checks" and (k < 1 or k > len(matrix) - len(set(exclude)) or matrix.shape[1] != len(vector)):
        raise ValueError("bad k or shapes")
    if mistake == "dot product":
        scores = matrix @ vector
    else:
        scores = F.cosine_similarity(matrix, vector[None], dim=-1)
    if mistake == "exclude after topk":
        top = torch.topk(scores, k).indices.tolist()
        return [(i, float(scores[i])) for i in top if i not in exclude]
    scores = scores.clone()
    scores[list(exclude)] = float("-inf")
    order = torch.argsort(scores, descending=mistake != "ascending")[:k]
    if mistake == "tensors":
        return [(i, scores[i]) for i in order]
    return [(int(i), float(scores[i])) for i in order]


@pytest.mark.parametrize("mistake, message", [
    ("dot product", "ranking by dot product"),
    ("ascending", "least similar rows"),
    ("exclude after topk", "exclude first"),
    ("tensors", "Python int and a Python float"),
    ("no checks", "k=0 should"),
])
def test_nearest_neighbour_mistakes_are_caught(mistake, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_nearest_neighbors(functools.partial(neighbours, mistake=mistake))


@pytest.mark.parametrize("wrong, message", [
    (lambda T: torch.ones(T, T, dtype=torch.bool).triu(), "transposed"),
    (lambda T: ~torch.ones(T, T, dtype=torch.bool).tril(), "inverted"),
    (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), "attend to itself"),
    (lambda T: torch.ones(T, T).tril(), "boolean tensor"),
    (lambda T: torch.zeros(T, T).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")),
     "-inf belongs inside attention"),
    (lambda T: torch.ones(T, T, dtype=torch.bool).tril().tolist(), "torch tensor"),
])
def test_causal_mask_mistakes_are_caught(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_causal_mask(wrong)


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
    return weights @ v


@pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")  # the k.T mistake itself warns
@pytest.mark.parametrize("mistake, message, hidden", [
    ("no sqrt", "forgot to divide the scores by sqrt", False),
    ("divide by d", "divided the scores by d", False),
    ("softmax over queries", "softmax runs over the keys", False),
    ("inverted mask", "mask convention is inverted", False),
    ("mask with 0", "not 0", False),
    ("mask after softmax", "before the softmax", False),
    ("k.T", r"k\.transpose", False),
    ("NaN rows", "should output zeros", True),
    ("manual exp", "overflow", True),
])
def test_attention_mistakes_are_caught(mistake, message, hidden):
    check = checks.check_scaled_dot_product_attention_hidden if hidden else checks.check_scaled_dot_product_attention
    with pytest.raises(AssertionError, match=message):
        check(functools.partial(attention, mistake=mistake))


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
        return int(torch.argmax(logits))
    if mistake == "temperature on probabilities":
        probabilities = torch.softmax(logits, -1) / temperature
    elif mistake == "temperature multiplies":
        probabilities = torch.softmax(logits * temperature, -1)
    elif mistake == "temperature after top-p":
        probabilities = torch.softmax(logits, -1)
    else:
        probabilities = torch.softmax(logits / temperature, -1)
    probabilities = probabilities / probabilities.sum()
    if top_k is not None:
        k = top_k + 1 if mistake == "top-k one too many" else top_k
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
        probabilities = probabilities * keep
    if mistake == "temperature after top-p":
        probabilities = probabilities ** (1 / temperature)
    position = torch.multinomial(probabilities, 1, generator=None if mistake == "global generator" else generator)
    if mistake == "sorted position":
        return int(position)
    token = order[position]
    return token if mistake == "tensor" else int(token)


@pytest.mark.parametrize("mistake, message, hidden", [
    ("temperature on probabilities", "temperature had no effect", False),
    ("temperature multiplies", "multiplied the logits by the temperature", False),
    ("top-k one too many", "kept one token too many", False),
    ("top-p drops the crossing token", "crosses the threshold", False),
    ("sorted position", "sorted order back to token ids", False),
    ("global generator", "pass the generator on", False),
    ("tensor", "Python int", False),
    ("no checks", "should be refused", False),
    ("temperature after top-p", "apply the temperature first", True),
    ("no renormalising after top-k", "renormalise after top-k", True),
    ("top-k larger than vocabulary", "keeps every token", True),
])
def test_sampling_mistakes_are_caught(mistake, message, hidden):
    check = checks.check_sample_next_token_hidden if hidden else checks.check_sample_next_token
    with pytest.raises(AssertionError, match=message):
        check(functools.partial(sampler, mistake=mistake))


def test_the_checks_leave_torch_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_sample_next_token(reference.sample_next_token)
    assert torch.equal(torch.rand(3), expected)
