"""python -m autograder STEP [ARGS]: the instructor's steps, each with its own --help."""
import sys

from course_lib.cli import run_step

STEPS = {
    "generate": "regenerate the student notebooks in notebooks/ from solutions/ (--check: compare)",
    "release": "zip the student notebooks for an LMS, after checking they are in sync",
    "collect": "copy the submissions of an LMS bulk download into one folder per student",
    "grade": "grade the submissions with nbgrader, in parallel, sandboxed, re-checked",
    "feedback": "write per-student HTML feedback without hidden tests",
}

if __name__ == "__main__":
    sys.exit(run_step("autograder", STEPS, sys.argv[1:]))
