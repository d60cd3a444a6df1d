"""Notebook B's answers agree with independent counts (the real Llama module's layers, and torch's own
FLOP counter running it), and its exercises pass them while catching typical learner mistakes under
the key that names the mistake."""
import dataclasses
import functools
import math
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib.checks import compute as checks
from course_lib.exercises import ExerciseFailure, compute
from course_lib.exercises.lifecycle import scaled_dot_product_attention
from course_lib.models.llama import KVCache, Llama, LlamaConfig
from course_lib.widgets.square import SquareExplorer

SMOLLM2 = LlamaConfig()
CONFIGS = [pytest.param(SMOLLM2, id="SmolLM2-135M"), pytest.param(compute.LLAMA3_8B, id="Llama-3-8B")]


def meta_model(config: LlamaConfig) -> Llama:
    """The real module, built without memory: shapes only."""
    with torch.device("meta"):
        return Llama(config)


# ---- answers: matmul FLOPs ----


def test_matmul_flops_counts_a_multiply_add_as_two():
    assert compute.matmul_flops(2, 3, 4) == 48
    assert compute.matmul_flops(1, 576, 49152) == 2 * 576 * 49152


@pytest.mark.parametrize("sizes, name", [((0, 3, 4), "m=0"), ((2, -1, 4), "k=-1"), ((2, 3, 2.5), "n=2.5"),
                                         ((True, 3, 4), "m=True"), ((2, "3", 4), "k='3'")])
def test_matmul_flops_refuses_what_is_not_a_size(sizes, name):
    with pytest.raises(ValueError, match=name):
        compute.matmul_flops(*sizes)


# ---- answers: forward FLOPs and parameters, against the real module ----


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seq_len", [1, 1000, 8192])
def test_forward_flops_matches_the_linear_layers_of_the_real_module(config, seq_len):
    model = meta_model(config)
    linear = sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    head = 2 * config.dim * config.vocab_size  # the tied embedding, used as a matrix once more
    attention = config.n_layers * 2 * (2 * config.n_heads * config.head_dim * seq_len)  # scores, weighted sum
    assert compute.forward_flops(config, seq_len) == linear + head + attention


@pytest.mark.parametrize("seq_len", [1, 7, 30])
def test_forward_flops_matches_torch_flop_counter_on_one_new_token(seq_len):
    config = LlamaConfig(vocab_size=101, dim=48, n_layers=3, n_heads=6, n_kv_heads=2, hidden_dim=80, max_seq_len=64)
    model = Llama(config).eval()
    cache = KVCache()
    # The explicit attention (matmuls torch can count) instead of the fused kernel, which it does not count.
    with torch.no_grad(), model.using_attention(scaled_dot_product_attention):
        if seq_len > 1:
            model(torch.arange(seq_len - 1)[None], cache=cache)
        with FlopCounterMode(display=False) as counter:
            model(torch.tensor([[5]]), cache=cache)
    assert compute.forward_flops(config, seq_len) == counter.get_total_flops()


def test_forward_flops_by_part_adds_up_and_only_attention_grows_with_seq_len():
    short, long = compute.forward_flops_by_part(SMOLLM2, 10), compute.forward_flops_by_part(SMOLLM2, 1000)
    assert sum(long.values()) == compute.forward_flops(SMOLLM2, 1000)
    grown = {part for part in short if long[part] != short[part]}
    assert grown == {"attention scores", "weighted sum of values"}
    assert long["attention scores"] == 100 * short["attention scores"]


@pytest.mark.parametrize("seq_len", [0, -1, 2.0, True])
def test_forward_flops_refuses_a_seq_len_below_one(seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        compute.forward_flops(SMOLLM2, seq_len)


@pytest.mark.parametrize("config", CONFIGS)
def test_parameter_count_matches_the_real_module(config):
    model = meta_model(config)
    counts = compute.parameter_count(config)
    assert counts["total"] == sum(p.numel() for p in model.parameters())  # the tied head is not a parameter
    assert counts["embedding"] == model.embed.weight.numel()
    assert counts["per_layer"] == sum(p.numel() for p in model.blocks[0].parameters())
    assert counts["layers"] == config.n_layers * counts["per_layer"]
    assert counts["final_norm"] == model.norm.weight.numel()


def test_smollm2_has_135_million_parameters_and_needs_about_two_flops_per_weight():
    counts = compute.parameter_count(SMOLLM2)
    assert counts["total"] == 134_515_008
    norms = (2 * SMOLLM2.n_layers + 1) * SMOLLM2.dim
    matmul_weights = counts["total"] - norms  # the embedding counts once more as the head, not as a lookup
    attention_at_one_token = SMOLLM2.n_layers * 4 * SMOLLM2.n_heads * SMOLLM2.head_dim
    assert compute.forward_flops(SMOLLM2, 1) == 2 * matmul_weights + attention_at_one_token


# ---- answers: power-law fit ----


def test_fit_power_law_recovers_exact_power_laws_as_python_floats():
    exponent, constant = compute.fit_power_law([1, 2, 4, 8], [3, 12, 48, 192])
    assert (exponent, constant) == (pytest.approx(2.0), pytest.approx(3.0))
    assert type(exponent) is float and type(constant) is float
    assert compute.fit_power_law(np.array([10.0, 100.0]), torch.tensor([0.05, 0.005])) == \
        (pytest.approx(-1.0), pytest.approx(0.5))


def test_fit_power_law_on_noisy_data_is_the_least_squares_line_in_log_log():
    rng = random.Random(0)
    xs = [2.0**i for i in range(4, 12)]
    ys = [1e-9 * x**1.7 * math.exp(rng.gauss(0, 0.2)) for x in xs]
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
    assert compute.fit_power_law(xs, ys) == (pytest.approx(slope, rel=1e-9), pytest.approx(math.exp(intercept)))


@pytest.mark.parametrize("xs, ys, message", [
    ([1.0], [2.0], "at least 2"),
    ([1.0, 2.0], [1.0], "same length, got 2 and 1"),
    ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], r"ys\[1\] = -2.0"),
    ([0, 1.0], [1.0, 2.0], r"xs\[0\] = 0"),
    ([1.0, 2.0], [1.0, float("nan")], r"ys\[1\] = nan"),
    ([1.0, "a"], [1.0, 2.0], r"xs\[1\] = 'a'"),
    ([3.0, 3.0], [1.0, 2.0], "two different x"),
])
def test_fit_power_law_refuses_what_has_no_log_log_line(xs, ys, message):
    with pytest.raises(ValueError, match=message):
        compute.fit_power_law(xs, ys)


# ---- the exercises pass the answers ----


def test_every_check_passes_the_answer(capsys):
    checks.check_matmul_flops(compute.matmul_flops)
    checks.check_forward_flops(compute.forward_flops)
    checks.check_forward_flops_hidden(compute.forward_flops)
    checks.check_fit_power_law(compute.fit_power_law)
    checks.check_fit_power_law_hidden(compute.fit_power_law)
    assert capsys.readouterr().out.count("✅") == 5


@pytest.mark.parametrize("seq_len", [4, 9])
def test_every_named_mistake_changes_the_tiny_configs_count(seq_len):
    """Otherwise the visible check could not tell that mistake from the right answer."""
    expected = compute.forward_flops(compute.TINY, seq_len)
    for key, wrong in compute.FORWARD_FLOPS.wrong.items():
        assert wrong(compute.TINY, seq_len) != expected, key


def failure(check, fn) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(fn)
    return caught.value


def test_unimplemented_exercises_fail_with_a_plain_message():
    def forward_flops(config, seq_len):
        raise NotImplementedError
    assert failure(checks.check_forward_flops, forward_flops).key == "not_implemented"


# ---- the exercises catch the usual mistakes ----


def learner_matmul_flops(m, k, n, *, count="2mkn", validate=True):
    if validate and not all(isinstance(s, int) and s >= 1 for s in (m, k, n)):
        raise ValueError("sizes must be whole numbers >= 1")
    return {"2mkn": 2 * m * k * n, "mkn": m * k * n, "exact adds": (2 * k - 1) * m * n,
            "float": 2.0 * m * k * n}[count]


@pytest.mark.parametrize("bug, key", [
    ({"count": "mkn"}, "no_factor_2"),
    ({"count": "exact adds"}, "exact_additions"),
    ({"count": "float"}, "not_whole"),
    ({"validate": False}, "no_refusal"),
])
def test_check_matmul_flops_names_the_mistake(bug, key):
    assert failure(checks.check_matmul_flops, functools.partial(learner_matmul_flops, **bug)).key == key


def learner_forward_flops(config, seq_len, *, factor=2, kv_heads="n_kv_heads", head_times=1, mlp_matrices=3,
                          attention_terms=2, score_heads="n_heads", attended=lambda s: s, layers="n_layers",
                          validate=True):
    """A learner's count written term by term, independently of the answer; each keyword is a bug."""
    if validate and seq_len < 1:
        raise ValueError("seq_len must be >= 1")
    d, hd = config.dim, config.head_dim
    per_layer = (
        factor * d * config.n_heads * hd
        + 2 * factor * d * getattr(config, kv_heads) * hd
        + attention_terms * factor * getattr(config, score_heads) * hd * attended(seq_len)
        + factor * config.n_heads * hd * d
        + mlp_matrices * factor * d * config.hidden_dim
    )
    n_layers = config.n_layers if layers == "n_layers" else 1
    head = factor * d * config.vocab_size
    return n_layers * per_layer + (config.n_layers if head_times == "every layer" else head_times) * head


@pytest.mark.parametrize("bug, keys", [
    ({"factor": 1}, "no_factor_2"),
    ({"kv_heads": "n_heads"}, "kv_heads"),
    ({"head_times": 0}, "no_output_head"),
    ({"head_times": "every layer"}, "head_in_every_layer"),
    ({"mlp_matrices": 2}, "two_matrix_mlp"),
    ({"attention_terms": 1}, "one_attention_term"),
    ({"attention_terms": 0}, "no_attention"),
    ({"score_heads": "n_kv_heads"}, "scores_per_kv_head"),
    # On the tiny config at seq_len 4 both give the same count, so both are named (the first under its key).
    ({"attended": lambda s: 1}, {"attention_not_growing", "no_output_projection"}),
    ({"attended": lambda s: s - 1}, "seq_len_minus_1"),
    ({"layers": 1}, "one_layer"),
    ({"validate": False}, "no_refusal"),
])
def test_check_forward_flops_names_the_term_that_is_off(bug, keys):
    buggy = functools.partial(learner_forward_flops, **bug)
    assert failure(checks.check_forward_flops, buggy).key in ({keys} if isinstance(keys, str) else keys)
    failure(checks.check_forward_flops_hidden, buggy)


def test_a_mlp_of_dim_x_dim_matrices_is_named():
    def square_mlp(config, seq_len):
        return learner_forward_flops(dataclasses.replace(config, hidden_dim=config.dim), seq_len)
    assert failure(checks.check_forward_flops, square_mlp).key == "square_mlp"


def test_the_learner_model_without_bugs_passes_both_checks():
    checks.check_forward_flops(learner_forward_flops)
    checks.check_forward_flops_hidden(learner_forward_flops)


def test_check_forward_flops_recognises_a_whole_sequence_count_and_shows_the_parts():
    def whole_sequence(config, seq_len):
        return sum(compute.forward_flops(config, position) for position in range(1, seq_len + 1))
    caught = failure(checks.check_forward_flops, whole_sequence)
    assert caught.key == "whole_sequence"
    for part, flops in compute.forward_flops_by_part(compute.TINY, 4).items():
        assert f"{part}: {flops:,}" in str(caught)


def test_hidden_forward_check_catches_a_count_that_only_fits_the_tiny_config():
    def hard_coded(config, seq_len):
        if seq_len < 1:
            raise ValueError("seq_len must be >= 1")
        return {4: 1428, 1: 1284, 9: 1668}[seq_len]
    checks.check_forward_flops(hard_coded)
    caught = failure(checks.check_forward_flops_hidden, hard_coded)
    assert caught.key == "values" and "SmolLM2-135M at seq_len=1" in str(caught)


def learner_fit(xs, ys, *, bug=None):
    if len(xs) != len(ys) or len(xs) < 2 or min(*xs, *ys) <= 0:
        raise ValueError("need 2 or more positive points, as many xs as ys")
    log = np.log10 if bug == "log10 with exp" else np.log
    if bug == "swapped axes":
        slope, intercept = np.polyfit(log(ys), log(xs), 1)
    elif bug == "end points":
        slope = (log(ys[-1]) - log(ys[0])) / (log(xs[-1]) - log(xs[0]))
        intercept = log(ys[0]) - slope * log(xs[0])
    else:
        slope, intercept = np.polyfit(log(xs), log(ys), 1)
    constant = {"intercept": intercept, "10 ** intercept": 10**intercept}.get(bug, math.exp(intercept))
    result = {"swapped order": (float(constant), float(slope)), "polyfit array": np.array([slope, constant]),
              "tensors": (torch.tensor(slope), torch.tensor(constant)),
              "a little off": (float(slope) + 0.01, float(constant)),
              "negative constant": (float(slope), -float(constant))}
    return result.get(bug, (float(slope), float(constant)))


@pytest.mark.parametrize("bug, key, visible", [
    ("swapped order", "swapped_order", True),
    ("intercept", "intercept", True),
    ("log10 with exp", "log10_with_exp", True),
    ("10 ** intercept", "exp_with_power_of_10", True),
    ("swapped axes", "swapped_axes", False),
    ("end points", "end_points", False),
    ("polyfit array", "not_a_pair", True),
    ("tensors", "not_floats", True),
    ("a little off", "values", True),
    ("negative constant", "unusable_fit", True),
])
def test_check_fit_power_law_names_the_mistake(bug, key, visible):
    check = checks.check_fit_power_law if visible else checks.check_fit_power_law_hidden
    assert failure(check, functools.partial(learner_fit, bug=bug)).key == key


def test_the_check_and_the_plot_judge_a_fit_by_the_same_rule():
    """A wrong fit the plot still draws (usable) fails as plain values; one it refuses, as unusable."""
    lengths, times = [64.0, 128.0, 256.0], [1e-6, 4e-6, 1.6e-5]
    for bug, key, drawn in [("a little off", "values", True), ("negative constant", "unusable_fit", False)]:
        def fit_power_law(xs, ys, bug=bug):
            return learner_fit(xs, ys, bug=bug)
        explorer = SquareExplorer(lengths, {"naive": times}, "cpu", fit=fit_power_law)
        assert (explorer.fits["naive"] == pytest.approx(fit_power_law(lengths, times))) is drawn
        assert failure(checks.check_fit_power_law, fit_power_law).key == key


@pytest.mark.filterwarnings("ignore")  # numpy warns about log(0) and a fit through one point
def test_fit_checks_want_value_errors_for_points_without_logarithms():
    def no_validation(xs, ys):
        slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
        return float(slope), float(math.exp(intercept))
    with np.errstate(all="ignore"):
        assert failure(checks.check_fit_power_law, no_validation).key == "no_refusal"
    checks.check_fit_power_law(learner_fit)
    checks.check_fit_power_law_hidden(learner_fit)
