"""Benchmark notebook D's runs on this machine: what each costs per step, and the notebook's budget.

    python bench/post_training.py [--device cpu] [--steps 40]

With the course's base TinyGPT (course_lib/assets/tinygpt_base.pt) and notebook D's data, it times,
after a few warm-up steps:
- SFT, reward-model and DPO steps per second (batch 16 conversations or pairs, as in the notebook);
- batched greedy answering of the held-out questions (40 new tokens at most), in answers per second;
and from these, the seconds the notebook's learner settings take for each run (SFT 300 steps, reward
model 200, DPO 150, the beta sweep 4 x 100). It prints the load average, since busy cores slow
PyTorch down several-fold. There is no target: the figures describe the machine. It exits 0.
"""
from __future__ import annotations

import copy
import time

from course_lib import measure
from course_lib.data.instructions import instruction_examples, preference_pairs
from course_lib.train import post_training as pt

WARMUP_STEPS = 3
# The notebook's learner settings: (run, steps).
NOTEBOOK_STEPS = (("SFT", 300), ("reward model", 200), ("DPO", 150), ("DPO beta sweep", 400))


def steps_per_second(run, steps: int) -> float:
    run(WARMUP_STEPS)
    start = time.perf_counter()
    run(steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    args, device = measure.bench_arguments(__doc__, steps=40)
    base, tokenizer, source = pt.load_base_model(device, prefer_learners=False)
    print("model:", source)
    context = base.cfg.context
    train = pt.Conversations.of_examples(tokenizer, instruction_examples("train"), context)
    held_out = instruction_examples("held_out")
    pairs = pt.PairSet(tokenizer, preference_pairs("train"), context)
    quiet = dict(live=False, progress=False, eval_every=10**9)

    rates = {
        "SFT": steps_per_second(lambda n: pt.supervised_finetune(copy.deepcopy(base), train, steps=n, **quiet), args.steps),
        "reward model": steps_per_second(lambda n: pt.train_reward_model(base, pairs, steps=n, **quiet), args.steps),
    }
    # DPO's step rate without its one-off cost (the reference's log-probabilities of every pair), then that cost.
    start = time.perf_counter()
    pt.all_logprobs(base, pairs.chosen), pt.all_logprobs(base, pairs.rejected)
    reference_seconds = time.perf_counter() - start
    dpo_total = steps_per_second(lambda n: pt.train_dpo(copy.deepcopy(base), pairs, beta=0.1, steps=n, **quiet), args.steps)
    rates["DPO"] = args.steps / (args.steps / dpo_total - reference_seconds)
    rates["DPO beta sweep"] = rates["DPO"]
    start = time.perf_counter()
    pt.answer_all(base, tokenizer, held_out)
    answering = time.perf_counter() - start

    print(f"\n{'run':<16}{'steps/s':>9}{'notebook steps':>16}{'seconds':>9}")
    for run, steps in NOTEBOOK_STEPS:
        extra = reference_seconds * (4 if run == "DPO beta sweep" else 1) if run.startswith("DPO") else 0.0
        print(f"{run:<16}{rates[run]:>9.2f}{steps:>16}{steps / rates[run] + extra:>9.0f}")
    print(f"\nDPO's reference log-probabilities of {len(pairs):,} pairs: {reference_seconds:.1f} s per run")
    print(f"answering {len(held_out)} held-out questions (greedy, <= 40 tokens, batched): {answering:.1f} s "
          f"({len(held_out) / answering:.1f} answers/s; the base model rarely stops, so this is its worst case)")


if __name__ == "__main__":
    main()
