"""The recall race of notebook B, run bigger: more steps, longer distances, several seeds, any device.

    python -m course_lib.experiments recall                     # the cached run: about 8 minutes on 2 CPU cores
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
import sys
import time
from pathlib import Path

import torch

from course_lib.device import get_device
from course_lib.experiments import RESULTS
from course_lib.measure import device_name
from course_lib.train.recall import compare_recall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cpu, mps, cuda or cuda:N (default: the course's choice)")
    parser.add_argument("--steps", type=int, nargs="+", default=[400, 1600],
                        help="training budgets, in steps; one comparison per budget (default: 400 1600)")
    parser.add_argument("--max-distance", type=int, default=128,
                        help="distances 1, 2, 4, ... up to this power of two (default: 128)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate of both models (default: 3e-3)")
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
        result = compare_recall(distances, steps, batch_size=args.batch_size, device=device, seeds=args.seeds,
                                n_examples=args.n_examples, lr=args.lr)
        runs = [{"seed": seed,
                 "accuracy": {name: {d: values[i] for d, values in by_distance.items()}
                              for name, by_distance in result.accuracy.items()},
                 "seconds": {name: round(values[i], 1) for name, values in result.seconds.items()},
                 "parameters": result.parameters}
                for i, seed in enumerate(args.seeds)]
        print(f"\n{steps} steps, mean of {len(runs)} seed(s), sequences of {result.seq_len} tokens:")
        print(result.table())
        print("\n".join(result.verdicts()))
        budgets.append({"steps": steps, "seq_len": result.seq_len, "runs": runs})

    args.out.parent.mkdir(parents=True, exist_ok=True)
    given = sys.argv[1:] if argv is None else argv
    args.out.write_text(json.dumps({
        "command": " ".join(["python -m course_lib.experiments recall", *given]),
        "date": time.strftime("%Y-%m-%d"),
        "device": device_name(device),
        "torch": torch.__version__,
        "distances": distances,
        "seeds": args.seeds,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "n_examples": args.n_examples,
        "total_seconds": round(time.perf_counter() - started, 1),
        "budgets": budgets,
    }, indent=1))
    print(f"\nwritten to {args.out} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
