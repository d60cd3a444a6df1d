"""Reference answers for notebook B (why Transformers won): counting FLOPs and parameters, and
fitting the power law that a log-log plot of measurements shows as a straight line.

A FLOP here is one multiplication or one addition, so a multiply-add counts 2: the convention of
hardware peak figures (an H200's "67 TFLOP/s") and of scaling-law papers (about 2 FLOPs per
parameter per token).
"""
from __future__ import annotations

import math
from typing import Sequence

from course_lib.models.llama import LlamaConfig
from course_lib.validation import is_whole


def matmul_flops(m: int, k: int, n: int) -> int:
    """FLOPs of an (m, k) @ (k, n) matmul: each of the m·n outputs takes k multiply-adds, 2·m·k·n."""
    for name, size in (("m", m), ("k", k), ("n", n)):
        if not (is_whole(size) and size >= 1):
            raise ValueError(f"matrix sizes must be whole numbers >= 1, got {name}={size!r}")
    return 2 * m * k * n


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
