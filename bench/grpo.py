"""Benchmark notebook E's GRPO on this machine: time per step, rollouts per second, memory.

    python bench/grpo.py [--device cpu] [--steps 50]

With the default config (course_lib.train.grpo: the arithmetic TinyGPT, 16 problems x 8 sampled
answers per step, one update per batch), starting from the half-right model, it times --steps GRPO
steps after a few warm-up steps and prints:
- seconds per GRPO step, and how that splits between sampling the rollouts and the update;
- rollouts (sampled answers) per second;
- the same for the critic baseline, with its extra parameters;
- peak resident memory of the process (RSS), and on a GPU its peak allocated memory.
There is no target: the figures describe the machine. It prints the load average (busy cores slow
PyTorch several-fold) and exits 0.
"""
from __future__ import annotations

import copy
import resource
import time

import torch

from course_lib import measure
from course_lib.train import grpo

WARMUP_STEPS = 3


def time_steps(trainer: grpo.GRPOTrainer, steps: int) -> tuple[float, float]:
    """(seconds per step, of which sampling rollouts), over `steps` steps after a warm-up."""
    original = grpo.sample_rollouts
    sampling = [0.0]

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        sampling[0] += time.perf_counter() - start
        return out

    trainer.run(WARMUP_STEPS, live=False, progress=False)
    grpo.sample_rollouts = timed
    try:
        start = time.perf_counter()
        trainer.run(steps, live=False, progress=False)
        total = time.perf_counter() - start
    finally:
        grpo.sample_rollouts = original
    return total / steps, sampling[0] / steps


def main() -> None:
    args, device = measure.bench_arguments(__doc__, steps=50)
    start = grpo.arithmetic_model(seed=0).to(device)
    curve = grpo.pretrain_arithmetic(start, 3000, target_accuracy=0.5, seed=0, progress=False)
    print(f"start model: {sum(p.numel() for p in start.parameters()):,} parameters, pre-trained for {curve[-1][0]} steps "
          f"to {curve[-1][1]:.0%} accuracy")
    cfg = grpo.GRPOConfig()
    rollouts_per_step = cfg.prompts_per_step * cfg.group_size
    for baseline in ("group", "critic"):
        trainer = grpo.GRPOTrainer(copy.deepcopy(start), grpo.GRPOConfig(baseline=baseline), seed=0)
        per_step, sampling = time_steps(trainer, args.steps)
        counts = trainer.parameter_counts()
        print(f"{baseline:>6} baseline: {per_step * 1000:.0f} ms per step ({sampling * 1000:.0f} ms sampling "
              f"{rollouts_per_step} rollouts, {(per_step - sampling) * 1000:.0f} ms for advantages and the update); "
              f"{rollouts_per_step / per_step:,.0f} rollouts/s; parameters trained: {counts['policy'] + counts['critic']:,}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(f"peak RSS: {peak_rss:.0f} MB")
    if device.type == "cuda":
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
