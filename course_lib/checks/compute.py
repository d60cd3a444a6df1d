"""Checks for notebook B's exercises: the FLOPs of a matmul and of one token through a Llama, and
fitting a power law to measurements.

When a count is off, the checks compute what the usual mistakes would have given (no factor 2,
n_heads for the key/value projections, no output head, a two-matrix MLP, ...) and name the one
that matches, so the hint points at the term to fix.
"""
from __future__ import annotations

import dataclasses
import math
import random

from course_lib.checks.common import fail, refuses, run
from course_lib.models.llama import LlamaConfig
from course_lib.reference.compute import fit_power_law, forward_flops, forward_flops_by_part, matmul_flops
from course_lib.validation import is_whole


def _flop_count(fn, what: str, *args) -> int:
    got = run(fn, what, *args)
    if not is_whole(got):
        fail(f"{what}: a FLOP count is a whole number", "an int", repr(got),
             "multiply whole numbers only (no / and no float()); config.head_dim is already an int")
    return got


def _named_mistakes(got, expected, mistakes: list[tuple[object, str]], same=lambda a, b: a == b) -> str:
    """The hints of the mistakes whose result is `got` (two can coincide; both are named)."""
    return "\n   or: ".join(hint for result, hint in mistakes if same(got, result) and not same(expected, result))


# ---- matmul FLOPs -------------------------------------------------------------------------


def check_matmul_flops(fn) -> None:
    """Hand-countable sizes, a non-square case from SmolLM2, and refusing sizes that are no sizes."""
    for m, k, n in ((2, 3, 4), (64, 576, 1536), (5, 7, 1), (1, 1, 1)):
        what = f"matmul_flops({m}, {k}, {n}), a ({m}, {k}) @ ({k}, {n}) matmul"
        got, expected = _flop_count(fn, what, m, k, n), matmul_flops(m, k, n)
        if got != expected:
            mistakes = [
                (m * k * n, "each of the m·k·n multiply-adds is 2 FLOPs, a multiplication and an addition: "
                            "2 * m * k * n"),
                ((2 * k - 1) * m * n, "that counts k - 1 additions per output; the convention (hardware peak "
                                      "figures use it too) is k multiply-adds of 2 FLOPs each: 2 * m * k * n"),
                (2 * m * n, "each of the m·n outputs is a sum of k products: 2 * m * k * n"),
            ]
            fail(what, expected, got, _named_mistakes(got, expected, mistakes) or
                 "m·n outputs, each k multiplications and k additions: 2 * m * k * n")
    hint = "check that m, k and n are whole numbers >= 1 and raise ValueError with a message otherwise"
    for sizes in ((0, 3, 4), (2, -1, 4), (2, 3, 2.5)):
        refuses(fn, f"matmul_flops{sizes}", hint, *sizes)
    print("✅ matmul_flops passes the tests.")


# ---- forward FLOPs ------------------------------------------------------------------------

# Small enough to count by hand, and every mistake below gives a different number on it.
TINY = LlamaConfig(vocab_size=11, dim=6, n_layers=2, n_heads=3, n_kv_heads=1, hidden_dim=10)
# Meta's Llama 3 8B: grouped-query attention with 4 query heads per key/value head.
LLAMA3_8B = LlamaConfig(vocab_size=128256, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, hidden_dim=14336)
# GPT-2 small's sizes in a Llama: one key/value head per query head.
GPT2_SIZED = LlamaConfig(vocab_size=50257, dim=768, n_layers=12, n_heads=12, n_kv_heads=12, hidden_dim=3072)


def _describe(config: LlamaConfig) -> str:
    return (f"dim={config.dim}, n_layers={config.n_layers}, n_heads={config.n_heads}, "
            f"n_kv_heads={config.n_kv_heads}, hidden_dim={config.hidden_dim}, vocab_size={config.vocab_size}")


def _forward_mistakes(config: LlamaConfig, seq_len: int) -> list[tuple[int, str]]:
    """What the usual mistakes give for this config and seq_len, each with the hint that names it."""
    parts = forward_flops_by_part(config, seq_len)
    total = sum(parts.values())
    head, attention = parts["output head"], parts["attention scores"] + parts["weighted sum of values"]
    mistakes = [
        (total // 2, "forgot the factor 2: a multiply-add is 2 FLOPs, so an (in, out) weight costs 2·in·out "
                     "per token"),
        (forward_flops(dataclasses.replace(config, n_kv_heads=config.n_heads), seq_len),
         "the key and value projections have n_kv_heads heads, not n_heads (grouped-query attention): "
         "2·dim·(n_kv_heads·head_dim) each"),
        (total - head, "forgot the output head: 2·dim·vocab_size, once, after the last layer"),
        (total + (config.n_layers - 1) * head, "the output head runs once after the last layer, not in every layer"),
        (total - parts["MLP (gate, up, down)"] // 3,
         "the SwiGLU MLP has three matrices, gate, up and down: 3 · 2·dim·hidden_dim"),
        (forward_flops(dataclasses.replace(config, hidden_dim=config.dim), seq_len),
         "the MLP's matrices are dim x hidden_dim, not dim x dim"),
        (total - parts["attention scores"], "forgot one attention term: the scores q·k "
                                            "(2·n_heads·head_dim·seq_len) and the weighted sum of values (as much "
                                            "again) both count"),
        (total - attention, "forgot attention itself: the scores and the weighted sum of values, "
                            "2·n_heads·head_dim·seq_len each"),
        (total - attention + attention * config.n_kv_heads // config.n_heads,
         "scores and the weighted sum are computed for every query head (n_heads); the key/value heads are "
         "shared between query heads, not fewer scores"),
        (total - parts["output projection"], "forgot the output projection: 2·(n_heads·head_dim)·dim"),
        (total - parts["query projection"], "forgot the query projection: 2·dim·(n_heads·head_dim)"),
        ((total - head) // config.n_layers + head, "counted one layer: every term except the head, times n_layers"),
        (sum(forward_flops(config, position) for position in range(1, seq_len + 1)),
         "that is the whole sequence of seq_len tokens; count ONE token, the one at position seq_len"),
    ]
    if seq_len > 1:
        mistakes += [
            (forward_flops(config, 1), "the attention cost should grow with seq_len: the new token's query meets "
                                       "seq_len keys and sums seq_len values"),
            (forward_flops(config, seq_len - 1), "the token attends to seq_len tokens, itself included, "
                                                 "not seq_len - 1"),
        ]
    return mistakes


def _compare_forward(fn, config: LlamaConfig, seq_len: int, name: str) -> None:
    what = f"forward_flops for {name} at seq_len={seq_len}"
    got, expected = _flop_count(fn, what, config, seq_len), forward_flops(config, seq_len)
    if got != expected:
        indent = "\n             "  # under "expected: "
        parts = indent.join(f"{part}: {flops:,}" for part, flops in forward_flops_by_part(config, seq_len).items())
        hint = _named_mistakes(got, expected, _forward_mistakes(config, seq_len))
        fail(f"{what} ({_describe(config)})", f"{expected:,}, made of{indent}{parts}", f"{got:,}",
             hint or "per layer: Q, K, V and output projections, attention scores and weighted sum, the MLP's "
                     "three matrices; then the output head once")


def check_forward_flops(fn) -> None:
    """A tiny config that can be counted by hand, at a few seq_len, and refusing seq_len < 1."""
    for seq_len in (4, 1, 9):
        _compare_forward(fn, TINY, seq_len, "a tiny config")
    refuses(fn, "seq_len=0", "a token attends at least to itself: raise ValueError when seq_len < 1", TINY, 0)
    print("✅ forward_flops passes the visible tests.")


def check_forward_flops_hidden(fn) -> None:
    """SmolLM2, Llama 3 8B and a model without grouped-query attention, short and long contexts."""
    for config, name, lengths in ((LlamaConfig(), "SmolLM2-135M", (1, 100, 2048, 8192)),
                                  (LLAMA3_8B, "Llama 3 8B", (1, 4096, 8192)),
                                  (GPT2_SIZED, "a GPT-2-sized Llama without grouped-query attention", (1, 1024))):
        for seq_len in lengths:
            _compare_forward(fn, config, seq_len, name)
    for seq_len in (0, -5):
        refuses(fn, f"seq_len={seq_len}", "raise ValueError when seq_len < 1", LlamaConfig(), seq_len)
    print("✅ forward_flops passes the hidden tests too.")


# ---- fitting a power law ------------------------------------------------------------------


def _close(a: tuple[float, float], b: tuple[float, float], rel: float = 1e-6) -> bool:
    return all(math.isclose(x, y, rel_tol=rel, abs_tol=1e-12) for x, y in zip(a, b))


def _fit_mistakes(xs, ys, exponent: float, constant: float) -> list[tuple[tuple[float, float], str]]:
    log_x, log_y = [math.log(x) for x in xs], [math.log(y) for y in ys]
    intercept = math.log(constant)
    mistakes = [
        ((constant, exponent), "the order is (exponent, constant)"),
        ((exponent, intercept), "that constant is the intercept of the log-log line, log(constant): "
                                "return math.exp(intercept)"),
        ((exponent, math.exp(intercept / math.log(10))),
         "with np.log10 the intercept is log10(constant): the constant is 10 ** intercept"),
        ((exponent, math.exp(intercept * math.log(10))),
         "with natural logs (np.log) the constant is math.exp(intercept), not 10 ** intercept"),
    ]
    if len(set(ys)) > 1:
        # Regressing log x on log y: the other least-squares line through the same points.
        mistakes.append((fit_power_law(ys, xs), "x and y are swapped: fit log y as a function of log x, "
                                                "np.polyfit(np.log(xs), np.log(ys), 1)"))
    ends = (log_y[-1] - log_y[0]) / (log_x[-1] - log_x[0])
    mistakes.append(((ends, math.exp(log_y[0] - ends * log_x[0])),
                     "that line goes through the first and last points only: fit all of them by least squares"))
    return mistakes


def _pair(values: tuple[float, float]) -> str:
    return "({:.6g}, {:.6g})".format(*values)


def _compare_fit(fn, xs, ys, what: str) -> None:
    got = run(fn, what, xs, ys)
    if not (isinstance(got, tuple) and len(got) == 2):
        fail(f"{what}: the result should be a pair", "(exponent, constant)", repr(got)[:200],
             "np.polyfit gives [slope, intercept]: return float(slope), float(math.exp(intercept))")
    if not all(isinstance(value, float) for value in got):
        fail(f"{what}: both numbers should be floats", "(float, float)",
             f"({type(got[0]).__name__}, {type(got[1]).__name__})", "convert with float(...)")
    expected = fit_power_law(xs, ys)
    if not _close(got, expected):
        hint = _named_mistakes(got, expected, _fit_mistakes(list(xs), list(ys), *expected), _close)
        fail(what, _pair(expected), _pair(got),
             hint or "fit a line to (log x, log y): the slope is the exponent, exp(intercept) the constant")


def _noisy_power_law(seed: int, exponent: float, constant: float, xs: list[float]) -> list[float]:
    """constant · x**exponent, each value off by a random factor of about 10%, as measured times are."""
    rng = random.Random(seed)
    return [constant * x**exponent * math.exp(rng.gauss(0, 0.1)) for x in xs]


def check_fit_power_law(fn) -> None:
    """Exact power laws (rising and falling), the result's form, and refusing what has no log-log line."""
    _compare_fit(fn, [1.0, 2.0, 4.0, 8.0, 16.0], [3.0, 12.0, 48.0, 192.0, 768.0], "y = 3·x² at x = 1, 2, 4, 8, 16")
    _compare_fit(fn, [10.0, 100.0, 1000.0], [0.05, 0.005, 0.0005], "y = 0.5 / x at x = 10, 100, 1000")
    _compare_fit(fn, [2.0, 3.0], [5.0, 7.0], "two points")
    for xs, ys, what, hint in [
        ([4.0], [2.0], "a single point", "a line needs at least 2 points: raise ValueError"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "xs and ys of different lengths", "compare len(xs) and len(ys)"),
        ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], "x = 0", "log(0) is undefined: raise ValueError naming the value"),
    ]:
        refuses(fn, what, hint, xs, ys)
    print("✅ fit_power_law passes the visible tests.")


def check_fit_power_law_hidden(fn) -> None:
    """Noisy measurements, negative exponents, tiny times and large sizes, tuples, more refusals."""
    sizes = [64.0 * 2**i for i in range(8)]
    _compare_fit(fn, sizes, _noisy_power_law(1, 2.0, 3e-9, sizes), "noisy times growing as N² (seed 1)")
    _compare_fit(fn, sizes, _noisy_power_law(2, 1.0, 4e-7, sizes), "noisy times growing as N (seed 2)")
    _compare_fit(fn, sizes, _noisy_power_law(3, -0.5, 20.0, sizes), "noisy values falling as N^-0.5 (seed 3)")
    _compare_fit(fn, (1e3, 1e4, 1e5, 1e6), (2e-6, 2e-4, 2e-2, 2.0), "y = 2e-12·x² given as tuples")
    for xs, ys, what, hint in [
        ([], [], "no points at all", "raise ValueError for fewer than 2 points"),
        ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], "a negative y", "log of a negative number is undefined: ValueError"),
        ([1.0, 2.0, 3.0], [1.0, 0.0, 3.0], "y = 0", "log(0) is undefined: ValueError"),
        ([-1.0, 2.0], [1.0, 2.0], "a negative x", "log of a negative number is undefined: ValueError"),
    ]:
        refuses(fn, what, hint, xs, ys)
    print("✅ fit_power_law passes the hidden tests too.")
