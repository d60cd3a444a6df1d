"""What a pre-training run costs, derived rather than quoted: FLOPs from the model's size and its
data, GPU-hours from a chip's speed, dollars from a price per hour; and what serving costs, per million
tokens, from a measured speed.

    FLOPs      = 6 N D                         (N parameters, D training tokens: Kaplan et al. 2020)
    GPU-hours  = FLOPs / (peak FLOP/s x utilisation) / 3600
    dollars    = GPU-hours x price per GPU-hour

The utilisation (the share of the chip's peak a real run sustains, "MFU") and the price are
assumptions to set, not facts: published large runs report about 40% on H100s, and rental prices
move. The published runs below give their own FLOP counts, so 6 N D can be checked against them.
"""
from __future__ import annotations

from dataclasses import dataclass

from course_lib.validation import is_number

H100_BF16_PEAK = 989e12  # FLOP/s, dense bf16 (NVIDIA's H100 SXM datasheet)


@dataclass(frozen=True)
class PublishedRun:
    name: str
    parameters: float
    tokens: float
    flops: float  # as the paper reports it
    source: str


PUBLISHED_RUNS = (
    PublishedRun("GPT-3 (175B)", 175e9, 300e9, 3.14e23,
                 "Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165 (Table D.1)"),
    PublishedRun("Chinchilla (70B)", 70e9, 1.4e12, 5.76e23,
                 "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556"),
    PublishedRun("Llama 3.1 (405B)", 405e9, 15.6e12, 3.8e25,
                 "Llama Team, Meta 2024, The Llama 3 Herd of Models, arXiv:2407.21783"),
)


@dataclass(frozen=True)
class RunCost:
    flops: float
    gpu_hours: float
    dollars: float
    days_on: dict[int, float]  # number of GPUs -> days of wall-clock time


def training_cost(parameters: float, tokens: float, *, flops_per_second: float = H100_BF16_PEAK,
                  utilisation: float = 0.4, price_per_hour: float = 2.0,
                  gpus: tuple[int, ...] = (1_000, 16_000)) -> RunCost:
    """The FLOPs (6 N D), GPU-hours, dollars and wall-clock days of a run on a fleet of such chips."""
    for name, value in (("parameters", parameters), ("tokens", tokens),
                        ("flops_per_second (the chip's speed)", flops_per_second),
                        ("price_per_hour (dollars per GPU-hour)", price_per_hour)):
        if not is_number(value) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not is_number(utilisation) or not 0 < utilisation <= 1:
        raise ValueError(f"utilisation is a share of the chip's peak, more than 0 and at most 1, got {utilisation!r}")
    flops = 6 * parameters * tokens
    gpu_hours = flops / (flops_per_second * utilisation) / 3600
    return RunCost(flops, gpu_hours, gpu_hours * price_per_hour, {n: gpu_hours / n / 24 for n in gpus})


def price_per_million_tokens(price_per_hour: float, tokens_per_second: float) -> float:
    """Dollars for a million generated tokens on a machine rented at `price_per_hour` that produces
    `tokens_per_second`: price / (tokens per hour) x 1,000,000."""
    if not is_number(price_per_hour) or price_per_hour < 0:
        raise ValueError(f"price_per_hour must be a number >= 0 (dollars per hour), got {price_per_hour!r}")
    if not is_number(tokens_per_second) or not tokens_per_second > 0:
        raise ValueError(f"tokens_per_second must be a number > 0, got {tokens_per_second!r}")
    return price_per_hour / (tokens_per_second * 3600) * 1e6
