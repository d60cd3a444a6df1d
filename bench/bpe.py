"""Benchmark the course's reference BPE training against its target and the `tokenizers` library.

    python bench/bpe.py [--repeats 3]

- target: the reference train_bpe at vocabulary 500 on the first 130,000 characters of
  python_docs_text() (about the size a notebook trains on) takes at most 1.5 s;
- comparison: the reference and the Hugging Face `tokenizers` library (Rust, multi-threaded), both at
  vocabulary 1,000 on python_docs_text(1_000_000), with how many merges they share.

Each figure is the median over --repeats runs in this process. It prints PASS or FAIL for the target
and exits with status 1 on FAIL.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from course_lib import tokenizer_lab
from course_lib.data import python_docs_text
from course_lib.exercises.bpe import train_bpe

TARGET_SECONDS = 1.5  # reference, vocabulary 500, 130,000 characters
TARGET_CHARS, TARGET_VOCAB = 130_000, 500
COMPARE_CHARS, COMPARE_VOCAB = 1_000_000, 1_000


def timed(repeats: int, train) -> tuple[float, list[float], object]:
    """(median seconds, every run's seconds, the last result) of calling train() `repeats` times."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = train()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds, result


def listed(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median reported)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import tokenizers

    print(f"BPE training benchmark: Python {sys.version.split()[0]}, tokenizers {tokenizers.__version__}, "
          f"{os.cpu_count()} CPUs, medians over {args.repeats} repeats")
    if hasattr(os, "getloadavg"):
        print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + "  (1, 5, 15 min)")

    small = python_docs_text(TARGET_CHARS)
    target, target_runs, _ = timed(args.repeats, lambda: train_bpe(small, TARGET_VOCAB))
    text = python_docs_text(COMPARE_CHARS)
    ours, ours_runs, (_, merges) = timed(args.repeats, lambda: train_bpe(text, COMPARE_VOCAB))
    theirs, theirs_runs, library = timed(args.repeats,
                                         lambda: tokenizer_lab.train_library_bpe(text, COMPARE_VOCAB))
    agreement = tokenizer_lab.compare_merges(merges, tokenizer_lab.library_merges(library))

    print(f"\nreference, vocabulary {TARGET_VOCAB}, {TARGET_CHARS:,} characters: {target:.2f} s "
          f"(runs: {listed(target_runs)})")
    print(f"reference, vocabulary {COMPARE_VOCAB:,}, {COMPARE_CHARS:,} characters: {ours:.2f} s "
          f"(runs: {listed(ours_runs)})")
    print(f"tokenizers library, same text and vocabulary: {theirs:.2f} s (runs: {listed(theirs_runs)})")
    print(f"ratio reference / library: {ours / theirs:.1f}x")
    print(f"merges in common: {agreement['in_common']} of {len(merges)}; "
          f"identical first {agreement['identical_prefix']} (ties are broken differently)")

    passed = target <= TARGET_SECONDS
    print(f"\n{'PASS' if passed else 'FAIL'}: reference at vocabulary {TARGET_VOCAB} on {TARGET_CHARS:,} "
          f"characters {target:.2f} s, target <= {TARGET_SECONDS} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
