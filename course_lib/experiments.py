"""The cached sweeps of experiments/pretraining.py (notebook C) and experiments/rl.py (notebook E), as
the notebooks use them: load a stored result and say where it came from, or run the sweep again on
this machine first.

The results live in the course repository (experiments/results/), not in the installed package, so
on an install without the repository (Colab) there is nothing to load: the functions say so.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
# Each sweep and the script (experiments/<script>.py) that makes it.
SWEEPS = {"isoflop": "pretraining", "mixture": "pretraining", "dedup": "pretraining", "kl": "rl"}


def load_sweep(name: str, rerun: bool = False, device: str | None = None) -> dict | None:
    """The stored result of `python experiments/<script>.py <name>`, or None if it is missing.

    rerun=True runs the sweep first (on the GPU if there is one, else on the CPU, unless `device`
    says otherwise), replacing the stored file: minutes on a GPU, longer on a laptop.
    """
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; the sweeps are {tuple(SWEEPS)}")
    script = REPO / "experiments" / f"{SWEEPS[name]}.py"
    path = RESULTS / f"{SWEEPS[name]}_{name}.json"
    if rerun:
        if not script.is_file():
            print(f"The sweep's script is in the course repository ({script.name}), not installed here.")
            return None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        command = [sys.executable, str(script), name, "--device", device]
        print("running:", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
    if not path.is_file():
        print(f"No stored result at {path}: it comes with the course repository. Run "
              f"`python experiments/{SWEEPS[name]}.py {name}` there to make it.")
        return None
    result = json.loads(path.read_text())
    print(f"{'Fresh' if rerun else 'Cached'} result of `{result['command']}` (seed {result['seed']}): "
          f"made on {result['device']} with torch {result['torch']} on {result['date']}, "
          f"{result['total_seconds']:.0f} s in all.")
    return result
