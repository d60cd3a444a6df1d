"""Notebook C's sweeps, too slow to run live on a laptop: each trains a series of TinyGPTs.

    python -m course_lib.experiments pretraining isoflop    # a small IsoFLOP sweep (Chinchilla's approach 2)
    python -m course_lib.experiments pretraining mixture    # the share of code in the diet vs prose and code loss
    python -m course_lib.experiments pretraining dedup      # a polluted crawl vs the same crawl cleaned
    python -m course_lib.experiments pretraining all        # the three, one after the other

Each writes results/pretraining_<name>.json (or --out-dir): the command, the seeds, the
device, torch's version, the settings, the seconds, and every run's measured validation losses.
The mixture and dedup sweeps run three seeds by default (a seed sets the weights, the batches and,
for dedup, how the crawl is polluted), so the notebook can show each figure's spread; the IsoFLOP
sweep, a quarter of an hour a seed on a 2-core CPU, runs one unless --seeds says more.
The notebook loads these files and says they are cached; it can also run this script again.

The defaults are sized for a 2-core CPU (the committed results were made that way). On a GPU
(--device cuda) the defaults grow: bigger budgets and models, more steps; that path is written
but has not been run for the committed results, which say which device made them.

How the runs are counted. N is the number of parameters that take part in matrix multiplications
(everything but the position table: the token table counts, since the tied unembedding multiplies
by it), and a run of D tokens costs about C = 6 N D floating-point operations (Kaplan et al. 2020).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm.auto import tqdm

from course_lib.data.pretraining import (
    SOURCES,
    load_corpus,
    polluted_documents,
    quality_filter,
    training_documents,
)
from course_lib.device import get_device
from course_lib.experiments import RESULTS
from course_lib.measure import device_name
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig
from course_lib.exercises.pretraining import dedupe
from course_lib.train.pretrain import Pretrainer, TrainConfig

# (dim, layers, heads) from tiny to the CPU default, and bigger ones for a GPU.
CPU_SIZES = ((16, 1, 2), (24, 2, 2), (32, 2, 2), (48, 3, 4), (64, 3, 4), (96, 4, 4), (128, 4, 4))
GPU_SIZES = ((64, 3, 4), (96, 4, 4), (128, 4, 4), (192, 6, 6), (256, 6, 8), (384, 6, 6), (512, 8, 8))


def compute_parameters(model: TinyGPT) -> int:
    """The N of C = 6 N D: every parameter but the position table (see the module's docstring)."""
    return model.num_parameters() - model.position.weight.numel()


def train(corpus, dim: int, n_layers: int, n_heads: int, steps: int, *, context: int, batch_size: int,
          mixture=(("prose", 0.5), ("code", 0.5)), seed: int, device) -> dict:
    """One TinyGPT trained for `steps`; its size, tokens, seconds and final validation losses."""
    torch.manual_seed(seed)
    model = TinyGPT(TinyGPTConfig(vocab_size=corpus.vocab_size, context=context, dim=dim,
                                  n_layers=n_layers, n_heads=n_heads))
    cfg = TrainConfig(batch_size=batch_size, warmup_steps=max(2, steps // 10), mixture=tuple(mixture),
                      eval_every=steps + 1, eval_windows=128)
    trainer = Pretrainer(model, corpus, cfg, seed=seed, device=device)
    log = trainer.run(steps=steps, live=False, progress=False)
    n = compute_parameters(model)
    return {"seed": seed, "dim": dim, "n_layers": n_layers, "n_heads": n_heads, "parameters": n, "steps": steps,
            "tokens": trainer.tokens, "flops": 6 * n * trainer.tokens, "seconds": round(log.seconds, 2),
            "val_loss": {s: round(trainer.val_loss(s), 4) for s in SOURCES},
            "val_loss_mean": round(trainer.val_loss(), 4)}


def _job(job: dict) -> dict:
    """One training run in a worker process: one thread each, since the models are too small for
    threads to help and two workers keep two cores busy (see course_lib.train.recall)."""
    if job["device"].type == "cpu":
        torch.set_num_threads(1)
    corpus = load_corpus()
    if "prose_stream" in job:
        corpus = dataclasses.replace(corpus, train={**corpus.train, "prose": job["prose_stream"]})
    keys = ("dim", "n_layers", "n_heads", "steps", "context", "batch_size", "mixture", "seed", "device")
    return {**job["label"], **train(corpus, **{k: job[k] for k in keys})}


def run_jobs(jobs: list[dict], workers: int, description: str, show, job_fn=_job) -> list[dict]:
    """Every job_fn(job), in the jobs' order, printing each as it finishes; `workers` processes at once."""
    results = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=description)

    def record(i: int, result: dict) -> None:
        results[i] = result
        bar.update(1)
        tqdm.write(show(result))

    if workers == 1:
        for i, job in enumerate(jobs):
            record(i, job_fn(job))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(job_fn, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                record(futures[future], future.result())
    bar.close()
    return results


def isoflop(args, corpus, device) -> dict:
    gpu = device.type == "cuda"
    budgets = args.budgets or ([1e13, 3e13, 1e14, 3e14] if gpu else [3e11, 1e12, 3e12])
    sizes = GPU_SIZES if gpu else CPU_SIZES
    tokens_per_step = args.batch_size * args.context
    plan = []
    for budget in budgets:
        for dim, n_layers, n_heads in sizes:
            n = compute_parameters(TinyGPT(TinyGPTConfig(vocab_size=corpus.vocab_size, context=args.context,
                                                         dim=dim, n_layers=n_layers, n_heads=n_heads)))
            steps = round(budget / (6 * n * tokens_per_step))
            if steps >= args.min_steps:  # too few steps to learn anything: not a meaningful point
                plan.append((budget, dim, n_layers, n_heads, steps))
    jobs = [{"label": {"budget": budget}, "dim": dim, "n_layers": n_layers, "n_heads": n_heads, "steps": steps,
             "context": args.context, "batch_size": args.batch_size, "mixture": (("prose", 0.5), ("code", 0.5)),
             "seed": seed, "device": device} for budget, dim, n_layers, n_heads, steps in plan for seed in args.seeds]
    runs = run_jobs(jobs, args.workers, "IsoFLOP runs", lambda run: (
        f"C={run['budget']:.0e}  N={run['parameters']:>9,}  D={run['tokens']:>10,}  seed {run['seed']}  "
        f"loss={run['val_loss_mean']:.3f}  ({run['seconds']:.0f} s)"))
    return {"budgets": budgets, "runs": runs}


def mixture(args, corpus, device) -> dict:
    dim, n_layers, n_heads = args.size
    jobs = [{"label": {"code_share": share}, "dim": dim, "n_layers": n_layers, "n_heads": n_heads,
             "steps": args.steps, "context": args.context, "batch_size": args.batch_size,
             "mixture": (("prose", 1 - share), ("code", share)), "seed": seed, "device": device}
            for share in args.code_shares for seed in args.seeds]
    runs = run_jobs(jobs, args.workers, "mixture runs", lambda run: (
        f"code share {run['code_share']:.2f} seed {run['seed']}: prose {run['val_loss']['prose']:.3f}  "
        f"code {run['val_loss']['code']:.3f}"))
    return {"runs": runs}


def dedup(args, corpus, device) -> dict:
    """Four diets of prose, each trained for the same steps and measured on the same clean prose;
    each seed pollutes the crawl its own way and trains its own four models."""
    clean = list(training_documents("prose"))
    dim, n_layers, n_heads = args.size
    jobs = []
    for seed in args.seeds:
        crawl = polluted_documents(clean, seed=seed)
        deduped = dedupe(crawl)
        diets = {"clean": clean, "polluted crawl": crawl, "crawl, deduplicated": deduped,
                 "crawl, deduplicated and filtered": quality_filter(deduped)}
        for name, documents in diets.items():
            stream = corpus.tokenize(documents)
            jobs.append({"label": {"diet": name, "documents": len(documents),
                                   "characters": sum(map(len, documents)), "train_tokens": len(stream)},
                         "prose_stream": stream, "dim": dim, "n_layers": n_layers, "n_heads": n_heads,
                         "steps": args.steps, "context": args.context, "batch_size": args.batch_size,
                         "mixture": (("prose", 1.0),), "seed": seed, "device": device})
    runs = run_jobs(jobs, args.workers, "diets", lambda run: (
        f"{run['diet']:<34} seed {run['seed']} {run['documents']:>6,} documents  "
        f"prose loss {run['val_loss']['prose']:.3f}"))
    return {"runs": runs}


EXPERIMENTS = {"isoflop": isoflop, "mixture": mixture, "dedup": dedup}
DEFAULT_SEEDS = {"isoflop": [0], "mixture": [0, 1, 2], "dedup": [0, 1, 2]}


def write_record(out_dir: Path, script: str, name: str, argv, seeds: list[int], device, started: float,
                 fields: dict) -> Path:
    """Store one sweep's result as results/<script>_<name>.json, with how it was made:
    the command, seeds, device, torch version, date and the seconds since `started`."""
    record = {"experiment": name,
              "command": f"python -m course_lib.experiments {script} " + " ".join(sys.argv[1:] if argv is None else argv),
              "seeds": list(seeds), "device": device_name(device), "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), **fields,
              "total_seconds": round(time.perf_counter() - started, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{script}_{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path} ({record['total_seconds']:.0f} s)")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--device", help="cpu, mps, cuda or cuda:N (default: the course's choice)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="seeds, each a run of every setting (default: 0 1 2 for mixture and dedup, 0 for isoflop)")
    parser.add_argument("--context", type=int, default=64, help="tokens per training window (default 64)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per step (default 16)")
    parser.add_argument("--budgets", type=float, nargs="+", help="isoflop: compute budgets in FLOPs")
    parser.add_argument("--min-steps", type=int, default=100,
                        help="isoflop: leave out runs with fewer steps: too short to learn anything (default 100)")
    parser.add_argument("--steps", type=int, default=600, help="mixture, dedup: steps per run")
    parser.add_argument("--size", type=int, nargs=3, default=(64, 3, 4), metavar=("DIM", "LAYERS", "HEADS"),
                        help="mixture, dedup: the model (default 64 3 4)")
    parser.add_argument("--code-shares", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    parser.add_argument("--workers", type=int, help="runs at once (default: 2 on a CPU, 1 on a GPU)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if any(not 0 <= s <= 1 for s in args.code_shares):
        parser.error("every --code-shares value must be between 0 and 1")
    if args.steps < 1 or args.min_steps < 1:
        parser.error("--steps and --min-steps must be at least 1")
    device = torch.device(args.device) if args.device else get_device()
    args.workers = args.workers or (2 if device.type == "cpu" else 1)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    corpus = load_corpus()
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    for name in names:
        start = time.perf_counter()
        run_args = argparse.Namespace(**{**vars(args), "seeds": args.seeds or DEFAULT_SEEDS[name]})
        result = EXPERIMENTS[name](run_args, corpus, device)
        write_record(args.out_dir, "pretraining", name, argv, run_args.seeds, device, start, {
            "context": args.context, "batch_size": args.batch_size,
            "corpus": {s: corpus.stats[s] for s in ("prose", "code")},
            **({"steps": args.steps, "size": list(args.size)} if name != "isoflop" else {}),
            **result})


if __name__ == "__main__":
    main()
