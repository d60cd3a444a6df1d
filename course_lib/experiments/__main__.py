"""python -m course_lib.experiments SCRIPT [ARGS]: run one of the stored experiments again (see
course_lib.experiments; each script has its own --help)."""
import sys

from course_lib.cli import run_step

SCRIPTS = {
    "recall": "B: the recall race, more steps, longer distances, several seeds",
    "pretraining": "C: the IsoFLOP, mixture and deduplication sweeps (isoflop, mixture, dedup, all)",
    "base_model": "D: the course's base TinyGPT, pre-trained as notebook C does, longer",
    "rl": "E: the KL-leash sweep (kl)",
}

if __name__ == "__main__":
    sys.exit(run_step("course_lib.experiments", SCRIPTS, sys.argv[1:]))
