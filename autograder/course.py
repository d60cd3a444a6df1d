"""Where the course keeps things: the one module that knows the folder layout, the course id, the
assignments, and what grading must build before a notebook runs.

Every path is computed from this file's location, so a copy of the course elsewhere (the tests
grade in a temporary copy) grades itself. Commands that take `--root` pass another root to the
functions here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the course root
COURSE_ID = "how-llms-actually-work"

# Relative to a course root. nbgrader_config.py gives nbgrader these same folders.
SOLUTIONS = "solutions"                  # solutions/<a>/<a>.ipynb: the instructor's sources
NOTEBOOKS = "notebooks"                  # notebooks/<a>/<a>.ipynb: what learners receive
AUTOGRADER = "autograder"
SUBMITTED = f"{AUTOGRADER}/submitted"    # nbgrader's <student>/<a>/<a>.ipynb
AUTOGRADED = f"{AUTOGRADER}/autograded"
FEEDBACK = f"{AUTOGRADER}/feedback"
REPORTS = f"{AUTOGRADER}/reports"
RELEASES = f"{AUTOGRADER}/release"
RELEASE_SOLUTION = f"{AUTOGRADER}/release_solution"
SOURCE_WITH_TESTS = f"{AUTOGRADER}/source_with_tests"
GRADEBOOK = f"{AUTOGRADER}/gradebook.db"
CONFIG = f"{AUTOGRADER}/nbgrader_config.py"
# Grading state and results inside autograder/: never committed, never copied with the course.
STATE = tuple(Path(p).name for p in (GRADEBOOK, SUBMITTED, AUTOGRADED, FEEDBACK, REPORTS, RELEASES,
                                     RELEASE_SOLUTION, SOURCE_WITH_TESTS))

# What each assignment's notebook reads from a cache that grading builds beforehand, outside the
# sandbox (whose disk is read-only): SmolLM2's expanded weights (and its int8 ones), TinyGPT's tokenized corpus.
WARM_UP = {
    "smollm2": "from course_lib.models.smollm import load_smollm2; load_smollm2(progress=False)",
    "smollm2_int8": "from course_lib.models.smollm import load_smollm2; load_smollm2(precision='int8', progress=False)",
    "corpus": "from course_lib.data.pretraining import load_corpus; load_corpus()",
}
NEEDS = {
    "00_onramp": ("smollm2",),
    "A_lifecycle": ("smollm2", "smollm2_int8"),
    "B_why_transformers_won": ("smollm2",),
    "C_pretraining": ("smollm2", "corpus"),
    "D_post_training": ("smollm2",),
    "E_reinforcement_learning": ("smollm2",),
}


class UnknownAssignment(ValueError):
    """An assignment name with no source notebook: the message lists the ones there are."""


def source(assignment: str, root: Path = ROOT) -> Path:
    """The instructor's source notebook of an assignment (which may not exist)."""
    return root / SOLUTIONS / assignment / f"{assignment}.ipynb"


def student(assignment: str, root: Path = ROOT) -> Path:
    """The student notebook of an assignment, as released (which may not exist)."""
    return root / NOTEBOOKS / assignment / f"{assignment}.ipynb"


def assignments(root: Path = ROOT) -> list[str]:
    """Every assignment with a source notebook, sorted."""
    folder = root / SOLUTIONS
    return sorted(p.name for p in folder.iterdir() if source(p.name, root).is_file()) \
        if folder.is_dir() else []


def find(assignment: str, root: Path = ROOT) -> Path:
    """The source notebook of `assignment`, or UnknownAssignment naming the ones available."""
    path = source(assignment, root)
    if not path.is_file():
        raise UnknownAssignment(f"unknown assignment {assignment!r}: there is no "
                                f"{SOLUTIONS}/{assignment}/{assignment}.ipynb "
                                f"(available: {', '.join(assignments(root)) or 'none'})")
    return path


def copy(to: Path, names=(), root: Path = ROOT) -> Path:
    """A throwaway copy of the course for grading at `to`: autograder/ (code and configuration,
    no grading state), and solutions/ and notebooks/ of the assignments `names`."""
    skip = shutil.ignore_patterns(*STATE, "__pycache__")
    shutil.copytree(root / AUTOGRADER, to / AUTOGRADER, ignore=skip, dirs_exist_ok=True)
    for name in names:
        for top in (SOLUTIONS, NOTEBOOKS):
            if (root / top / name).is_dir():
                shutil.copytree(root / top / name, to / top / name, dirs_exist_ok=True)
    (to / SOLUTIONS).mkdir(exist_ok=True)
    (to / NOTEBOOKS).mkdir(exist_ok=True)
    return to


def nbgrader_command(*args: str, root: Path = ROOT) -> list[str]:
    """`nbgrader ARGS` with the configuration of the course at `root`. Run it from `root` (see
    nbgrader_run): nbgrader puts its working directory on the path, where the configuration then
    finds this package; and there is deliberately no nbgrader_config.py at the top level."""
    # Without ".py": nbgrader looks for the name plus ".py", and traitlets loads it so.
    return [sys.executable, "-m", "nbgrader", *args,
            f"--NbGrader.config_file={root / CONFIG.removesuffix('.py')}"]


def nbgrader_env(env: dict | None = None) -> dict:
    env = dict(env if env is not None else os.environ)
    # nbgrader runs the `alembic` command to create the gradebook: find it beside this Python even
    # when its virtual environment is not activated (as under `make test`).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader_run(*args: str, root: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command of the course at `root`, its output (both streams) in .stdout."""
    return subprocess.run(nbgrader_command(*args, root=root), cwd=root, text=True,
                          env=nbgrader_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
