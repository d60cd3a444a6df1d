"""Grading a class: wall time of `python -m autograder grade` with one worker, with several, and
on Dask. From the course root (it grades with the course's `autograder` package):

    python -m bench.grading                        # 30 on-ramp submissions: 1 worker, all cores,
                                                   # then a local Dask cluster of 2 workers
    python -m bench.grading --submissions 60 --workers 1 2 4 --dask-workers 4

Builds a throwaway copy of the course (the repository's gradebook is never touched), writes N
synthetic submissions of the on-ramp, cycling through four kinds (the solution, the untouched
student notebook, and the solution with softmax_with_temperature or generate put back to the stub),
grades them once per worker count, then through a Dask scheduler and --dask-workers worker
processes (one thread each) on 127.0.0.1 (grade --scheduler; the cluster's start is not timed;
0 skips it), sandbox on, and prints wall time, seconds per submission and the speedup over the
first run. It also checks that every run recorded the same scores and statuses.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import course
from autograder.cluster import local_cluster
from course_lib.measure import machine_summary

ASSIGNMENT = "00_onramp"
STUBBED = ("softmax_with_temperature", "generate")


def submissions(root: Path, folder: Path, count: int) -> None:
    solution = nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    student = nbformat.read(root / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in student.cells
             if c.metadata.get("nbgrader", {}).get("grade_id") in STUBBED}
    kinds = [solution, student]
    for name in STUBBED:
        nb = copy.deepcopy(solution)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == name:
                cell.source = stubs[name]
        kinds.append(nb)
    for i in range(count):
        (folder / f"s{i:03d}").mkdir(parents=True)
        nbformat.write(kinds[i % len(kinds)], folder / f"s{i:03d}" / f"{ASSIGNMENT}.ipynb")


def grade(root: Path, folder: Path, how: list[str], out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(folder), *how,
                           "--out", str(out)], cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        sys.exit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
    report = json.loads((out / f"{ASSIGNMENT}-grades.json").read_text())
    return seconds, {s["student"]: (s["score"], s["status"]) for s in report["students"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--dask-workers", type=int, default=2,
                        help="worker processes of the local Dask cluster (0: no Dask run)")
    args = parser.parse_args()
    print(machine_summary("cpu"))  # grading runs on the CPU (COURSE_DEVICE=cpu)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        results, base = {}, None
        runs = [(f"{workers} worker(s)", ["--workers", str(workers)]) for workers in args.workers]
        if args.dask_workers:
            runs.append((f"Dask, {args.dask_workers} worker(s)", None))  # None: --scheduler
        for i, (label, how) in enumerate(runs):
            root = course.copy(tmp / f"course-{i}", [ASSIGNMENT])
            folder = tmp / f"submissions-{i}"
            submissions(root, folder, args.submissions)
            with (local_cluster(root, args.dask_workers, tmp / "dask-logs") if how is None
                  else contextlib.nullcontext()) as address:
                seconds, graded = grade(root, folder, how or ["--scheduler", address],
                                        tmp / f"reports-{i}")
            results[label] = graded
            base = base or seconds
            print(f"{args.submissions} submissions, {label}: {seconds:6.1f} s, "
                  f"{seconds / args.submissions:5.2f} s per submission, speedup {base / seconds:4.2f}x",
                  flush=True)
        first = next(iter(results.values()))
        same = all(r == first for r in results.values())
        print(f"scores and statuses identical across all runs: {'yes' if same else 'NO'}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
