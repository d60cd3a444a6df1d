"""Several answers to one question from SmolLM2: a loop of generate() against one batched sample().

    python bench/sampling.py [--device cpu] [--answers 8] [--new-tokens 48] [--repeats 3]

E4 asks SmolLM2 the same question several times. A loop generates one answer after another; a batch
(SmolLM2.sample, course_lib.models.llama.Llama.sample) puts the answers through the model together,
so the weights stream from memory once a step for all of them. Both are timed in turn, --repeats
times, on the same question at the same temperature; each reports seconds for the whole set and
tokens/s (the answers differ between the two, since their draws do, so tokens/s is the fair figure).
No target: it describes the machine. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib.measure import machine_summary
from course_lib.models.smollm import load_smollm2

QUESTION = "What is 17 x 24? Give the number."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--answers", type=int, default=8, help="answers to the question (default 8)")
    parser.add_argument("--new-tokens", type=int, default=48, help="the most tokens an answer may have")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, loop then batch (default 3)")
    args = parser.parse_args()
    if min(args.answers, args.new_tokens, args.repeats) < 1:
        parser.error("--answers, --new-tokens and --repeats must be at least 1")
    print(machine_summary(torch.device(args.device)))
    smol = load_smollm2(device=args.device)
    smol.generate(QUESTION, 4)  # warm-up

    def timed(make) -> tuple[float, int]:
        started = time.perf_counter()
        answers = make()
        seconds = time.perf_counter() - started
        return seconds, sum(len(smol.encode(answer)) for answer in answers)

    rounds = {"loop of generate": [], "one batched sample": []}
    for seed in range(args.repeats):
        first = seed * args.answers
        rounds["loop of generate"].append(timed(lambda: [
            smol.generate(QUESTION, args.new_tokens, temperature=0.8, seed=first + i) for i in range(args.answers)]))
        rounds["one batched sample"].append(timed(lambda: smol.sample(
            QUESTION, args.answers, args.new_tokens, temperature=0.8, seed=first)))
    rates = {}
    print(f"{args.answers} answers of at most {args.new_tokens} tokens, {args.repeats} rounds, medians:")
    for name, measured in rounds.items():
        seconds = statistics.median(s for s, _ in measured)
        rates[name] = statistics.median(tokens / s for s, tokens in measured)
        print(f"  {name:20} {seconds:6.2f} s a set   {rates[name]:6.1f} tokens/s")
    loop, batch = (statistics.median(s for s, _ in m) for m in rounds.values())
    print(f"batched / loop: {loop / batch:.2f}x faster a set, "
          f"{rates['one batched sample'] / rates['loop of generate']:.2f}x the tokens/s")


if __name__ == "__main__":
    main()
