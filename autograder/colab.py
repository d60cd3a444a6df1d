"""What opens the course on Colab, written from one setting: pyproject.toml's [project.urls]
Repository, with the pins of [project] dependencies and [tool.course].

A fork points the course at itself by changing `Repository` and running `make notebooks`
(`python -m autograder generate`): every notebook's setup cell (the code cell with id
"colab-setup") and the README's "open in Colab" links are rewritten from it, and
`generate --check` (run by the tests) fails while any of them is out of date.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from autograder import course

SETUP_CELL_ID = "colab-setup"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/")


def settings(root: Path = course.ROOT) -> dict:
    """{"repository": "https://github.com/OWNER/NAME", "model": pin, "adds": [pins]} from pyproject.toml."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    repository = project["project"]["urls"]["Repository"].rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"pyproject.toml's Repository must be https://github.com/OWNER/NAME (Colab opens "
                         f"notebooks from GitHub), got {repository!r}")
    pins = {re.split(r"[=<>~!]", dep, maxsplit=1)[0].strip().lower(): dep for dep in project["project"]["dependencies"]}
    tool = project["tool"]["course"]
    missing = [name for name in tool["colab_adds"] if name.lower() not in pins]
    if missing:
        raise ValueError(f"[tool.course] colab_adds names {missing}, which [project] dependencies do not pin")
    return {"repository": repository, "model": tool["model"], "adds": [pins[n.lower()] for n in tool["colab_adds"]]}


def setup_cell(root: Path = course.ROOT) -> str:
    """The source of every notebook's first code cell."""
    s = settings(root)
    return f'''# Setup. On Colab this installs the course and its model (about a minute); anywhere else it does nothing,
# because `make course` has already installed everything. (Written by `make notebooks` from pyproject.toml.)
import sys, subprocess
if "google.colab" in sys.modules:
    COURSE = "git+{s["repository"]}.git"
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    # --no-deps: Colab's own torch, plotly and ipywidgets stay; course_lib checks they are new enough.
    for packages in (["--no-deps", COURSE, "{s["model"]}"], [{", ".join(f'"{pin}"' for pin in s["adds"])}]):
        if subprocess.run(pip + packages).returncode != 0:
            raise RuntimeError(f"pip could not install {{' '.join(packages)}} (its message is above). The course "
                               f"installs from {{COURSE}}: check that this runtime is online and that the "
                               f"repository exists.")
    from google.colab import output
    output.enable_custom_widget_manager()'''


def readme_links(text: str, root: Path = course.ROOT) -> str:
    """The README's text with every "open in Colab" link pointing into the repository's main branch."""
    owner_name = settings(root)["repository"].removeprefix("https://github.com/")
    return COLAB_LINK.sub(f"https://colab.research.google.com/github/{owner_name}/blob/main/", text)
