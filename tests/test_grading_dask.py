"""Grading on a Dask cluster (grade.py --scheduler), for real: a Dask scheduler and two worker
processes on 127.0.0.1, started from their own copy of the course (a worker machine's checkout),
grading for a process that runs from another copy.

* The cluster records the same scores, statuses, report rows and gradebook rows as the serial run
  of the same notebooks (conftest.serial_synthetic), and the workers write nothing into their
  checkout.
* A worker killed while it grades a submission loses nothing: the job runs again, every student
  is graded exactly once, and nothing the killed job started (nbgrader, its kernel) lives on.

Both run with the default --sandbox auto: bubblewrap where it works (CI), resource limits only
elsewhere; a serial and a Dask run of one comparison always use the same.
"""
from __future__ import annotations

import copy
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder.cluster import local_cluster
from conftest import LIMITS, SYNTHETIC  # noqa: E402  (tests/ is on sys.path under pytest)
from test_grading import by_id, comparable, gradebook_scores, run_grade, student_notebook, write_submissions

pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[test]')")

SLOW = "import time\ntime.sleep(4)  # in flight long enough to lose its worker\n"


@pytest.fixture(scope="module")
def cluster(course_factory):
    worker_root = course_factory("dask-worker")
    with local_cluster(worker_root, 2, worker_root.parent / "dask-logs") as address:
        yield address, worker_root


def solution_and_untouched(root: Path) -> dict:
    return {"solution": nbformat.read(root / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb", 4),
            "untouched": student_notebook(root, SYNTHETIC)}


def csv_rows(out: Path, students=None) -> list[dict]:
    rows = csv.DictReader((out / f"{SYNTHETIC}-grades.csv").open())
    return [r for r in rows if students is None or r["student"] in students]


# Of the serial run's students (conftest.serial_synthetic): graded, and tampered.
ON_DASK = ("solution", "untouched", "tampered")


@pytest.mark.slow
def test_dask_grading_matches_serial(cluster, course_factory, serial_synthetic):
    address, worker_root = cluster
    serial, dask_root = serial_synthetic, course_factory("dask-client")
    submissions = write_submissions(dask_root.parent / "submissions", SYNTHETIC, {
        st: nbformat.read(serial.submissions / st / f"{SYNTHETIC}.ipynb", 4) for st in ON_DASK})
    dask_out = dask_root.parent / "reports"
    proc, graded = run_grade(dask_root, SYNTHETIC, submissions, "--scheduler", address, *LIMITS,
                             out=dask_out, timeout=300)
    assert proc.returncode == 3, f"{proc.stdout}\n{proc.stderr}"
    assert f"Dask worker(s) at {address}" in proc.stdout
    assert {k: comparable(v) for k, v in graded.items()} == \
           {k: comparable(serial.students[k]) for k in ON_DASK}
    assert graded["solution"]["score"] == graded["solution"]["max_score"] > 0
    assert csv_rows(dask_out) == csv_rows(serial.out, ON_DASK)
    assert gradebook_scores(dask_root) == {k: v for k, v in gradebook_scores(serial.root).items()
                                           if k[0] in ON_DASK}
    # the progress bar's running count of each status, at its end
    assert "tampered=1, graded=2" in proc.stderr
    # every result came back to the grading process; the workers wrote nothing into their checkout
    graded_nb = dask_root / "autograder" / "autograded" / "solution" / SYNTHETIC / f"{SYNTHETIC}.ipynb"
    assert graded_nb.is_file() and (dask_out / f"{SYNTHETIC}-logs" / "solution.log").is_file()
    assert not [p.name for p in (worker_root / "autograder").iterdir()
                if p.name in ("gradebook.db", "submitted", "autograded")]


def running_job(worker_pid: int, student: str) -> list[psutil.Process]:
    """The nbgrader a worker runs for `student`, and every process below it, once the notebook's
    kernel runs; else []."""
    try:
        for job in psutil.Process(worker_pid).children():
            if f"--CourseDirectory.student_id={student}" in job.cmdline():
                below = [job, *job.children(recursive=True)]
                if any("ipykernel_launcher" in " ".join(p.cmdline()) for p in below):
                    return below
    except psutil.NoSuchProcess:
        pass
    return []


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(cluster, course_factory):
    from distributed import Client
    from nbgrader.api import Gradebook

    address, _ = cluster
    root = course_factory("dask-kill")
    cases = solution_and_untouched(root)
    slow = copy.deepcopy(cases["solution"])
    by_id(slow, "double_answer").source = SLOW + by_id(slow, "double_answer").source
    submissions = write_submissions(root.parent / "submissions", SYNTHETIC,
                                    {"slow": slow, "solution": cases["solution"]})
    out = root.parent / "reports"
    grading = subprocess.Popen([sys.executable, "-m", "autograder", "grade", SYNTHETIC, str(submissions),
                                "--out", str(out), "--scheduler", address], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Client(address, timeout=30, set_as_default=False) as client:
            workers = client.run(os.getpid)  # {address: pid}
        deadline, below = time.monotonic() + 120, []
        while not below:
            assert time.monotonic() < deadline and grading.poll() is None, "never saw the job run"
            time.sleep(0.2)
            pid, below = next(((pid, found) for pid in workers.values()
                               if (found := running_job(pid, "slow"))), (None, []))
        os.kill(pid, signal.SIGKILL)  # mid-run: nbgrader is executing the notebook
        _, alive = psutil.wait_procs(below, timeout=15)
        assert alive == [], f"outlived the killed worker: {[p.cmdline() for p in alive]}"
        stdout, stderr = grading.communicate(timeout=240)
    finally:
        if grading.poll() is None:
            grading.kill()
            grading.communicate()
    assert grading.returncode == 0, f"{stdout}\n{stderr}"
    rows = csv_rows(out)
    assert sorted(r["student"] for r in rows) == ["slow", "solution"]
    assert all(r["status"] == "graded" and r["score"] == r["max_score"] != "0" for r in rows), rows
    assert sorted(line.split()[1] for line in stdout.splitlines()
                  if line.lstrip().startswith("[")) == ["slow", "solution"]  # each counted once
    with Gradebook(f"sqlite:///{root / 'autograder' / 'gradebook.db'}", "how-llms-actually-work") as gb:
        done = gb.assignment_submissions(SYNTHETIC)
        assert sorted(s.student.id for s in done) == ["slow", "solution"]
        assert [s.score for s in done] == [s.max_score for s in done]


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from autograder import grade

    monkeypatch.setattr(grade, "CONNECT_SECONDS", 2)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(grade.GradingError, match="cannot reach the Dask scheduler at tcp://127"):
        grade.dask_client(f"tcp://127.0.0.1:{port}")
