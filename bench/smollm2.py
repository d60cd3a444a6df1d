"""Benchmark course_lib's SmolLM2-135M against its targets and against transformers (and llama.cpp).

    python bench/smollm2.py [--device cpu] [--repeats 5] [--new-tokens 128] [--prompt-tokens 64]

Every figure comes from a fresh subprocess, so nothing is warm in-process:
- cold load: load_smollm2() with an empty cache directory (COURSE_CACHE_DIR), so it dequantizes;
- warm load: load_smollm2() again, the cache now filled (median over --repeats processes);
- ours: prompt processing (one forward pass over the prompt) and greedy generation with the KV cache,
  medians over --repeats after a warm-up, and the process's peak RSS (our model alone);
- transformers: the same GGUF file loaded by transformers in float32, greedy generate() with its cache,
  timed in turn with ours in one process, so that a burst of load from elsewhere hits both alike;
- llama.cpp (when the llama_cpp package is importable): generation on the same GGUF, still 4-bit.

Generation tokens/s = new tokens / seconds of the whole call, prompt included, for every engine.
It is a benchmark, not a test: it exits 0 even when a target is missed, and says MISSED.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"

# The targets: (figure, comparison, bound) -- see the report at the end of main().
TARGET_SPEEDUP = 1.3     # our generation tokens/s over transformers', same float32 weights
TARGET_WARM_LOAD = 3.0   # seconds
TARGET_PEAK_RSS = 2000   # MB, our model alone in its own process

# A fixed prompt, repeated and cut to --prompt-tokens token ids.
PROMPT = ("The old lighthouse keeper climbed the spiral stairs every evening, lit the great lamp, "
          "and watched the fishing boats come home one by one across the dark and restless sea. ")


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def prompt_ids(smol_or_tokenizer_encode, n: int) -> list[int]:
    ids = smol_or_tokenizer_encode(PROMPT * (1 + n // 20))
    return ids[:n]


# Workers: each runs in its own process and prints one JSON line ---------------------------------
def worker_load(args) -> dict:
    import torch  # noqa: F401  (imported before the clock starts: we time loading, not importing)

    from course_lib.models.smollm import load_smollm2

    started = time.perf_counter()
    smol = load_smollm2(device=args.device, progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "from_cache": smol.from_cache, "peak_rss_mb": peak_rss_mb()}


def worker_ours(args) -> dict:
    import torch

    from course_lib.models.smollm import load_smollm2

    smol = load_smollm2(device=args.device, progress=False)
    model = smol.model
    ids = prompt_ids(smol.encode, args.prompt_tokens)
    batch = torch.tensor([ids], device=model.device)

    prefill = []
    with torch.inference_mode():
        model(batch)  # warm-up
        for _ in range(args.repeats):
            sync(args.device)
            started = time.perf_counter()
            model(batch)
            sync(args.device)
            prefill.append(time.perf_counter() - started)

    generate = []
    tokens = model.generate(ids, args.new_tokens)  # warm-up; no eos_id, so it never stops early
    assert len(tokens) == args.new_tokens
    for _ in range(args.repeats):
        sync(args.device)
        started = time.perf_counter()
        tokens = model.generate(ids, args.new_tokens)
        sync(args.device)
        generate.append(time.perf_counter() - started)
    return {
        "prompt_tok_s": len(ids) / statistics.median(prefill),
        "gen_tok_s": args.new_tokens / statistics.median(generate),
        "gen_tok_s_all": [args.new_tokens / s for s in generate],
        "peak_rss_mb": peak_rss_mb(),
        "tokens": tokens,
    }


def worker_transformers(args) -> dict:
    """transformers' generation, timed in turn with ours in the same process.

    Runs alternate (theirs, ours, theirs, ...), so a burst of load from other processes slows both
    alike and the ratio holds even on a busy machine.
    """
    import torch
    import transformers

    from course_lib.models import smollm
    from course_lib.models.smollm import load_smollm2

    transformers.logging.set_verbosity_error()
    folder = str(smollm.gguf_path().parent)
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=smollm.GGUF_NAME)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=smollm.GGUF_NAME, dtype=torch.float32).to(args.device).eval()
    ours = load_smollm2(device=args.device, progress=False).model
    ids = prompt_ids(lambda text: tok.encode(text, add_special_tokens=False), args.prompt_tokens)
    batch = torch.tensor([ids], device=args.device)
    kwargs = dict(attention_mask=torch.ones_like(batch), max_new_tokens=args.new_tokens,
                  min_new_tokens=args.new_tokens, do_sample=False, use_cache=True,
                  pad_token_id=tok.eos_token_id)

    def timed(generate) -> float:
        sync(args.device)
        started = time.perf_counter()
        generate()
        sync(args.device)
        return time.perf_counter() - started

    with torch.inference_mode():
        out = model.generate(batch, **kwargs)  # warm-up, both
        ours.generate(ids, args.new_tokens)
        theirs_s, ours_s = [], []
        for _ in range(args.repeats):
            theirs_s.append(timed(lambda: model.generate(batch, **kwargs)))
            ours_s.append(timed(lambda: ours.generate(ids, args.new_tokens)))
    new = out[0, len(ids):].tolist()
    assert len(new) == args.new_tokens
    return {"gen_tok_s": args.new_tokens / statistics.median(theirs_s),
            "gen_tok_s_all": [args.new_tokens / s for s in theirs_s],
            "ours_gen_tok_s": args.new_tokens / statistics.median(ours_s),
            "ours_gen_tok_s_all": [args.new_tokens / s for s in ours_s],
            "tokens": new}


def worker_llama_cpp(args) -> dict:
    import llama_cpp
    import torch

    from course_lib.models import smollm

    llm = llama_cpp.Llama(model_path=str(smollm.gguf_path()), n_ctx=512, verbose=False,
                          n_threads=torch.get_num_threads(),
                          n_gpu_layers=-1 if args.device.startswith("cuda") else 0)
    ids = prompt_ids(lambda text: llm.tokenize(text.encode(), add_bos=False), args.prompt_tokens)

    def run() -> float:
        llm.reset()
        started = time.perf_counter()
        # generate() yields tokens for as long as asked (it does not stop at end-of-text itself).
        for n, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=True), start=1):
            if n == args.new_tokens:
                break
        return time.perf_counter() - started

    run()  # warm-up
    generate = [run() for _ in range(args.repeats)]
    return {"gen_tok_s": args.new_tokens / statistics.median(generate), "peak_rss_mb": peak_rss_mb()}


WORKERS = {"load": worker_load, "ours": worker_ours, "transformers": worker_transformers,
           "llama_cpp": worker_llama_cpp}


def run_worker(name: str, args, cache: str) -> dict:
    """Run one worker in a fresh Python process; its result is the last line it prints."""
    command = [sys.executable, __file__, "--worker", name, "--device", args.device,
               "--repeats", str(args.repeats), "--new-tokens", str(args.new_tokens),
               "--prompt-tokens", str(args.prompt_tokens)]
    env = dict(os.environ, COURSE_CACHE_DIR=cache, HF_HUB_OFFLINE="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {name} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# The report ---------------------------------------------------------------------------------------
def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()  # processes running or waiting for a CPU, over 1, 5 and 15 minutes
    except (AttributeError, OSError):  # not on Windows
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:  # Linux
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def shown(load) -> str:
    return "unknown" if load is None else " ".join(f"{x:.2f}" for x in load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median reported)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    import importlib.util

    import torch

    cpu = cpu_name() + (f", {torch.cuda.get_device_name(args.device)}" if args.device.startswith("cuda") else "")
    print(f"SmolLM2-135M benchmark: device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {cpu}")
    load_before = load_average()
    print(f"load average before: {shown(load_before)}  (1, 5, 15 min)")
    print(f"prompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens (greedy), "
          f"medians over {args.repeats} repeats, every figure in a fresh process\n")

    rows = []  # (figure, value text, target text, met: True/False/None)
    with tempfile.TemporaryDirectory(prefix="smollm2-bench-") as cache:
        cold = run_worker("load", args, cache)
        assert not cold["from_cache"], "the cold load found a cache in an empty directory"
        warm_runs = [run_worker("load", args, cache) for _ in range(args.repeats)]
        assert all(w["from_cache"] for w in warm_runs), "the warm load did not use the cache"
        warm = statistics.median(w["seconds"] for w in warm_runs)
        ours = run_worker("ours", args, cache)
        theirs = run_worker("transformers", args, cache)
    # The ratio of runs taken in turn in one process (see worker_transformers), robust to bursts of load.
    speedup = theirs["ours_gen_tok_s"] / theirs["gen_tok_s"]

    rows.append(("cold load (dequantize + write cache)", f"{cold['seconds']:.2f} s", "", None))
    rows.append(("warm load (from the cache)", f"{warm:.2f} s", f"<= {TARGET_WARM_LOAD:.0f} s",
                 warm <= TARGET_WARM_LOAD))
    rows.append((f"prompt processing ({args.prompt_tokens} tokens, one pass)",
                 f"{ours['prompt_tok_s']:.0f} tok/s", "", None))
    rows.append((f"generation, ours ({args.new_tokens} tokens)", f"{ours['gen_tok_s']:.1f} tok/s", "", None))
    rows.append(("peak RSS, ours alone", f"{ours['peak_rss_mb']:.0f} MB", f"< {TARGET_PEAK_RSS} MB",
                 ours["peak_rss_mb"] < TARGET_PEAK_RSS))
    rows.append(("peak RSS, cold load (dequantizing)", f"{cold['peak_rss_mb']:.0f} MB", "", None))
    rows.append(("generation, transformers fp32", f"{theirs['gen_tok_s']:.1f} tok/s", "", None))
    rows.append(("generation ratio ours / transformers (in turn)", f"{speedup:.2f}x", f">= {TARGET_SPEEDUP}x",
                 speedup >= TARGET_SPEEDUP))
    if importlib.util.find_spec("llama_cpp") is not None:
        cpp = run_worker("llama_cpp", args, tempfile.gettempdir())
        rows.append(("generation, llama.cpp (Q4_1, not fp32)", f"{cpp['gen_tok_s']:.1f} tok/s", "", None))
    else:
        rows.append(("generation, llama.cpp", "skipped", "", None))

    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>12}  {'target':>10}  status")
    print(f"{'-' * width}  {'-' * 12}  {'-' * 10}  ------")
    for figure, value, target, met in rows:
        status = "" if met is None else ("met" if met else "MISSED")
        print(f"{figure:<{width}}  {value:>12}  {target:>10}  {status}")
    same = ours["tokens"] == theirs["tokens"]
    print("\nwarm loads: " + ", ".join(f"{w['seconds']:.2f}" for w in warm_runs) + " s")
    listed = lambda values: ", ".join(f"{x:.1f}" for x in values)  # noqa: E731
    print(f"generation runs, ours alone: {listed(ours['gen_tok_s_all'])} tok/s")
    print(f"in turn, transformers: {listed(theirs['gen_tok_s_all'])} tok/s; "
          f"ours: {listed(theirs['ours_gen_tok_s_all'])} tok/s (median {theirs['ours_gen_tok_s']:.1f})")
    print(f"greedy tokens identical to transformers': {same}")
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama.cpp: skipped, the llama_cpp package is not importable (pip install llama-cpp-python)")
    print(f"load average after: {shown(load_average())}  (this benchmark's own load included)")
    if load_before is not None and load_before[0] > 0.5 * (os.cpu_count() or 1):
        print("WARNING: the machine was busy before the start. When other processes take the cores, "
              "PyTorch's threads wait on each other and timings can drop several-fold: rerun when idle.")
    missed = [r[0] for r in rows if r[3] is False]
    print("\nALL TARGETS MET" if not missed else f"\nMISSED: {'; '.join(missed)}")


if __name__ == "__main__":
    main()
