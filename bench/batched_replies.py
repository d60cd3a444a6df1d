"""Many replies from SmolLM2 at once against one at a time, measured in turn on this machine.

The two places the course asks SmolLM2 for many replies:
  D6  critique-and-revise over several requests (course_lib.train.constitution): three greedy
      generations per request, made one request at a time or as one batch per stage;
  E5  n sampled attempts at one question (SmolLM.sample): n calls of generate, or one batch.
Each pair runs alternately, --repeats times; the median of each and their ratio are printed. The
greedy texts of D6 must be the same both ways (they are checked, not assumed).

    python bench/batched_replies.py                  # D6 on 4 requests, E5 with 24 attempts
    python bench/batched_replies.py --requests 7 --attempts 8 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import time

from course_lib.models.smollm import load_smollm2
from course_lib.train.constitution import CONCISE_REQUESTS, PRINCIPLES, critique_and_revise, critique_and_revise_each

QUESTION = "What is 17 x 24? Think step by step, then give the number."


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def in_turn(repeats: int, one_at_a_time, together) -> tuple[list[float], list[float], list]:
    alone, batched, outputs = [], [], []
    for _ in range(repeats):
        seconds, first = timed(one_at_a_time)
        alone.append(seconds)
        seconds, second = timed(together)
        batched.append(seconds)
        outputs.append((first, second))
    return alone, batched, outputs


def report(name: str, alone: list[float], batched: list[float]) -> None:
    a, b = statistics.median(alone), statistics.median(batched)
    print(f"{name}: one at a time {a:.1f} s (runs {min(alone):.1f}-{max(alone):.1f}), one batch {b:.1f} s "
          f"(runs {min(batched):.1f}-{max(batched):.1f}): {a / b:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=4, help=f"D6's requests (at most {len(CONCISE_REQUESTS)})")
    parser.add_argument("--attempts", type=int, default=24, help="E5's attempts at one question")
    parser.add_argument("--new-tokens", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.requests <= len(CONCISE_REQUESTS):
        parser.error(f"--requests must be between 1 and {len(CONCISE_REQUESTS)}")
    smol = load_smollm2(device=args.device, progress=False)
    print(f"SmolLM2 float32 on {args.device}, {args.new_tokens} new tokens at most per reply, "
          f"{args.repeats} runs each, in turn")

    requests, principle = list(CONCISE_REQUESTS[:args.requests]), PRINCIPLES["concise"]
    alone, batched, outputs = in_turn(
        args.repeats,
        lambda: [critique_and_revise(smol, r, principle, args.new_tokens) for r in requests],
        lambda: critique_and_revise_each(smol, requests, principle, args.new_tokens, progress=False))
    same = all([(s.draft, s.critique, s.revision) for s in first] == [(s.draft, s.critique, s.revision) for s in second]
               for first, second in outputs)
    report(f"D6 critique-and-revise, {len(requests)} requests", alone, batched)
    print(f"    the same drafts, critiques and revisions both ways: {same}")

    alone, batched, _ = in_turn(
        args.repeats,
        lambda: [smol.generate(QUESTION, args.new_tokens, temperature=0.8, seed=i) for i in range(args.attempts)],
        lambda: smol.sample(QUESTION, args.attempts, args.new_tokens, temperature=0.8, seed=0))
    report(f"E5 attempts at one question, {args.attempts} of them", alone, batched)


if __name__ == "__main__":
    main()
