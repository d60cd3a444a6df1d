"""The course as Colab gets it: each solution notebook alone in an empty folder, in a fresh
environment holding Colab's own libraries (ipywidgets 7.7.1, plotly 5.24.1, matplotlib 3.10.0)
and a stand-in `google.colab`, so the notebook's own setup cell installs the course non-editable
from its repository (here a committed copy of this tree, by git's insteadOf) and the model. nbmake
executes it: no cell may raise, every stored result is displayed, every widget carries its picture.
The in-tree runs of the notebooks are the grading round trip's and the browser's."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder import colab, course

# What a Colab runtime already has, at the course's pins except where Colab's own versions differ
# (the ones course_lib.versions must accept); nbmake and ipykernel run the notebooks.
COLAB_OWN = {"ipywidgets": "ipywidgets==7.7.1", "plotly": "plotly==5.24.1", "matplotlib": "matplotlib==3.10.0"}
RUNNER = ["nbmake==1.5.5", "ipykernel==7.4.0"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TQDM_BAR = re.compile(r"\d+%\|.*\| \d+/\d+")  # how a tqdm bar writes itself as text
NOT_ON_COLAB = {"jupyterlab", "notebook", "nbgrader"}  # Colab has its own front end, no grader
# Colab imports google.colab before any cell runs; a .pth line does the same in this environment.
STAND_IN = '''"""A stand-in for Colab's google.colab: the setup cell enables the custom widget manager."""
import types

output = types.SimpleNamespace(enable_custom_widget_manager=lambda: None)
'''


def pip_install(python: Path, *args: str) -> None:
    # --no-compile: no bytecode for all of torch up front (a kernel compiles what it imports)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                           *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr


def colab_runtime_pins() -> list[str]:
    """The course's pinned dependencies as Colab has them: its own versions where COLAB_OWN says,
    without the front end and the grader, and without what the setup cell adds itself."""
    pyproject = tomllib.loads((course.ROOT / "pyproject.toml").read_text())
    added = {name.lower() for name in pyproject["tool"]["course"]["colab_adds"]}
    pins = []
    for pin in pyproject["project"]["dependencies"]:
        name = pin.split("==")[0].lower()
        if name not in added | NOT_ON_COLAB:
            pins.append(COLAB_OWN.get(name, pin))
    return pins


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """(python, env): a fresh venv with Colab's libraries and the stand-in, and the environment under
    which the setup cell's `pip install git+REPOSITORY` clones a committed copy of this tree."""
    base = tmp_path_factory.mktemp("colab")
    repo = base / "repository"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(course.ROOT / name, repo / name)
    shutil.copytree(course.ROOT / "course_lib", repo / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    git = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the course as published"]):
        subprocess.run(git + step, check=True, capture_output=True)

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip_install(python, *colab_runtime_pins(), *RUNNER)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text(STAND_IN)
    (site / "colab_stand_in.pth").write_text("import google.colab\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER"))}
    env.update({"PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "COURSE_FAST": "1",
                # only this environment's kernel (a user-level "python3" kernel would be another Python)
                "JUPYTER_PATH": str(venv / "share" / "jupyter"), "JUPYTER_DATA_DIR": str(base / "jupyter"),
                "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{repo.as_uri()}.insteadOf",
                "GIT_CONFIG_VALUE_0": f"{colab.settings()['repository']}.git"})
    return python, env


def installed(python: Path, env: dict, name: str) -> str:
    return subprocess.run([str(python), "-c", f"from importlib import metadata; print(metadata.version({name!r}))"],
                          capture_output=True, text=True, env=env).stdout.strip()


def run_alone(python: Path, env: dict, assignment: str, folder: Path) -> subprocess.CompletedProcess:
    """nbmake on a copy of the solution notebook, alone in `folder`; its outputs are written back."""
    folder.mkdir()
    shutil.copy(course.source(assignment), folder / f"{assignment}.ipynb")
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                           "--nbmake-timeout=900", "--overwrite", f"{assignment}.ipynb"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def runs(runtime, tmp_path_factory):
    """Every notebook's run, two at a time (two kernels of one thread each keep both cores busier
    than one kernel of two threads): each test waits for its own."""
    python, env = runtime
    env = {**env, "OMP_NUM_THREADS": "1"}
    base = tmp_path_factory.mktemp("alone")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {a: pool.submit(run_alone, python, env, a, base / a) for a in course.assignments()}, base


@pytest.mark.slow
@pytest.mark.parametrize("assignment", course.assignments())
def test_each_solution_runs_alone_as_on_colab(runtime, runs, assignment):
    python, env = runtime
    futures, base = runs
    ran = futures[assignment].result()
    tmp_path = base / assignment
    notebook = tmp_path / f"{assignment}.ipynb"
    assert ran.returncode == 0, f"{assignment} failed alone, as on Colab:\n{ran.stdout[-6000:]}{ran.stderr[-2000:]}"

    # Every stored result the notebook loads is displayed: one "Cached result" line per load_sweep.
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    loads = sum("".join(c["source"]).count("load_sweep(") for c in cells)
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert "No stored result" not in printed, f"{assignment}: a stored result is missing from the installed course"
    assert printed.count("Cached result of") == loads, f"{assignment}: {loads} stored results loaded, not all shown"
    # Under ipywidgets 7 too, every widget of the course carries its static picture
    # (course_lib.widgets.static); tqdm's progress bars, its own widgets, carry their text.
    shown = [o["data"] for c in cells for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})
             and not TQDM_BAR.search("".join(o["data"].get("text/plain", "")))]
    assert shown and all("text/html" in data for data in shown), f"{assignment}: a widget without its picture"
    # The course came from the repository, non-editable, and Colab's own widgets were left alone.
    where = subprocess.run([str(python), "-c", "import course_lib; print(course_lib.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    assert "site-packages" in where, where
    assert installed(python, env, "ipywidgets") == "7.7.1"
