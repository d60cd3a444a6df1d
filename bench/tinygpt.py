"""Benchmark TinyGPT's pre-training on this machine: tokens/s, achieved FLOP/s, and memory.

    python bench/tinygpt.py [--device cpu] [--steps 60]

For the device's default config (course_lib.train.pretrain.default_configs: the CPU one is about a
million parameters, context 128, batch 32) it trains --steps steps after a few warm-up steps and
prints:
- training tokens per second;
- achieved FLOP/s, counting 6 N + 12 L T d FLOPs per trained token (N the parameters that take part
  in matmuls, L layers, T the context, d the width: Kaplan et al. 2020's estimate, attention
  included), and that as a share of the machine's measured matmul peak (course_lib.measure);
- peak resident memory of the process (RSS), and on a GPU its peak allocated memory.
There is no target: the figures describe the machine. It exits 0.
"""
from __future__ import annotations

import resource
import sys
import time

import torch

from course_lib import measure
from course_lib.data.pretraining import load_corpus
from course_lib.models.tinygpt import TinyGPT
from course_lib.train.pretrain import Pretrainer, default_configs

WARMUP_STEPS = 5


def main() -> None:
    args, device = measure.bench_arguments(__doc__, steps=60)
    peak, size = measure.peak_matmul_flops(device)
    print(f"measured matmul peak: {peak / 1e9:,.1f} GFLOP/s (float32, {size} x {size})")

    corpus = load_corpus()
    model_cfg, train_cfg = default_configs(device)
    model = TinyGPT(model_cfg)
    n = model.num_parameters() - model.position.weight.numel()
    flops_per_token = 6 * n + 12 * model_cfg.n_layers * model_cfg.context * model_cfg.dim
    print(f"TinyGPT: {model.num_parameters():,} parameters ({n:,} in matmuls), {model_cfg.n_layers} layers, "
          f"width {model_cfg.dim}, context {model_cfg.context}, batch {train_cfg.batch_size}; "
          f"{flops_per_token / 1e6:.1f} MFLOP per trained token")

    trainer = Pretrainer(model, corpus, train_cfg, device=device)
    trainer.run(steps=WARMUP_STEPS, live=False, progress=False)
    measure.synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, tokens_before = time.perf_counter(), trainer.tokens
    trainer.run(steps=WARMUP_STEPS + args.steps, live=False, progress=False)
    measure.synchronize(device)
    seconds = time.perf_counter() - start
    tokens = trainer.tokens - tokens_before
    achieved = tokens * flops_per_token / seconds
    print(f"training: {tokens / seconds:,.0f} tokens/s over {args.steps} steps ({seconds:.1f} s, "
          f"validation included)")
    print(f"achieved: {achieved / 1e9:,.1f} GFLOP/s = {achieved / peak:.0%} of the measured matmul peak")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    print(f"peak RSS: {measure.format_bytes(rss)}")
    if device.type == "cuda":
        print(f"peak GPU memory allocated: {measure.format_bytes(torch.cuda.max_memory_allocated(device))}")


if __name__ == "__main__":
    main()
