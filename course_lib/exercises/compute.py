"""Notebook B's exercises (why Transformers won): matmul_flops, forward_flops and fit_power_law, with
the counts their answers share (parameter_count, forward_flops_by_part) and what makes a power-law
fit usable, which the SquareExplorer asks before it draws a learner's line.

A FLOP here is one multiplication or one addition, so a multiply-add counts 2: the convention of
hardware peak figures (an H200's "67 TFLOP/s") and of scaling-law papers (about 2 FLOPs per
parameter per token).

When a count or a fit is off, the cases compute what the usual mistakes would have given (no factor
2, n_heads for the key/value projections, no output head, the constant left as log(constant), ...)
and name the one that matches, so the hint points at the term to fix.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import random
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from course_lib.exercises.engine import Exercise, Hint, Trial, matching
from course_lib.models.llama import LlamaConfig
from course_lib.validation import as_number, is_whole


def flop_count(t: Trial, *args, what: str) -> int:
    """The learner's function on args, which must return a whole number."""
    got = t.call(*args, what=what)
    if not is_whole(got):
        t.fail("not_whole", f"{what}: a FLOP count is a whole number", "an int", repr(got))
    return got


WHOLE_NUMBERS_HINT = "multiply whole numbers only (no / and no float()); config.head_dim is already an int"


# --------------------------------------------------------------------------------------------
# matmul_flops
# --------------------------------------------------------------------------------------------
def matmul_flops(m: int, k: int, n: int) -> int:
    """FLOPs of an (m, k) @ (k, n) matmul: each of the m·n outputs takes k multiply-adds, 2·m·k·n."""
    for name, size in (("m", m), ("k", k), ("n", n)):
        if not (is_whole(size) and size >= 1):
            raise ValueError(f"matrix sizes must be whole numbers >= 1, got {name}={size!r}")
    return 2 * m * k * n


def hand_countable_matmuls(t: Trial) -> None:
    for m, k, n in ((2, 3, 4), (64, 576, 1536), (5, 7, 1), (1, 1, 1)):  # (64, 576, 1536): from SmolLM2
        what = f"matmul_flops({m}, {k}, {n}), a ({m}, {k}) @ ({k}, {n}) matmul"
        got, expected = flop_count(t, m, k, n, what=what), matmul_flops(m, k, n)
        if got != expected:
            t.fail(matching(got, expected, t.wrong_results(m, k, n), operator.eq) or ["values"], what, expected, got)


def refuses_what_is_no_size(t: Trial) -> None:
    for sizes in ((0, 3, 4), (2, -1, 4), (2, 3, 2.5)):
        t.refuses(f"matmul_flops{sizes}", *sizes)


MATMUL_FLOPS = Exercise(
    name="matmul_flops",
    answer=matmul_flops,
    probe=lambda f: f(2, 3, 4),
    mistakes={
        "not_whole": WHOLE_NUMBERS_HINT,
        "no_factor_2": "each of the m·k·n multiply-adds is 2 FLOPs, a multiplication and an addition: 2 * m * k * n",
        "exact_additions": "that counts k - 1 additions per output; the convention (hardware peak figures use it "
                           "too) is k multiply-adds of 2 FLOPs each: 2 * m * k * n",
        "no_k": "each of the m·n outputs is a sum of k products: 2 * m * k * n",
        "values": "m·n outputs, each k multiplications and k additions: 2 * m * k * n",
        "no_refusal": "check that m, k and n are whole numbers >= 1 and raise ValueError with a message otherwise",
    },
    wrong={
        "no_factor_2": lambda m, k, n: m * k * n,
        "exact_additions": lambda m, k, n: (2 * k - 1) * m * n,
        "no_k": lambda m, k, n: 2 * m * n,
    },
    visible=(hand_countable_matmuls, refuses_what_is_no_size),
    passed=lambda t: "✅ matmul_flops passes the tests.",
    hints=(
        Hint("Count the outputs first: the product is an (m, n) matrix, so it has `m * n` numbers. Each one is "
             "a sum of `k` products, which takes `k` multiplications and `k` additions (by the usual convention, "
             "the one hardware peak figures use, not `k - 1`).",
             fits=("no_k", "exact_additions", "values")),
        Hint("A multiplication plus an addition is 2 FLOPs, so each output costs `2 * k`, and the whole product "
             "2 FLOPs for each of the `m * k * n` multiply-adds. Multiply whole numbers only, so the count "
             "stays an `int`.",
             fits=("no_factor_2", "not_whole")),
        Hint("Before counting, refuse what is no matrix size: for each of `m`, `k` and `n`, "
             "`if not isinstance(size, int) or size < 1: raise ValueError(\"...\")`, with a message naming "
             "the bad size.",
             fits=("no_refusal",)),
    ),
)


# --------------------------------------------------------------------------------------------
# forward_flops, and the parameters of a Llama
# --------------------------------------------------------------------------------------------
def forward_flops_by_part(config: LlamaConfig, seq_len: int) -> dict[str, int]:
    """The matmul FLOPs of one token at position seq_len, whole model, by part of the model.

    The token attends to seq_len tokens, itself included, so only the two attention terms grow with
    seq_len. Embedding lookup, norms, softmax, RoPE and activations are not counted: they cost a few
    FLOPs per number, against a few per weight for the matmuls, a small fraction.
    """
    if not (is_whole(seq_len) and seq_len >= 1):
        raise ValueError(f"seq_len must be a whole number >= 1 (the token counts itself), got {seq_len!r}")
    layers, dim = config.n_layers, config.dim
    query_width = config.n_heads * config.head_dim
    # Grouped-query attention: fewer key/value heads than query heads, so these projections are smaller.
    key_value_width = config.n_kv_heads * config.head_dim
    return {
        "query projection": layers * matmul_flops(1, dim, query_width),
        "key and value projections": layers * 2 * matmul_flops(1, dim, key_value_width),
        # The query against seq_len keys, then the weighted sum of seq_len values, in every head.
        "attention scores": layers * config.n_heads * matmul_flops(1, config.head_dim, seq_len),
        "weighted sum of values": layers * config.n_heads * matmul_flops(1, seq_len, config.head_dim),
        "output projection": layers * matmul_flops(1, query_width, dim),
        "MLP (gate, up, down)": layers * 3 * matmul_flops(1, dim, config.hidden_dim),
        "output head": matmul_flops(1, dim, config.vocab_size),
    }


def forward_flops(config: LlamaConfig, seq_len: int) -> int:
    """Matmul FLOPs to process ONE token at position seq_len: the sum of forward_flops_by_part."""
    return sum(forward_flops_by_part(config, seq_len).values())


def parameter_count(config: LlamaConfig) -> dict[str, int]:
    """Parameters of a Llama-style model with a tied output head (counted once, in the embedding).

    Keys: "embedding", "per_layer" (two norms, attention, MLP), "layers" (all of them),
    "final_norm" and "total", their sum.
    """
    dim = config.dim
    query_width = config.n_heads * config.head_dim
    key_value_width = config.n_kv_heads * config.head_dim
    per_layer = (
        2 * dim  # the norms before attention and before the MLP
        + dim * (query_width + 2 * key_value_width)
        + query_width * dim
        + 3 * dim * config.hidden_dim
    )
    counts = {
        "embedding": config.vocab_size * dim,
        "per_layer": per_layer,
        "layers": config.n_layers * per_layer,
        "final_norm": dim,
    }
    counts["total"] = counts["embedding"] + counts["layers"] + counts["final_norm"]
    return counts


# Small enough to count by hand, and every mistake below changes its count.
TINY = LlamaConfig(vocab_size=11, dim=6, n_layers=2, n_heads=3, n_kv_heads=1, hidden_dim=10)
# Meta's Llama 3 8B: grouped-query attention with 4 query heads per key/value head.
LLAMA3_8B = LlamaConfig(vocab_size=128256, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, hidden_dim=14336)
# GPT-2 small's sizes in a Llama: one key/value head per query head.
GPT2_SIZED = LlamaConfig(vocab_size=50257, dim=768, n_layers=12, n_heads=12, n_kv_heads=12, hidden_dim=3072)


ATTENTION = ("attention scores", "weighted sum of values")
IN_EVERY_LAYER = ("query projection", "key and value projections", *ATTENTION, "output projection",
                  "MLP (gate, up, down)")


def counting(times: Callable[[LlamaConfig], dict[str, int | Fraction]]) -> Callable[[LlamaConfig, int], int]:
    """A wrong count that takes each part in times(config) that many times instead of once (0: left out)."""
    def count(config: LlamaConfig, seq_len: int) -> int:
        chosen = times(config)
        parts = forward_flops_by_part(config, seq_len)
        # Exact: each weight divides its part (a third of the MLP's three matrices, one of n_layers layers).
        return int(sum(flops * Fraction(chosen.get(part, 1)) for part, flops in parts.items()))
    return count


def compare_forward(t: Trial, config: LlamaConfig, seq_len: int, name: str) -> None:
    what = f"forward_flops for {name} at seq_len={seq_len}"
    got, expected = flop_count(t, config, seq_len, what=what), forward_flops(config, seq_len)
    if got != expected:
        indent = "\n             "  # under "expected: "
        parts = indent.join(f"{part}: {flops:,}" for part, flops in forward_flops_by_part(config, seq_len).items())
        described = (f"dim={config.dim}, n_layers={config.n_layers}, n_heads={config.n_heads}, "
                     f"n_kv_heads={config.n_kv_heads}, hidden_dim={config.hidden_dim}, vocab_size={config.vocab_size}")
        t.fail(matching(got, expected, t.wrong_results(config, seq_len), operator.eq) or ["values"], f"{what} ({described})",
                   f"{expected:,}, made of{indent}{parts}", f"{got:,}")


def a_tiny_config(t: Trial) -> None:
    for seq_len in (4, 1, 9):
        compare_forward(t, TINY, seq_len, "a tiny config")
    t.refuses("seq_len=0", TINY, 0)


def real_configs(t: Trial) -> None:
    for config, name, lengths in ((LlamaConfig(), "SmolLM2-135M", (1, 100, 2048, 8192)),
                                  (LLAMA3_8B, "Llama 3 8B", (1, 4096, 8192)),
                                  (GPT2_SIZED, "a GPT-2-sized Llama without grouped-query attention", (1, 1024))):
        for seq_len in lengths:
            compare_forward(t, config, seq_len, name)
    for seq_len in (0, -5):
        t.refuses(f"seq_len={seq_len}", LlamaConfig(), seq_len, hint="raise ValueError when seq_len < 1")


FORWARD_FLOPS = Exercise(
    name="forward_flops",
    answer=forward_flops,
    probe=lambda f: f(LlamaConfig(vocab_size=10, dim=4, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=8,
                                  max_seq_len=8), 1),
    mistakes={
        "not_whole": WHOLE_NUMBERS_HINT,
        "no_factor_2": "forgot the factor 2: a multiply-add is 2 FLOPs, so an (in, out) weight costs 2·in·out "
                       "per token",
        "kv_heads": "the key and value projections have n_kv_heads heads, not n_heads (grouped-query attention): "
                    "2·dim·(n_kv_heads·head_dim) each",
        "no_output_head": "forgot the output head: 2·dim·vocab_size, once, after the last layer",
        "head_in_every_layer": "the output head runs once after the last layer, not in every layer",
        "two_matrix_mlp": "the SwiGLU MLP has three matrices, gate, up and down: 3 · 2·dim·hidden_dim",
        "square_mlp": "the MLP's matrices are dim x hidden_dim, not dim x dim",
        "one_attention_term": "forgot one attention term: the scores q·k (2·n_heads·head_dim·seq_len) and the "
                              "weighted sum of values (as much again) both count",
        "no_attention": "forgot attention itself: the scores and the weighted sum of values, "
                        "2·n_heads·head_dim·seq_len each",
        "scores_per_kv_head": "scores and the weighted sum are computed for every query head (n_heads); the "
                              "key/value heads are shared between query heads, not fewer scores",
        "no_output_projection": "forgot the output projection: 2·(n_heads·head_dim)·dim",
        "no_query_projection": "forgot the query projection: 2·dim·(n_heads·head_dim)",
        "one_layer": "counted one layer: every term except the head, times n_layers",
        "whole_sequence": "that is the whole sequence of seq_len tokens; count ONE token, the one at position seq_len",
        "attention_not_growing": "the attention cost should grow with seq_len: the new token's query meets "
                                 "seq_len keys and sums seq_len values",
        "seq_len_minus_1": "the token attends to seq_len tokens, itself included, not seq_len - 1",
        "values": "per layer: Q, K, V and output projections, attention scores and weighted sum, the MLP's "
                  "three matrices; then the output head once",
        "no_refusal": "a token attends at least to itself: raise ValueError when seq_len < 1",
    },
    wrong={
        "no_factor_2": lambda config, seq_len: forward_flops(config, seq_len) // 2,
        "kv_heads": lambda config, seq_len: forward_flops(dataclasses.replace(config, n_kv_heads=config.n_heads),
                                                          seq_len),
        "no_output_head": counting(lambda c: {"output head": 0}),
        "head_in_every_layer": counting(lambda c: {"output head": c.n_layers}),
        "two_matrix_mlp": counting(lambda c: {"MLP (gate, up, down)": Fraction(2, 3)}),
        "square_mlp": lambda config, seq_len: forward_flops(dataclasses.replace(config, hidden_dim=config.dim),
                                                            seq_len),
        "one_attention_term": counting(lambda c: {"attention scores": 0}),
        "no_attention": counting(lambda c: dict.fromkeys(ATTENTION, 0)),
        "scores_per_kv_head": counting(lambda c: dict.fromkeys(ATTENTION, Fraction(c.n_kv_heads, c.n_heads))),
        "no_output_projection": counting(lambda c: {"output projection": 0}),
        "no_query_projection": counting(lambda c: {"query projection": 0}),
        "one_layer": counting(lambda c: dict.fromkeys(IN_EVERY_LAYER, Fraction(1, c.n_layers))),
        "whole_sequence": lambda config, seq_len: sum(forward_flops(config, position)
                                                      for position in range(1, seq_len + 1)),
        # Both equal the answer at seq_len = 1 (and seq_len - 1 = 0 is no length): they name nothing there.
        "attention_not_growing": lambda config, seq_len: forward_flops(config, 1),
        "seq_len_minus_1": lambda config, seq_len: forward_flops(config, seq_len - 1),
    },
    visible=(a_tiny_config,),
    hidden=(real_configs,),
    hints=(
        Hint("Count ONE token: it is a matrix with one row, so each weight matrix of the table costs "
             "`matmul_flops(1, in_size, out_size)`. Add up one layer's rows, multiply by `n_layers`, and add "
             "the output head, `matmul_flops(1, dim, vocab_size)`, once at the end; `config.head_dim` is "
             "already a whole number, so no `/` is needed.",
             fits=("not_whole", "whole_sequence", "one_layer", "no_output_head", "head_in_every_layer",
                   "no_factor_2")),
        Hint("The projections: query `matmul_flops(1, dim, n_heads * head_dim)`; key and value each "
             "`matmul_flops(1, dim, n_kv_heads * head_dim)` (fewer heads: grouped-query attention); output "
             "`matmul_flops(1, n_heads * head_dim, dim)`. The SwiGLU feed-forward is three matrices of "
             "`dim` by `hidden_dim`.",
             fits=("kv_heads", "no_query_projection", "no_output_projection", "two_matrix_mlp", "square_mlp",
                   "values")),
        Hint("Attention itself has two terms, the only ones that grow with `seq_len`: the scores, "
             "`n_heads * matmul_flops(1, head_dim, seq_len)` (every query head against `seq_len` keys, the "
             "token itself included), and the weighted sum of `seq_len` values, as much again. A token attends "
             "at least to itself, so raise `ValueError` when `seq_len < 1`.",
             fits=("one_attention_term", "no_attention", "scores_per_kv_head", "attention_not_growing",
                   "seq_len_minus_1", "no_refusal")),
    ),
)


# --------------------------------------------------------------------------------------------
# fit_power_law, and what makes a fit usable
# --------------------------------------------------------------------------------------------
def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(exponent, constant) of y = constant · x**exponent, by least squares on log x and log y.

    On a log-log plot the power law is the line log y = exponent · log x + log constant, so the
    exponent is that line's slope: 1 for a cost linear in x, 2 for quadratic.
    """
    xs, ys = list(xs), list(ys)
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        raise ValueError(f"a line through the points needs at least 2 of them, got {len(xs)}")
    log_x, log_y = _logarithms("xs", xs), _logarithms("ys", ys)
    mean_x, mean_y = sum(log_x) / len(log_x), sum(log_y) / len(log_y)
    spread_x = sum((x - mean_x) ** 2 for x in log_x)
    if spread_x == 0:
        raise ValueError(f"every x is {xs[0]!r}: a slope needs at least two different x values")
    exponent = sum((x - mean_x) * (y - mean_y) for x, y in zip(log_x, log_y)) / spread_x
    return exponent, math.exp(mean_y - exponent * mean_x)


def _logarithms(name: str, values: list) -> list[float]:
    """The natural log of each value, or a ValueError naming the first value that has none."""
    logs = []
    for i, value in enumerate(values):
        try:
            number = float(value)  # plain numbers, numpy scalars and one-element tensors alike
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not 0 < number < math.inf:
            raise ValueError(f"{name}[{i}] = {value!r}: a power law is fitted on logarithms, so every value "
                             "must be a positive finite number")
        logs.append(math.log(number))
    return logs


# A line that misses the points by 10× more (on average) than the least-squares line is not a fit of
# them: typically (constant, exponent) returned in the wrong order.
MAX_EXTRA_MISS_DECADES = 1.0


def _miss_decades(xs, ys, exponent: float, constant: float) -> float:
    """How far, in powers of 10 (root mean square), the line y = constant·x^exponent is from the points."""
    # In logs, so a wild exponent or constant cannot overflow.
    predicted = math.log10(constant) + exponent * np.log10(xs)
    return float(np.sqrt(np.mean((np.log10(ys) - predicted) ** 2)))


def power_law_problem(result, xs, ys) -> str:
    """Why `result` is not a usable (exponent, constant) fit of the points, or "" if it is one.

    The SquareExplorer draws a learner's line only for a usable fit; the cases say why a result that
    matches none of the named mistakes is off. The answer's result on the points is always usable.
    """
    try:
        exponent, constant = result
    except (TypeError, ValueError):
        return f"returned {repr(result):.80}, not a pair (exponent, constant)"
    values = {}
    for what, value in (("exponent", exponent), ("constant", constant)):
        values[what] = as_number(value)
        if values[what] is None:
            return f"returned a {type(value).__name__} as the {what}, not a number"
        if not math.isfinite(values[what]):
            return f"returned {values[what]} as the {what}"
    if values["constant"] <= 0:
        return (f"returned the constant {values['constant']:.3g}: positive costs need a constant > 0 "
                "(if you fitted a line in log space, the constant is exp of its intercept)")
    miss = _miss_decades(xs, ys, values["exponent"], values["constant"])
    if miss > _miss_decades(xs, ys, *fit_power_law(xs, ys)) + MAX_EXTRA_MISS_DECADES:
        return (f"returned exponent {values['exponent']:.3g} and constant {values['constant']:.3g}, a line that "
                f"misses the points by a factor of about {10 ** miss:.3g}: is the order (exponent, constant)?")
    return ""


def same_fit(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12) for x, y in zip(a, b))


def log_line(xs, ys) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through the points (log x, log y)."""
    exponent, constant = fit_power_law(xs, ys)
    return exponent, math.log(constant)


def through_the_end_points(xs, ys) -> tuple[float, float]:
    log_x, log_y = [math.log(x) for x in xs], [math.log(y) for y in ys]
    slope = (log_y[-1] - log_y[0]) / (log_x[-1] - log_x[0])
    return slope, math.exp(log_y[0] - slope * log_x[0])


def compare_fit(t: Trial, xs, ys, what: str) -> None:
    got = t.call(xs, ys, what=what)
    if not (isinstance(got, tuple) and len(got) == 2):
        t.fail("not_a_pair", f"{what}: the result should be a pair", "(exponent, constant)", repr(got)[:200])
    if not all(isinstance(value, float) for value in got):
        t.fail("not_floats", f"{what}: both numbers should be floats", "(float, float)",
               f"({type(got[0]).__name__}, {type(got[1]).__name__})")
    expected = fit_power_law(xs, ys)
    if same_fit(got, expected):
        return
    keys = matching(got, expected, t.wrong_results(xs, ys), same_fit)
    problem = "" if keys else power_law_problem(got, xs, ys)  # what the plot below says of a fit it will not draw
    if problem:
        what, keys = f"{what}: your function {problem}", ["unusable_fit"]
    t.fail(keys or ["values"], what, "({:.6g}, {:.6g})".format(*expected), "({:.6g}, {:.6g})".format(*got))


def noisy_power_law(seed: int, exponent: float, constant: float, xs: list[float]) -> list[float]:
    """constant · x**exponent, each value off by a random factor of about 10%, as measured times are."""
    rng = random.Random(seed)
    return [constant * x**exponent * math.exp(rng.gauss(0, 0.1)) for x in xs]


def exact_power_laws(t: Trial) -> None:
    compare_fit(t, [1.0, 2.0, 4.0, 8.0, 16.0], [3.0, 12.0, 48.0, 192.0, 768.0], "y = 3·x² at x = 1, 2, 4, 8, 16")
    compare_fit(t, [10.0, 100.0, 1000.0], [0.05, 0.005, 0.0005], "y = 0.5 / x at x = 10, 100, 1000")
    compare_fit(t, [2.0, 3.0], [5.0, 7.0], "two points")


def refuses_points_without_a_line(t: Trial) -> None:
    t.refuses("a single point", [4.0], [2.0], hint="a line needs at least 2 points: raise ValueError")
    t.refuses("xs and ys of different lengths", [1.0, 2.0, 3.0], [1.0, 2.0], hint="compare len(xs) and len(ys)")
    t.refuses("x = 0", [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], hint="log(0) is undefined: raise ValueError naming the value")


def noisy_measurements(t: Trial) -> None:
    sizes = [64.0 * 2**i for i in range(8)]
    compare_fit(t, sizes, noisy_power_law(1, 2.0, 3e-9, sizes), "noisy times growing as N² (seed 1)")
    compare_fit(t, sizes, noisy_power_law(2, 1.0, 4e-7, sizes), "noisy times growing as N (seed 2)")
    compare_fit(t, sizes, noisy_power_law(3, -0.5, 20.0, sizes), "noisy values falling as N^-0.5 (seed 3)")
    compare_fit(t, (1e3, 1e4, 1e5, 1e6), (2e-6, 2e-4, 2e-2, 2.0), "y = 2e-12·x² given as tuples")


def refuses_more_points_without_a_line(t: Trial) -> None:
    negative = "log of a negative number is undefined: ValueError"
    t.refuses("no points at all", [], [], hint="raise ValueError for fewer than 2 points")
    t.refuses("a negative y", [1.0, 2.0, 3.0], [1.0, -2.0, 3.0], hint=negative)
    t.refuses("y = 0", [1.0, 2.0, 3.0], [1.0, 0.0, 3.0], hint="log(0) is undefined: ValueError")
    t.refuses("a negative x", [-1.0, 2.0], [1.0, 2.0], hint=negative)


FIT_POWER_LAW = Exercise(
    name="fit_power_law",
    answer=fit_power_law,
    probe=lambda f: f([1.0, 2.0], [1.0, 4.0]),
    mistakes={
        "not_a_pair": "np.polyfit gives [slope, intercept]: return float(slope), float(math.exp(intercept))",
        "not_floats": "convert with float(...)",
        "swapped_order": "the order is (exponent, constant)",
        "intercept": "that constant is the intercept of the log-log line, log(constant): return math.exp(intercept)",
        "log10_with_exp": "with np.log10 the intercept is log10(constant): the constant is 10 ** intercept",
        "exp_with_power_of_10": "with natural logs (np.log) the constant is math.exp(intercept), not 10 ** intercept",
        "swapped_axes": "x and y are swapped: fit log y as a function of log x, np.polyfit(np.log(xs), np.log(ys), 1)",
        "end_points": "that line goes through the first and last points only: fit all of them by least squares",
        "unusable_fit": "fit a line to (log x, log y): the slope is the exponent, exp(intercept) the constant; "
                        "the plot below draws your line only for a fit of the points",
        "values": "fit a line to (log x, log y): the slope is the exponent, exp(intercept) the constant",
        "no_refusal": "raise ValueError with a message for points that have no log-log line",
    },
    wrong={
        "swapped_order": lambda xs, ys: fit_power_law(xs, ys)[::-1],
        "intercept": log_line,
        # The intercept of a log10 line is log(constant) / log(10); of a natural-log one, log(constant).
        "log10_with_exp": lambda xs, ys: (fit_power_law(xs, ys)[0], math.exp(log_line(xs, ys)[1] / math.log(10))),
        "exp_with_power_of_10": lambda xs, ys: (fit_power_law(xs, ys)[0],
                                                math.exp(log_line(xs, ys)[1] * math.log(10))),
        # Regressing log x on log y: the other least-squares line through the same points.
        "swapped_axes": lambda xs, ys: fit_power_law(ys, xs),
        "end_points": through_the_end_points,
    },
    visible=(exact_power_laws, refuses_points_without_a_line),
    hidden=(noisy_measurements, refuses_more_points_without_a_line),
    hints=(
        Hint("Take logarithms: with `lx = [math.log(x) for x in xs]` and `ly` the same for `ys`, the points lie "
             "near the straight line `ly = exponent * lx + log(constant)`. So fit one straight line through "
             "ALL the points `(lx, ly)`, `ly` as a function of `lx`; its slope is the exponent.",
             fits=("swapped_axes", "unusable_fit", "values")),
        Hint("The least-squares slope is `sum((x - mx) * (y - my)) / sum((x - mx) ** 2)` over the log points, "
             "where `mx` and `my` are the means of `lx` and `ly`; the line's intercept is `my - slope * mx`. "
             "(`torch.linalg.lstsq` gives the same line.)",
             fits=("end_points",)),
        Hint("The intercept is `log(constant)`, so the constant is `math.exp(intercept)` (with `math.log10` "
             "logs it would be `10 ** intercept`: keep the two consistent). Return "
             "`(float(exponent), float(constant))`, in that order, and first `raise ValueError` for fewer than "
             "2 points, lists of different lengths, or any value that is not positive.",
             fits=("intercept", "log10_with_exp", "exp_with_power_of_10", "swapped_order", "not_a_pair",
                   "not_floats", "no_refusal")),
    ),
)

EXERCISES = (MATMUL_FLOPS, FORWARD_FLOPS, FIT_POWER_LAW)
