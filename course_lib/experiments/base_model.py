"""The course's base TinyGPT: what notebook D fine-tunes when the learner has not run notebook C.

    python -m course_lib.experiments base_model             # the CPU default model, 1,500 steps (about 10 min on 2 cores)
    python -m course_lib.experiments base_model --steps 200 --out /tmp/base.pt

It pre-trains TinyGPT exactly as notebook C does (same corpus, same settings, seed 0), only for longer,
and saves the weights in float16 together with the corpus tokenizer, so that the file works on any
Python version (the corpus, and so the tokenizer, is built from the Python that runs it). The
committed file course_lib/assets/tinygpt_base.pt was made by this script; it says by what in its
"made_by" record (printed by course_lib.train.sft.load_base_model).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from course_lib.data.pretraining import SOURCES, load_corpus
from course_lib.measure import device_name
from course_lib.models.tinygpt import TinyGPT
from course_lib.train.pretrain import Pretrainer, default_configs

OUT = Path(__file__).resolve().parent.parent / "assets" / "tinygpt_base.pt"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    # The CPU model on every device: the shipped file must run on every learner's laptop.
    model_cfg, train_cfg = default_configs("cpu")
    corpus = load_corpus()
    torch.manual_seed(0)
    model = TinyGPT(model_cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = Pretrainer(model, corpus, train_cfg, seed=0, device=device)
    start = time.perf_counter()
    trainer.run(steps=args.steps, live=False, progress=True)
    model.to("cpu").save(args.out, tokenizer=corpus.tokenizer, half=True)
    record = {"command": "python -m course_lib.experiments base_model" + (f" --steps {args.steps}" if args.steps != 1500 else ""),
              "steps": args.steps, "tokens": trainer.tokens, "seconds": round(time.perf_counter() - start),
              "device": device_name(torch.device(device)), "torch": torch.__version__,
              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
              "val_loss": {s: round(trainer.val_loss(s), 3) for s in SOURCES}}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
