"""Notebook E's sweep of the KL leash: GRPO runs at several KL weights, three rewards, several seeds.

    python -m course_lib.experiments rl kl                  # 4 KL weights x 3 rewards x 3 seeds, 300 steps each
    python -m course_lib.experiments rl kl --kl 0 0.5 --seeds 0 1 --steps 200 --rewards correct

Every run starts from the same model: TinyGPT pre-trained on two-digit addition until it answers
half the held-out problems (course_lib.train.grpo.pretrain_arithmetic, seed 0), the starting point
of notebook E. Each run then trains with GRPO (course_lib.train.grpo, the course's reference
functions) at one KL weight, with the honest reward (exact answer), the gameable one (which also
pays for length) or a learned reward model (course_lib.train.rlhf, trained once on the checker's
comparisons of the start model's answers, as notebook E's RLHF part trains it), and records the
final held-out greedy accuracy, the mean reward and KL to the reference over the last 20 steps,
the answers' length, and the loss on the right answers of held-out problems ("coherence": does
the model still know how to write them?). For the reward model, "accuracy" is the gold score (the
checker, held out from training) and "proxy" the reward model's mean score of the held-out greedy
answers.

Writes results/rl_kl.json (or --out-dir), which the notebook loads and says is cached.
The defaults were sized for a 2-core CPU; on a GPU the same runs take about as long (the model is
tiny: the time goes to Python, not to arithmetic).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from course_lib.data import arithmetic
from course_lib.device import get_device
from course_lib.experiments import RESULTS
from course_lib.experiments.pretraining import run_jobs, write_record
from course_lib.models.tinygpt import TinyGPT
from course_lib.train import grpo, rlhf

HELD_OUT = 400  # held-out problems measured at the end of each run
LAST = 20  # steps averaged for the final reward and KL


def start_model(device) -> TinyGPT:
    """The model every run starts from: the half-right arithmetic model of notebook E."""
    model = grpo.arithmetic_model(seed=0).to(device)
    grpo.pretrain_arithmetic(model, 3000, target_accuracy=0.5, seed=0, progress=False)
    return model


def learned_reward(start: TinyGPT, device, *, labeler_steps: int = 4000, problems: int = 1000,
                   steps: int = 1000) -> tuple[rlhf.LearnedReward, dict]:
    """The reward model of notebook E's RLHF part (its sizes are the defaults), and what it measured."""
    backbone = rlhf.labeler_model(labeler_steps, device=device, progress=False)
    pairs = rlhf.ComparisonSet(rlhf.comparisons(start, rlhf.training_problems(problems)))
    reward = rlhf.train_learned_reward(backbone, pairs, steps=steps, progress=False)
    held_out = rlhf.ComparisonSet(rlhf.comparisons(start, arithmetic.sample_problems(HELD_OUT, "held_out", seed=1),
                                                   seed=1))
    return reward, {"comparisons": len(pairs), "held_out_comparisons": len(held_out),
                    "held_out_pair_accuracy": round(reward.pair_accuracy(held_out), 4)}


def _run(job: dict) -> dict:
    """One GRPO run in a worker process (one thread: the model is too small for threads to help)."""
    if job["device"].type == "cpu":
        torch.set_num_threads(1)
    policy = grpo.arithmetic_model(seed=0).to(job["device"])
    policy.load_state_dict(job["start"])
    held_out = arithmetic.sample_problems(HELD_OUT, "held_out", seed=1)
    cfg = grpo.GRPOConfig(lr=job["lr"], kl_coef=job["kl"], reward=job["reward"])
    trainer = grpo.GRPOTrainer(policy, cfg, seed=job["seed"], reward_model=job.get("reward_model"))
    start_accuracy = grpo.accuracy(policy, held_out)
    started = time.perf_counter()
    log = trainer.run(job["steps"], held_out=held_out, eval_every=job["steps"], live=False, progress=False)
    last = lambda name: sum(log.per_step[name][-LAST:]) / len(log.per_step[name][-LAST:])  # noqa: E731
    proxy = {"proxy": round(log.last("held-out proxy reward"), 4)} if "held-out proxy reward" in log.evals else {}
    return {"kl": job["kl"], "reward": job["reward"], "seed": job["seed"], "steps": job["steps"],
            "start_accuracy": round(start_accuracy, 4),
            "accuracy": round(log.last("held-out accuracy"), 4),
            "answer_loss": round(log.last("held-out answer loss"), 4),
            "start_answer_loss": round(log.evals["held-out answer loss"][0], 4),
            "mean_reward": round(last("reward"), 4), "kl_to_reference": round(last("KL to reference"), 4),
            "answer_length": round(last("answer length"), 3), "seconds": round(time.perf_counter() - started, 1),
            **proxy}


def kl_sweep(args, device) -> dict:
    model = start_model(device)
    start = model.state_dict()
    reward, measured = learned_reward(model, device) if "reward model" in args.rewards else (None, None)
    jobs = [{"kl": kl, "reward": name, "seed": seed, "steps": args.steps, "lr": args.lr, "device": device,
             "start": start, "reward_model": reward if name == "reward model" else None}
            for name in args.rewards for kl in args.kl for seed in args.seeds]
    runs = run_jobs(jobs, args.workers, "GRPO runs", lambda r: (
        f"{r['reward']:<9} KL weight {r['kl']:<5} seed {r['seed']}: accuracy {r['start_accuracy']:.2f} -> "
        f"{r['accuracy']:.2f}, KL {r['kl_to_reference']:.3f}, length {r['answer_length']:.2f} ({r['seconds']:.0f} s)"),
        job_fn=_run)
    result = {"kl_weights": args.kl, "steps": args.steps, "lr": args.lr, "runs": runs}
    return {**result, "reward_model": measured} if measured else result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["kl"])
    parser.add_argument("--device", help="cpu, mps, cuda or cuda:N (default: the course's choice)")
    parser.add_argument("--kl", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0], help="KL weights")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rewards", nargs="+", choices=grpo.REWARD_NAMES, default=list(grpo.REWARD_NAMES))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--workers", type=int, help="runs at once (default: 2 on a CPU, 1 on a GPU)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if any(k < 0 for k in args.kl) or args.steps < 1 or args.lr <= 0:
        parser.error("KL weights must be >= 0, --steps >= 1 and --lr > 0")
    device = torch.device(args.device) if args.device else get_device()
    args.workers = args.workers or (2 if device.type == "cpu" else 1)
    started = time.perf_counter()
    result = kl_sweep(args, device)
    write_record(args.out_dir, "rl", args.experiment, argv, args.seeds, device, started, result)


if __name__ == "__main__":
    main()
