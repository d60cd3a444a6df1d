"""The course's stored experiments: runs too slow for a live cell, made by the scripts beside this
file and stored in results/, inside the installed package (so a course installed from a wheel, as
on Colab, shows them too). The notebooks load a result and say where it came from, or run the
script again on this machine first:

    python -m course_lib.experiments recall              # B: the recall race, bigger (recall.py)
    python -m course_lib.experiments pretraining isoflop  # C: the IsoFLOP, mixture and dedup sweeps
    python -m course_lib.experiments base_model          # D: the course's base TinyGPT (assets/)
    python -m course_lib.experiments rl kl               # E: the KL-leash sweep
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Each stored result: the script that makes it (python -m course_lib.experiments SCRIPT [NAME]) and
# its file in results/.
SWEEPS = {"isoflop": ("pretraining", "pretraining_isoflop.json"),
          "mixture": ("pretraining", "pretraining_mixture.json"),
          "dedup": ("pretraining", "pretraining_dedup.json"),
          "kl": ("rl", "rl_kl.json"),
          "recall": ("recall", "recall.json")}


def command(name: str) -> list[str]:
    """The command line that makes the stored result `name`, on this machine."""
    script = SWEEPS[name][0]
    return ["python", "-m", "course_lib.experiments", script, *([name] if name != script else [])]


def load_sweep(name: str, rerun: bool = False, device: str | None = None) -> dict | None:
    """The stored result `name` (one of SWEEPS), or None, saying so, if it is missing.

    rerun=True runs its script first (on the GPU if there is one, else on the CPU, unless `device`
    says otherwise), replacing the stored file: minutes on a GPU, longer on a laptop.
    """
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; the sweeps are {tuple(SWEEPS)}")
    path = RESULTS / SWEEPS[name][1]
    if rerun:
        import torch  # only to choose the device: the script loads it anyway

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        print("running:", " ".join(command(name)), "--device", device, flush=True)
        subprocess.run([sys.executable, *command(name)[1:], "--device", device], check=True)
    if not path.is_file():
        print(f"No stored result {path.name} in {RESULTS}: the course's install is incomplete. "
              f"Reinstall the course, or run `{' '.join(command(name))}` to make it (minutes to an hour).")
        return None
    result = json.loads(path.read_text())
    seeds = result.get("seeds", [result.get("seed")])
    made = f"`{result['command']}`" if "command" in result else f"`{' '.join(command(name))}`"
    print(f"{'Fresh' if rerun else 'Cached'} result of {made} (seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(map(str, seeds))}): made on {result['device']} with torch {result['torch']}"
          f"{' on ' + result['date'] if 'date' in result else ''}, {result['total_seconds']:.0f} s in all.")
    return result
