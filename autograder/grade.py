"""Grade a class's submissions with nbgrader: in parallel, each notebook in a sandbox, and say
loudly what went wrong.

    python -m autograder grade ASSIGNMENT SUBMISSIONS [--workers N | --scheduler tcp://HOST:PORT]
        [--feedback] [--out DIR] [--timeout S] [--answer-timeout S] [--submission-timeout S]
        [--memory SIZE] [--processes N] [--output-limit SIZE] [--sandbox auto|bwrap|off]
        [--hide PATH ...] [--integrity score|report]

SUBMISSIONS holds one folder per student, named by the student id, with the notebook inside
(`python -m autograder collect` makes it from an LMS download):

    SUBMISSIONS/<student>/<ASSIGNMENT>.ipynb                 (as collected), or
    SUBMISSIONS/<student>/<ASSIGNMENT>/<ASSIGNMENT>.ipynb    (nbgrader's own layout)

How it runs. nbgrader has no parallel mode, and its gradebook is one SQLite file, so each
submission is one job: `nbgrader autograde --student S` against a private copy of the gradebook,
with its kernel in the sandbox of sandbox.py (no network, the machine read-only, grading folders
hidden, memory, processes, file size and output capped). N jobs run at once (--workers, default:
the number of cores); as each finishes, this process alone copies its grades into the real
gradebook, so serial and parallel runs record the same grades. With --scheduler, the jobs run on
the workers of a Dask cluster instead (each worker machine: the course checked out and installed,
and bubblewrap; see autograder/README.md), and come back to this process the same way; a job whose
worker dies runs again on another one, and is merged once.

Results go to DIR (default autograder/reports/): <ASSIGNMENT>-grades.csv (one row per student:
score, max score, status, reason), <ASSIGNMENT>-grades.json (the same, with every graded cell)
and <ASSIGNMENT>-logs/<student>.log (nbgrader's log of each job).

A student's status is the most serious of what happened (the reason lists all of it):
  unreadable     the file is not a notebook (empty, malformed JSON): 0
  no notebook    the folder holds no notebook: 0
  not graded     nbgrader failed on it: 0, fix by hand and grade again
  sandbox        the sandbox stopped something: memory, processes, output, a crash, or a
                 blocked read, write or connection; the cells before it keep their grades
  integrity      an answer used the course's own answers, patched or bypassed its checks, or is
                 the reference's code renamed (integrity.py re-checks every passed test cell out
                 of the learner's reach): the cells it gamed score 0 (--integrity report: kept)
  timed out      a cell (or the whole notebook) ran past its limit; the other cells are graded
  tampered       test cells or nbgrader metadata (points, ids, flags) were edited: graded with
                 the release's own cells and metadata, as if untouched
  missing cells  cells were deleted, or the notebook is from another release: deleted test
                 cells are restored from the release and graded, never silently dropped
  graded         none of the above

Exit status: 0 all graded without problems; 3 graded, with problems (see the report);
1 bad input or nbgrader failure.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil
from tqdm import tqdm

from autograder import course, integrity, sandbox
from autograder.collect import STUDENT_ID
from autograder.course import COURSE_ID, ROOT
from course_lib.paths import CACHE_ENV

SUBMITTED = ROOT / course.SUBMITTED
AUTOGRADED = ROOT / course.AUTOGRADED
DB_URL = f"sqlite:///{ROOT / course.GRADEBOOK}"
NBGRADER_KEYS = ("grade", "solution", "locked", "points")

EXIT_OK, EXIT_FATAL, EXIT_PROBLEMS = 0, 1, 3
CONNECT_SECONDS = 30      # --scheduler: to reach the scheduler, and for a first worker to join
TASK_RETRIES = 2          # --scheduler: a task that raised runs again (a worker's death is not this)

# The status of a student: the most serious status among their problems, in this order.
STATUSES = ("unreadable", "no notebook", "not graded", "sandbox", "integrity", "timed out",
            "tampered", "missing cells", "graded")
KIND_STATUS = {
    "unreadable_notebook": "unreadable", "missing_notebook": "no notebook",
    "grading_failed": "not graded",
    "memory_limit": "sandbox", "process_limit": "sandbox", "output_limit": "sandbox",
    "kernel_died": "sandbox", "blocked": "sandbox",
    "timeout": "timed out", "submission_timeout": "timed out",
    "metadata_repaired": "tampered", "edited_locked_cell": "tampered", "duplicate_cell": "tampered",
    "deleted_grade_cell": "missing cells", "deleted_answer_cell": "missing cells",
    "deleted_locked_cell": "missing cells", "unknown_cell": "missing cells",
    "other_release": "missing cells",
    "recheck_failed": "integrity", "recheck_stopped": "integrity", "course_internals": "integrity",
    "suspicious_code": "integrity", "pasted_reference": "integrity",
    "renamed_notebook": "graded", "integrity_unchecked": "graded",
}


class GradingError(Exception):
    """Bad input or a failed nbgrader step: reported as one clear message, exit status 1."""


@dataclass
class Student:
    student: str
    notebook: Path | None = None        # the submitted file, None when unusable
    problems: list[dict] = field(default_factory=list)
    missing_grade_cells: list[str] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)

    def problem(self, kind: str, message: str, cell: str | None = None) -> None:
        if not any(p["kind"] == kind and p["cell"] == cell for p in self.problems):
            self.problems.append({"kind": kind, "cell": cell, "message": message})

    @property
    def status(self) -> str:
        found = {KIND_STATUS[p["kind"]] for p in self.problems}
        return next((s for s in STATUSES if s in found), "graded")


def size(text: str) -> int:
    """'2G', '512M', '64k' or a number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say 2G, 512M or 64k)")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])

# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------
def check_assignment(assignment: str) -> Path:
    """The source notebook solutions/<assignment>/<assignment>.ipynb, or a clear error."""
    try:
        return course.find(assignment)
    except course.UnknownAssignment as exc:
        raise GradingError(str(exc)) from None


def find_submissions(assignment: str, folder: Path) -> list[Student]:
    if not folder.exists():
        raise GradingError(f"submissions folder {folder} does not exist")
    if not folder.is_dir():
        raise GradingError(f"{folder} is a file; expected a folder with one sub-folder per student "
                           f"(<student>/{assignment}.ipynb)")
    students = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.name.startswith("collect-report."):  # collect.py's report, beside the students
            continue
        if not entry.is_dir():
            print(f"warning: ignoring {entry.name}: expected one folder per student, "
                  f"<student>/{assignment}.ipynb", file=sys.stderr)
            continue
        if not STUDENT_ID.fullmatch(entry.name):
            raise GradingError(f"folder name {entry.name!r} is not usable as a student id "
                               "(letters, digits and _ . @ + - only)")
        st = Student(entry.name)
        canonical = [entry / f"{assignment}.ipynb", entry / assignment / f"{assignment}.ipynb"]
        found = [p for p in canonical if p.is_file()]
        if not found:
            others = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if len(others) == 1:
                found = others
                st.problem("renamed_notebook", f"notebook submitted as {others[0].relative_to(entry)}"
                           f", graded as {assignment}.ipynb")
            else:
                what = f"{len(others)} other notebooks" if others else "nothing usable"
                st.problem("missing_notebook", f"no {assignment}.ipynb in {entry.name}/ ({what}): scored 0")
        if found:
            try:
                nb = nbformat.read(found[0], as_version=4)
                if not isinstance(nb.get("cells"), list):
                    raise ValueError("no cells")
                st.notebook = found[0]
            except Exception as exc:  # not JSON, not a notebook
                st.problem("unreadable_notebook",
                           f"{found[0].relative_to(folder)} is not a readable notebook ({exc}): scored 0")
        students.append(st)
    if not students:
        raise GradingError(f"no student folders in {folder} (expected <student>/{assignment}.ipynb)")
    return students


# --------------------------------------------------------------------------------------------
# nbgrader
# --------------------------------------------------------------------------------------------
# nbgrader
# --------------------------------------------------------------------------------------------
def release_notebook(assignment: str, work: Path, db: Path | None = None) -> nbformat.NotebookNode:
    """Record the source in the gradebook (or in a new one at `db`); return the student version
    the learners received."""
    proc = course.nbgrader_run("generate_assignment", assignment, "--force",
                               f"--CourseDirectory.release_directory={work}",
                               *([f"--CourseDirectory.db_url=sqlite:///{db}"] if db else []))
    released = work / assignment / f"{assignment}.ipynb"
    if proc.returncode != 0 or not released.is_file():
        raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stdout}")
    return nbformat.read(released, as_version=4)


def nbgrader_cells(nb) -> dict[str, list]:
    cells: dict[str, list] = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            cells.setdefault(grade_id, []).append(cell)
    return cells


def precheck(st: Student, release, source) -> nbformat.NotebookNode | None:
    """Compare the submission with the released notebook and report every difference that matters.

    Returns the submission with its nbgrader metadata restored from the release when it had been
    changed (nbgrader would otherwise refuse it with "Inconsistent checksums" and record 0), and
    taken off cells the release does not have (nbgrader would fail on them); None if unchanged.
    """
    sub = nbformat.read(st.notebook, as_version=4)
    want, have = nbgrader_cells(release), nbgrader_cells(sub)
    full = {k: v[0].source.strip() for k, v in nbgrader_cells(source).items()}  # hidden tests too
    repaired = False
    missing = [g for g in want if g not in have]
    unknown = sorted(have.keys() - want.keys())
    if missing and unknown:
        st.problem("other_release", f"the notebook's cells do not match this release of the "
                   f"assignment (cells {', '.join(unknown)} are not in it; {', '.join(missing)} are "
                   "missing): another release? Graded against this release")
    for grade_id, (ref,) in want.items():
        meta = ref.metadata.nbgrader
        if grade_id not in have:
            if meta.get("grade"):
                st.missing_grade_cells.append(grade_id)
                points = float(meta.get("points", 0))
                st.problem("deleted_grade_cell", f"grade cell {grade_id} ({points:g} point"
                           f"{'' if points == 1 else 's'}) was missing: restored from the release "
                           "and graded", grade_id)
            elif meta.get("solution"):
                st.problem("deleted_answer_cell", f"answer cell {grade_id} was missing", grade_id)
            else:
                st.problem("deleted_locked_cell", f"locked cell {grade_id} was missing", grade_id)
            continue
        cells = have[grade_id]
        if len(cells) > 1:
            st.problem("duplicate_cell", f"{len(cells)} cells carry the id {grade_id} "
                       "(a copied cell?); nbgrader keeps the last one", grade_id)
        cell = cells[-1]  # what nbgrader's DeduplicateIds keeps
        got = cell.metadata.get("nbgrader", {})
        changed = [f"{k}: {meta.get(k)!r} -> {got.get(k)!r}" for k in NBGRADER_KEYS
                   if meta.get(k) != got.get(k) and not (k == "points" and not meta.get("grade"))]
        if cell.cell_type != ref.cell_type:
            changed.append(f"cell type: {ref.cell_type} -> {cell.cell_type}")
        if changed:
            cell.metadata.nbgrader = dict(meta)  # nbgrader itself restores a cell type
            repaired = True
            st.problem("metadata_repaired", f"nbgrader metadata of cell {grade_id} had been "
                       f"changed ({'; '.join(changed)}); graded with the release's", grade_id)
        if meta.get("locked") and cell.source.strip() not in (ref.source.strip(), full.get(grade_id)):
            st.problem("edited_locked_cell", f"locked cell {grade_id} was edited; it was graded as "
                       "released (nbgrader restores it from the source)", grade_id)
    for grade_id in unknown:
        # nbgrader fails the whole notebook on a graded cell it does not know: run it as plain code.
        for cell in have[grade_id]:
            del cell.metadata["nbgrader"]
        repaired = True
        if not (missing and unknown):
            st.problem("unknown_cell", f"cell id {grade_id} is not in the assignment (run as a "
                       "plain cell, not graded)", grade_id)
    return sub if repaired else None


def stage(assignment: str, st: Student, release, source) -> None:
    """Check a submission against the release and put it where nbgrader looks for it."""
    try:
        repaired = precheck(st, release, source)
    except Exception as exc:  # odd metadata: let nbgrader judge it, but say so
        repaired = None
        st.problem("grading_failed", f"could not compare with the release: {exc!r}")
    dest = SUBMITTED / st.student / assignment / f"{assignment}.ipynb"
    if st.notebook.resolve() != dest.resolve():  # not already in nbgrader's layout
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir(parents=True)
        shutil.copyfile(st.notebook, dest)
    if repaired is not None:
        nbformat.write(repaired, dest)


# --------------------------------------------------------------------------------------------
# parallel, sandboxed autograding: one job per submission
# --------------------------------------------------------------------------------------------
@dataclass
class Limits:
    memory_bytes: int = 4 << 30
    max_processes: int = 256
    file_bytes: int = 256 << 20
    output_bytes: int = 1 << 20
    submission_seconds: int = 1800


@dataclass
class Grading:
    """What every job of one grading run shares, on the machine that runs grade.py."""
    assignment: str
    env: dict                     # the run's settings (COURSE_FAST, timeouts, threads) for every job
    limits: Limits
    mode: str                     # "bwrap", "limits" or "off"
    hide: list[str]               # this machine's folders no submission may see (jobs add their own)
    scratch: Path                 # the jobs' gradebooks, as they come back; hidden from every sandbox
    template_db: Path             # the gradebook with the assignment recorded, copied per job
    logs: Path
    integrity: str = "score"      # what an integrity finding does: "score" (0 for its cells) or "report"


@dataclass
class Job:
    student: str
    db: Path | None = None        # the job's gradebook, written here when it comes back
    returncode: int | None = None
    timed_out: bool = False
    events: dict = field(default_factory=dict)
    seconds: float = 0.0
    log: Path | None = None
    hidden: list[str] = field(default_factory=list)  # what the job's sandbox hid, on its machine
    integrity: dict = field(default_factory=dict)


# What a job sends back besides the gradebook, notebook and log: plain data, the fields of its Job.
JOB_DATA = ("returncode", "timed_out", "events", "seconds", "hidden", "integrity")

# Linux: nbgrader asks for SIGKILL when the thread that started it ends, so neither it nor the
# kernel it runs (which dies with nbgrader) outlives a killed grading process or Dask worker. The
# starting thread waits for nbgrader, so only a death of the process sends the signal.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def jobs_folder() -> Path:
    """This machine's folder for the jobs of this user, whichever process runs them: each sandbox
    hides it whole, so no submission sees another's files, even from another worker process."""
    folder = Path(tempfile.gettempdir()) / f"grade-jobs-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():  # planted by someone else
        raise GradingError(f"{folder} is not a folder of this user's: remove it and grade again")
    # A job folder is named j<pid>-...: one whose process is gone (a killed Dask worker) is stale.
    for stale in folder.iterdir():
        if (m := re.fullmatch(r"j(\d+)-.+", stale.name)) and not psutil.pid_exists(int(m.group(1))):
            with contextlib.suppress(OSError, ValueError):  # no sandbox file, or one cut short
                if (cgroup := sandbox.Sandbox.load(stale / "sandbox.json").cgroup) is not None:
                    cgroup.remove()
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def source_digest(source_path: Path) -> str:
    """The sha256 of a source notebook: a worker grades only the grading machine's version."""
    return hashlib.sha256(source_path.read_bytes()).hexdigest()


_caches: dict[str, dict] = {}
_caches_lock = threading.Lock()


def machine_caches(source_path: Path, env: dict) -> dict:
    """warm_caches, once per assignment in this process: the jobs on one machine share its caches."""
    with _caches_lock:
        if str(source_path) not in _caches:
            _caches[str(source_path)] = warm_caches(source_path, env)
        return _caches[str(source_path)]


def job_result(student: str, **done) -> dict:
    """What a job sends back: plain data, as it may come from another machine."""
    return {"student": student, "returncode": None, "timed_out": False, "events": {},
            "seconds": 0.0, "hidden": [], "integrity": {}, "gradebook": None, "notebook": None,
            "log": "", **done}


def grade_submission(student: str, notebook: bytes, gradebook: bytes, *, assignment: str,
                     source_sha256: str, env: dict, limits: dict, mode: str,
                     hide: list[str]) -> dict:
    """One submission's job, on whichever machine runs it (a thread of grade.py, or a Dask worker):
    `nbgrader autograde` in a private folder of this machine, against `gradebook` (the template),
    with the kernel in a sandbox. Everything comes in and goes back as plain data (job_result);
    paths are this machine's: its own checkout of the course, its caches, its folders to hide."""
    started = time.perf_counter()
    source_path = check_assignment(assignment)
    if source_digest(source_path) != source_sha256:
        raise GradingError(f"{platform.node()} has another version of {source_path.relative_to(ROOT)}"
                           " than the grading machine: check out the same course version there")
    limits = Limits(**limits)
    env = {**os.environ, **env}
    if mode != "off":
        env.update(machine_caches(source_path, env))
    # short: Unix socket paths are limited to 107 bytes
    work = Path(tempfile.mkdtemp(prefix=f"j{os.getpid()}-", dir=jobs_folder()))
    cgroup = None
    try:
        (work / "ipc").mkdir()
        db = work / "gradebook.db"
        db.write_bytes(gradebook)
        submitted = work / "submitted" / student / assignment / f"{assignment}.ipynb"
        submitted.parent.mkdir(parents=True)
        submitted.write_bytes(notebook)
        hidden = hidden_paths([*hide, work.parent])
        if mode != "off":
            bwrap = sandbox.bubblewrap() if mode == "bwrap" else None
            if mode == "bwrap" and bwrap is None:
                raise GradingError(f"bubblewrap is missing or cannot create namespaces on "
                                   f"{platform.node()}: install it there (apt install bubblewrap)")
            cgroup = sandbox.Cgroup.create(f"grade-{work.name}", limits.memory_bytes,
                                           limits.max_processes)
            box = sandbox.Sandbox(scratch=str(work), hide=hidden, bwrap=bwrap, cgroup=cgroup,
                                  memory_bytes=limits.memory_bytes,
                                  max_processes=limits.max_processes,
                                  file_bytes=limits.file_bytes, output_bytes=limits.output_bytes)
            box.save(work / "sandbox.json")
            env[sandbox.ENV_VAR] = str(work / "sandbox.json")
        # The course's configuration (this checkout's autograder/), with every path of the job in
        # its own folder: nothing is written into the checkout.
        cmd = course.nbgrader_command(
            "autograde", assignment, "--force", f"--CourseDirectory.student_id={student}",
            f"--CourseDirectory.db_url=sqlite:///{db}", f"--CourseDirectory.root={work}",
            "--CourseDirectory.submitted_directory=submitted",
            "--CourseDirectory.autograded_directory=autograded",
            f"--CourseDirectory.source_directory={ROOT / course.SOLUTIONS}", "--log-level=INFO")
        timed_out = False
        with (work / "nbgrader.log").open("wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=course.nbgrader_env(env), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent if _prctl else None)
            try:
                returncode = proc.wait(timeout=limits.submission_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = proc.wait()
        graded = work / "autograded" / student / assignment / f"{assignment}.ipynb"
        # While the sandbox (its settings, its cgroup) is still there: the integrity re-check.
        checked = integrity.run(source_path, submitted, passed_cells(db, assignment, student), work,
                                integrity.learner_command(box if mode != "off" else None), env,
                                limits.submission_seconds) if returncode == 0 else {}
        return job_result(student, returncode=returncode, timed_out=timed_out, integrity=checked,
                          events=cgroup.events() if cgroup else {},
                          seconds=time.perf_counter() - started, hidden=hidden,
                          gradebook=db.read_bytes(),
                          notebook=graded.read_bytes() if graded.is_file() else None,
                          log=(work / "nbgrader.log").read_text(encoding="utf-8", errors="replace"))
    finally:
        if cgroup is not None:
            cgroup.remove()       # kills whatever the submission left running
        shutil.rmtree(work, ignore_errors=True)


def passed_cells(db: Path, assignment: str, student: str) -> list[str]:
    """The graded cells that earned points in a job's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db}", COURSE_ID) as gb:
        try:
            done = gb.find_submission(assignment, student)
        except MissingEntry:
            return []
        return [g.name for nb in done.notebooks for g in nb.grades if (g.auto_score or 0) > 0]


def integrity_findings(st: Student, checked: dict) -> set[str]:
    """Report the integrity re-check's findings as the student's problems; the cells they name."""
    if checked.get("error"):
        st.problem("integrity_unchecked", f"{checked['error']}: the scores are nbgrader's, unchecked")
    crashed = any(KIND_STATUS[p["kind"]] == "sandbox" for p in st.problems)
    flagged = set()
    for finding in checked.get("findings", []):
        if finding["kind"] == "recheck_stopped" and crashed:  # it stopped as the kernel did
            st.problem("integrity_unchecked", f"cell {finding['cell']} was not re-checked: the answers "
                       "stopped the re-check as they stopped the notebook", finding["cell"])
            continue
        st.problem(finding["kind"], finding["message"], finding["cell"])
        flagged.update(finding["affects"])
    return flagged


def merge_grades(source_db: Path, assignment: str, student: str) -> bool:
    """Copy one student's autograde results from another gradebook (a job's) into the real one.
    Only one process may call it at a time. False when the source holds no such submission."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with Gradebook(f"sqlite:///{source_db}", COURSE_ID) as src:
        try:
            done = src.find_submission(assignment, student)
        except MissingEntry:
            return False
        grades = {(nb.name, g.name): (g.auto_score, g.manual_score, g.extra_credit,
                                      g.needs_manual_grade)
                  for nb in done.notebooks for g in nb.grades}
        comments = {(nb.name, c.name): (c.auto_comment, c.manual_comment)
                    for nb in done.notebooks for c in nb.comments}
        notebooks = {nb.name: (nb.flagged, nb.late_submission_penalty) for nb in done.notebooks}
        timestamp = done.timestamp
    with Gradebook(DB_URL, COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy 2's harmless "not in session" warnings.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)  # grading again replaces
        except MissingEntry:
            pass
        gb.add_submission(assignment, student, timestamp=timestamp)
        for name, (flagged, penalty) in notebooks.items():
            nb = gb.find_submission_notebook(name, assignment, student)
            nb.flagged, nb.late_submission_penalty = flagged, penalty
        for (nb_name, cell), values in grades.items():
            grade = gb.find_grade(cell, nb_name, assignment, student)
            (grade.auto_score, grade.manual_score, grade.extra_credit,
             grade.needs_manual_grade) = values
        for (nb_name, cell), (auto, manual) in comments.items():
            comment = gb.find_comment(cell, nb_name, assignment, student)
            comment.auto_comment, comment.manual_comment = auto, manual
        gb.db.commit()
    return True


def provisional_status(st: Student, job: Job) -> str:
    """The status known when a student's job is merged (for the progress bar): what the precheck
    found and how the job ended; collect_scores adds what the graded notebook shows."""
    found = {KIND_STATUS[p["kind"]] for p in st.problems}
    if job.timed_out:
        found.add("timed out")
    elif job.returncode:
        found.add("not graded")
    if any(job.events.values()):
        found.add("sandbox")
    return next((s for s in STATUSES if s in found), "graded")


def receive(g: Grading, result: dict) -> Job:
    """Put a job's results where grading on one machine always had them (the autograded notebook,
    the log) and merge its grades into the gradebook."""
    a, student = g.assignment, result["student"]
    job = Job(student, **{k: result[k] for k in JOB_DATA})
    job.log = g.logs / f"{student}.log"
    job.log.write_text(result["log"], encoding="utf-8")
    graded = AUTOGRADED / student / a
    shutil.rmtree(graded, ignore_errors=True)   # as nbgrader --force: nothing left from before
    if result["notebook"] is not None:
        graded.mkdir(parents=True)
        (graded / f"{a}.ipynb").write_bytes(result["notebook"])
    merged = False
    if result["gradebook"] is not None:
        job.db = g.scratch / f"{student}.db"
        job.db.write_bytes(result["gradebook"])
        merged = merge_grades(job.db, a, student)
    job.returncode = job.returncode if merged else (job.returncode or 1)
    return job


def on_threads(calls: list[tuple], shared: dict, workers: int) -> Iterator[dict]:
    """The jobs' results, `workers` jobs at a time in threads of this process."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_submission, *args, **shared) for args in calls]
        for future in as_completed(futures):
            yield future.result()


def dask_client(scheduler: str):
    """A client of the Dask scheduler at `scheduler` with at least one worker, or a clear error."""
    try:
        from distributed import Client
    except ImportError:
        raise GradingError("--scheduler needs Dask's distributed package: pip install -e "
                           "'.[cluster]' (see autograder/README.md)") from None
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, ValueError) as exc:
        raise GradingError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): is `dask "
                           "scheduler` running there, and its port open to this machine?") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    except TimeoutError:
        client.close()
        raise GradingError(f"no Dask worker joined the scheduler at {scheduler} within "
                           f"{CONNECT_SECONDS} s: start some (see autograder/README.md)") from None
    return client


def on_dask(client, calls: list[tuple], shared: dict) -> Iterator[dict]:
    """The jobs' results, one Dask task per submission. The scheduler runs a task again on another
    worker when its worker dies (up to distributed.scheduler.allowed-failures times); a task that
    still fails is that student's failure, reported as such, not the whole run's."""
    from distributed import as_completed as completed

    run = uuid.uuid4().hex[:8]  # fresh keys: never an earlier run's result
    futures = {client.submit(grade_submission, *args, **shared, key=f"grade-{args[0]}-{run}",
                             retries=TASK_RETRIES): args[0]
               for args in calls}
    for future in completed(futures):
        try:
            yield future.result()
        except Exception as exc:  # whatever the worker raised, or KilledWorker
            yield job_result(futures[future], returncode=1, log="GradingError: the job failed on "
                             f"the Dask cluster: {type(exc).__name__}: {exc}\n")


def autograde(g: Grading, students: list[Student], workers: int,
              scheduler: str | None = None) -> dict[str, Job]:
    """Run the jobs, `workers` at a time here, or on the Dask cluster of `scheduler`; merge each
    into the gradebook as it comes back, once per student."""
    todo = {st.student: st for st in students if st.notebook}
    a = g.assignment
    template = g.template_db.read_bytes()
    calls = [(s, (SUBMITTED / s / a / f"{a}.ipynb").read_bytes(), template) for s in todo]
    shared = {"assignment": a, "source_sha256": source_digest(check_assignment(a)), "env": g.env,
              "limits": asdict(g.limits), "mode": g.mode, "hide": g.hide}
    jobs: dict[str, Job] = {}
    counts: Counter = Counter()
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(dask_client(scheduler))
            where = f"{len(client.nthreads())} Dask worker(s) at {scheduler}"
            results = on_dask(client, calls, shared)
        else:
            where, results = f"{workers} worker(s)", on_threads(calls, shared, workers)
        print(f"autograding {len(todo)} submission(s) of {a} with {where}, sandbox: {g.mode} "
              f"(logs: {g.logs})", flush=True)
        bar = stack.enter_context(tqdm(total=len(todo), desc=f"grading {a}", unit="submission"))
        for result in results:
            if result["student"] in jobs:  # a job's result is merged once, whatever happens
                continue
            job = receive(g, result)
            jobs[job.student] = job
            counts[provisional_status(todo[job.student], job)] += 1
            bar.set_postfix({s: counts[s] for s in STATUSES if counts[s]}, refresh=False)
            with bar.external_write_mode():
                print(f"  [{len(jobs)}/{len(todo)}] {job.student} ({job.seconds:.0f} s)", flush=True)
            bar.update()
    return jobs


def failure_reason(job: Job) -> str:
    """Why nbgrader failed a student's notebook, from the job's log."""
    if job.timed_out:
        return "the whole notebook ran past the submission time limit and was stopped"
    text = job.log.read_text(encoding="utf-8", errors="replace") if job.log else ""
    if m := re.search(r"^\s*RuntimeError: Inconsistent checksums for cell (\S+)", text, flags=re.M):
        return f"Inconsistent checksums for cell {m.group(1)}: its nbgrader metadata was tampered with"
    errors = re.findall(r"^\s*(\w*Error: .*)$", text, flags=re.M)
    return errors[-1] if errors else "no error in its log"


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def cell_label(cell, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{index}"


def error_text(out) -> str:
    return f"{out.get('ename')}: {out.get('evalue', '')}"


def cell_findings(nb, job: Job, hidden: list[str], limits: Limits):
    """(kind, cell, message) for what the limits and the sandbox stopped, from the executed cells."""
    gib = limits.memory_bytes / (1 << 30)
    for index, cell in enumerate(nb.cells):
        label = cell_label(cell, index)
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            name, text = out.get("ename"), error_text(out)
            if name == "CellTimeoutError":
                yield "timeout", label, (f"cell {label} ran past its time limit (an infinite loop?) "
                                         "and was interrupted; the other cells were still graded")
            elif name == sandbox.OUTPUT_LIMIT_ERROR:
                yield "output_limit", label, f"cell {label} printed more than {limits.output_bytes:,} bytes: stopped"
            elif name == sandbox.KERNEL_DIED_ERROR:
                why = (f"ran out of memory (limit {gib:g} GiB)" if job.events.get("oom_kills")
                       else "crashed (a segmentation fault or similar)")
                yield "kernel_died", label, (f"the kernel {why} in cell {label}; the cells before "
                                             "it were graded, the later ones count as failed")
            elif name == "MemoryError":
                yield "memory_limit", label, f"cell {label} ran out of memory (limit {gib:g} GiB)"
            elif "[Errno 11]" in text and job.events.get("process_limit_hits"):
                yield "process_limit", label, (f"cell {label} hit the limit of "
                                               f"{limits.max_processes} processes (a fork bomb?)")
            elif "[Errno 101]" in text or "[Errno -3]" in text or "gaierror" in str(name):
                yield "blocked", label, f"cell {label} tried to use the network, which is blocked ({text})"
            elif "[Errno 30]" in text or "[Errno 13]" in text:
                yield "blocked", label, f"cell {label} tried to write outside its own folder ({text})"
            elif "[Errno 27]" in text:
                yield "blocked", label, (f"cell {label} wrote a file over the size limit of "
                                         f"{limits.file_bytes >> 20} MiB ({text})")
            elif name == "FileNotFoundError" and any(h in text for h in hidden):
                yield "blocked", label, f"cell {label} tried to read a grading folder, which is hidden ({text})"


def findings(nb, job: Job, hidden: list[str], limits: Limits) -> list[tuple]:
    """cell_findings, plus what the job's cgroup counted that no cell showed (a limit hit by a
    child process, say)."""
    found = list(cell_findings(nb, job, hidden, limits)) if nb is not None else []
    kinds = {kind for kind, _, _ in found}
    if job.events.get("process_limit_hits") and "process_limit" not in kinds:
        found.append(("process_limit", None, f"the notebook hit the limit of {limits.max_processes} processes"))
    if job.events.get("oom_kills") and not kinds & {"kernel_died", "memory_limit"}:
        found.append(("memory_limit", None, "a process of the notebook ran out of memory (limit "
                      f"{limits.memory_bytes / (1 << 30):g} GiB)"))
    return found


def collect_scores(g: Grading, students: list[Student], jobs: dict[str, Job]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    a = g.assignment
    with Gradebook(DB_URL, COURSE_ID) as gb:
        for st in students:
            st.max_score = gb.find_assignment(a).max_score
            if not st.notebook:
                continue
            job = jobs[st.student]
            failed = job.returncode != 0 or job.timed_out
            if job.timed_out:
                st.problem("submission_timeout", f"the notebook ran past the limit of "
                           f"{g.limits.submission_seconds} s for a whole submission and was stopped: 0")
            try:
                submission = gb.find_submission(a, st.student)
            except MissingEntry:
                if not job.timed_out:
                    st.problem("grading_failed", f"nbgrader could not grade the notebook "
                               f"({failure_reason(job)}): 0; see {job.log}")
                continue
            if failed and not job.timed_out:
                st.problem("grading_failed", f"nbgrader could not grade the notebook "
                           f"({failure_reason(job)}); it records 0: see {job.log}")
            graded_nb = AUTOGRADED / st.student / a / f"{a}.ipynb"
            nb = nbformat.read(graded_nb, as_version=4) if graded_nb.is_file() else None
            timed_out = set()
            for kind, cell, message in findings(nb, job, job.hidden, g.limits):
                st.problem(kind, message, cell)
                if kind == "timeout":
                    timed_out.add(cell)
            flagged = integrity_findings(st, job.integrity)
            for sub_nb in submission.notebooks:
                for grade in sub_nb.grades:
                    if grade.name in st.missing_grade_cells and grade.auto_score is None:
                        grade.auto_score, grade.needs_manual_grade = 0.0, False
                    score = grade.score
                    gamed = grade.name in flagged and (grade.auto_score or 0) > 0
                    if gamed and g.integrity == "score":
                        # A manual score: the instructor can give the points back in formgrader.
                        grade.manual_score, score = 0.0, 0.0
                    status = ("not graded" if failed
                              else "timeout" if grade.name in timed_out
                              else "integrity" if gamed
                              else "passed" if grade.score >= grade.max_score
                              else "failed")
                    st.cells[grade.name] = {"score": score, "max_score": grade.max_score,
                                            "status": status}
            gb.db.commit()
            st.score = sum(c["score"] for c in st.cells.values())


def write_reports(assignment: str, students: list[Student], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{assignment}-grades.csv", out / f"{assignment}-grades.json"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score", "status", "reason"])
        for st in students:
            writer.writerow([st.student, assignment, f"{st.score:g}", f"{st.max_score:g}",
                             st.status, " | ".join(p["message"] for p in st.problems)])
    report = {"assignment": assignment, "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "students": [{"student": st.student, "score": st.score, "max_score": st.max_score,
                            "status": st.status, "problems": st.problems, "cells": st.cells}
                           for st in students]}
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return csv_path, json_path


# --------------------------------------------------------------------------------------------
def warm_caches(source_path: Path, env: dict) -> dict:
    """Build the caches the notebook reads (course.NEEDS: SmolLM2's weights, TinyGPT's corpus) on
    this machine now, outside the sandbox, where they can be written; return the environment that
    points the kernels at them: their view of the disk is read-only, and their HOME is a private
    folder."""
    builds = [course.WARM_UP[need] for need in course.NEEDS.get(source_path.parent.name, ())]
    if not builds:
        return {}
    code = "\n".join([*builds, "from course_lib.paths import cache_dir", "print(cache_dir())"])
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GradingError(f"could not build the course's caches before grading:\n{proc.stderr[-2000:]}")
    return {CACHE_ENV: proc.stdout.strip().splitlines()[-1]}


def hidden_paths(extra: list) -> list[str]:
    """What no submission may see on this machine: grading state, sources with solutions and
    hidden tests, the repository history (of this checkout, and of the course_lib the kernels
    import), and `extra` where it exists here: the raw submissions, the reports, the jobs' files."""
    roots = {ROOT}
    # The repository the kernels import the course from, if another (found without importing it).
    spec = importlib.util.find_spec("course_lib")
    if spec is not None and spec.origin:
        roots.add(Path(spec.origin).resolve().parent.parent)
    paths = [r / sub for r in sorted(roots) for sub in (course.AUTOGRADER, course.SOLUTIONS, ".git")]
    paths += [Path(p) for p in extra]
    return sorted({str(p.resolve()) for p in paths if p.exists()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade SUBMISSIONS/<student>/<ASSIGNMENT>.ipynb with nbgrader, in parallel and "
                    "sandboxed, and report scores, statuses and reasons (see autograder/README.md).")
    parser.add_argument("assignment", help="assignment name, as in solutions/<assignment>/")
    parser.add_argument("submissions", type=Path, help="folder with one sub-folder per student")
    parser.add_argument("--out", type=Path, default=ROOT / course.REPORTS,
                        help="where the CSV, JSON and logs go (default: autograder/reports/)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="grade on the workers of this Dask scheduler instead of here "
                             "(--workers is then unused; see autograder/README.md)")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default 300, or "
                        "$COURSE_CELL_TIMEOUT)")
    parser.add_argument("--answer-timeout", type=int, help="seconds per answer cell (default: "
                        "as --timeout, or $COURSE_ANSWER_TIMEOUT)")
    parser.add_argument("--submission-timeout", type=int, default=Limits.submission_seconds,
                        help="seconds for a whole notebook (default %(default)s)")
    parser.add_argument("--memory", type=size, default=Limits.memory_bytes,
                        help="memory per notebook, files it writes included (default 4G)")
    parser.add_argument("--processes", type=int, default=Limits.max_processes,
                        help="processes and threads per notebook (default %(default)s)")
    parser.add_argument("--file-size", type=size, default=Limits.file_bytes,
                        help="largest file a notebook may write (default 256M)")
    parser.add_argument("--output-limit", type=size, default=Limits.output_bytes,
                        help="output per cell before it is stopped (default 1M)")
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "off"), default="auto",
                        help="auto: bubblewrap if it works here, else resource limits only; bwrap: "
                             "refuse to grade without it; off: no sandbox (your own notebooks only)")
    parser.add_argument("--hide", type=Path, action="append", default=[],
                        help="another folder the submissions must not see (repeatable)")
    parser.add_argument("--integrity", choices=("score", "report"), default="score",
                        help="an integrity finding (an answer that used the course's answers or "
                             "patched its checks, see autograder/README.md): score its cells 0 "
                             "(default), or only report it")
    parser.add_argument("--feedback", action="store_true",
                        help="also write HTML feedback (no hidden tests) to autograder/feedback/")
    args = parser.parse_args(argv)

    # The run's settings, for every job's environment on whichever machine it runs.
    settings = {"COURSE_FAST": os.environ.get("COURSE_FAST") or "1"}
    if args.timeout:
        settings["COURSE_CELL_TIMEOUT"] = str(args.timeout)
    if args.answer_timeout:
        settings["COURSE_ANSWER_TIMEOUT"] = str(args.answer_timeout)
    workers = max(1, args.workers)
    # Parallel kernels share the cores: one BLAS thread each unless there are cores to spare. A
    # Dask worker grades one submission per thread, with a thread per core (README): one each.
    threads = "1" if args.scheduler else str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        settings[var] = os.environ.get(var, threads)
    env = {**os.environ, **settings}
    limits = Limits(args.memory, args.processes, args.file_size, args.output_limit,
                    args.submission_timeout)
    bwrap = sandbox.bubblewrap() if args.sandbox != "off" else None
    if args.sandbox == "bwrap" and bwrap is None:
        print("error: bubblewrap (bwrap) is missing or cannot create namespaces here: install it "
              "(Debian/Ubuntu: apt install bubblewrap) or see autograder/README.md", file=sys.stderr)
        return EXIT_FATAL
    mode = "off" if args.sandbox == "off" else "bwrap" if bwrap else "limits"
    if mode == "limits":
        print("warning: no bubblewrap here: submissions run with resource limits only, and can "
              "read and reach what this user can (install bubblewrap: apt install bubblewrap)",
              file=sys.stderr)

    out = args.out.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        source_path = check_assignment(args.assignment)
        source = nbformat.read(source_path, as_version=4)
        students = find_submissions(args.assignment, args.submissions.resolve())
        with tempfile.TemporaryDirectory(prefix="grade-release-") as tmp:
            release = release_notebook(args.assignment, Path(tmp))
        for st in students:
            if st.notebook:
                stage(args.assignment, st, release, source)
        logs = out / f"{args.assignment}-logs"
        logs.mkdir(parents=True, exist_ok=True)
        template = scratch / "template.db"
        if args.scheduler:  # sent with every task: this assignment alone, not the class's grades
            with tempfile.TemporaryDirectory(prefix="grade-release-") as tmp:
                release_notebook(args.assignment, Path(tmp), template)
        else:
            shutil.copyfile(ROOT / course.GRADEBOOK, template)
        hide = [str(p.resolve()) for p in (args.submissions, out, scratch, *args.hide)]
        g = Grading(args.assignment, settings, limits, mode, hide, scratch, template, logs,
                    args.integrity)
        jobs = {}
        if any(st.notebook for st in students):
            if mode != "off" and not args.scheduler:
                machine_caches(source_path, env)  # fails before any job starts (workers: their own)
            jobs = autograde(g, students, workers, args.scheduler)
        collect_scores(g, students, jobs)
        csv_path, json_path = write_reports(args.assignment, students, out)
        if args.feedback:
            from autograder import feedback

            try:
                feedback.generate(args.assignment, [st.student for st in students if st.notebook], env)
            except RuntimeError as exc:
                print(f"warning: {exc}", file=sys.stderr)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    width = max(len(st.student) for st in students)
    print(f"\n{'student':<{width}}  {'score':>9}  status")
    for st in students:
        print(f"{st.student:<{width}}  {f'{st.score:g}/{st.max_score:g}':>9}  {st.status}")
    troubled = [st for st in students if st.problems]
    for st in troubled:
        for p in st.problems:
            print(f"PROBLEM {st.student}: {p['message']}", file=sys.stderr)
    print(f"\nwrote {csv_path} and {json_path}")
    return EXIT_PROBLEMS if troubled else EXIT_OK
