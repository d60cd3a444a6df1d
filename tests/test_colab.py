"""Colab opens the course from one setting: pyproject.toml's Repository and pins write every
notebook's setup cell and the README's links; the cell installs exactly those, and says clearly
when it cannot."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types

import pytest

from autograder import colab, course


def first_code_cell(path) -> dict:
    return next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("assignment", course.assignments())
def test_every_notebook_opens_with_the_setup_cell_written_from_pyproject(assignment):
    for path in (course.source(assignment), course.student(assignment)):
        cell = first_code_cell(path)
        assert cell["id"] == colab.SETUP_CELL_ID and "".join(cell["source"]) == colab.setup_cell(), path


def run_setup_cell(monkeypatch, returncode: int) -> list[list[str]]:
    commands, enabled = [], []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(True))
    google = types.ModuleType("google")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(output=output))
    monkeypatch.setattr(subprocess, "run", lambda command, **_: commands.append(command)
                        or types.SimpleNamespace(returncode=returncode))
    exec(colab.setup_cell(), {})
    assert enabled == ([True] if returncode == 0 else [])
    return [command[command.index("-q") + 1:] for command in commands]


def test_on_colab_the_cell_installs_the_pinned_course_and_keeps_colabs_own_libraries(monkeypatch):
    s = colab.settings()
    installs = run_setup_cell(monkeypatch, returncode=0)
    assert installs == [["--no-deps", f"git+{s['repository']}.git", s["model"]], s["adds"]]
    assert s["adds"] == ["gguf==0.19.0", "anywidget==0.11.0"]  # as [project] dependencies pin them
    assert not any(name in " ".join(sum(installs, [])) for name in ("torch", "ipywidgets", "plotly"))


def test_a_failed_install_says_where_the_course_comes_from(monkeypatch):
    with pytest.raises(RuntimeError, match="installs from git\\+https://github.com/.*: check that this runtime is online"):
        run_setup_cell(monkeypatch, returncode=1)


def test_the_makefile_installs_the_same_model_pin():
    sed = shutil.which("sed")
    pin = subprocess.run([sed, "-n", 's/^model = "\\(.*\\)"$/\\1/p', "pyproject.toml"], cwd=course.ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert pin == colab.settings()["model"] and "$(MODEL)" in (course.ROOT / "Makefile").read_text()


def test_a_fork_changes_one_setting(tmp_path):
    text = (course.ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace(colab.settings()["repository"],
                                                          "https://github.com/someone/their-course"))
    assert 'COURSE = "git+https://github.com/someone/their-course.git"' in colab.setup_cell(tmp_path)
    readme = (course.ROOT / "README.md").read_text()
    forked = colab.readme_links(readme, tmp_path)
    links = colab.COLAB_LINK.findall(forked)
    assert len(links) == len(course.assignments())
    assert set(links) == {"https://colab.research.google.com/github/someone/their-course/blob/main/"}
    assert colab.readme_links(readme) == readme  # the README as committed points at the setting


def test_a_repository_colab_cannot_open_is_refused(tmp_path):
    text = (course.ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace(colab.settings()["repository"], "https://gitlab.com/a/b"))
    with pytest.raises(ValueError, match="OWNER/NAME"):
        colab.settings(tmp_path)
