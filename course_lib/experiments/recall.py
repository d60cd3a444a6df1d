"""The recall race of notebook B, run bigger: more steps, longer distances, several seeds, any device.

    python -m course_lib.experiments recall                     # the cached run: 2 to 4 minutes on 2 CPU cores
    python -m course_lib.experiments recall --device cuda --steps 400 1600 6400 --seeds 0 1 2   # bigger, on a GPU

For every training budget in --steps and every seed it trains an LSTM and a one-layer attention model
(course_lib.train.recall.compare_recall: same width, same batches, same number of steps) and measures
their accuracy at distances 1, 2, 4, ... up to --max-distance. Several budgets side by side answer the
question the notebook's short run leaves open: does the LSTM catch up when it trains longer?

It prints one table per budget (accuracy averaged over the seeds) and writes everything, every seed,
to results/recall.json (or --out), with the device, the settings and the seconds.
So far it has run on a CPU only: the GPU command above is untried.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from course_lib.device import get_device
from course_lib.experiments import RESULTS
from course_lib.measure import device_name
from course_lib.train.recall import compare_recall


def mean_table(runs: list[dict], distances: list[int]) -> str:
    """Accuracy by distance averaged over the seeds of one budget, one row per model."""
    models = list(runs[0]["accuracy"])
    lines = [f"{'distance':>10} " + " ".join(f"{d:>5}" for d in distances) + "  seconds"]
    for name in models:
        means = [sum(run["accuracy"][name][d] for run in runs) / len(runs) for d in distances]
        seconds = sum(run["seconds"][name] for run in runs) / len(runs)
        lines.append(f"{name:>10} " + " ".join(f"{m:5.2f}" for m in means) + f"  {seconds:7.1f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cpu, mps, cuda or cuda:N (default: the course's choice)")
    parser.add_argument("--steps", type=int, nargs="+", default=[400, 1600],
                        help="training budgets, in steps; one comparison per budget (default: 400 1600)")
    parser.add_argument("--max-distance", type=int, default=256,
                        help="distances 1, 2, 4, ... up to this power of two (default: 256)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-examples", type=int, default=512, help="test sequences per distance")
    parser.add_argument("--out", type=Path, default=RESULTS / "recall.json")
    args = parser.parse_args(argv)
    if args.max_distance < 1 or args.max_distance & (args.max_distance - 1):
        parser.error(f"--max-distance must be a power of two (1, 2, 4, ...), got {args.max_distance}")
    if min(args.steps) < 1:
        parser.error("every budget in --steps must be at least 1")

    device = torch.device(args.device) if args.device else get_device()
    distances = [2 ** i for i in range(args.max_distance.bit_length())]
    print(f"device: {device_name(device)}; distances {distances}; budgets {args.steps} steps; "
          f"seeds {args.seeds}; batch size {args.batch_size}")
    started = time.perf_counter()
    budgets = []
    for steps in args.steps:
        runs = []
        for seed in args.seeds:
            result = compare_recall(distances, steps, batch_size=args.batch_size, device=device, seed=seed,
                                    n_examples=args.n_examples)
            seconds = {name: round(value, 1) for name, value in result.seconds.items()}
            runs.append({"seed": seed, "accuracy": result.accuracy, "seconds": seconds,
                         "parameters": result.parameters})
        print(f"\n{steps} steps, mean of {len(runs)} seed(s), sequences of {result.seq_len} tokens:")
        print(mean_table(runs, distances))
        budgets.append({"steps": steps, "seq_len": result.seq_len, "runs": runs})

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "device": device_name(device),
        "torch": torch.__version__,
        "distances": distances,
        "seeds": args.seeds,
        "batch_size": args.batch_size,
        "n_examples": args.n_examples,
        "total_seconds": round(time.perf_counter() - started, 1),
        "budgets": budgets,
    }, indent=1))
    print(f"\nwritten to {args.out} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
