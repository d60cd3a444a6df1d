"""The set-up files agree with each other, so conda and pip users get the same course."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pins_match_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    yml = re.findall(r"^\s+- ([A-Za-z0-9_.\-]+==\S+)$", (ROOT / "environment.yml").read_text(), re.M)
    assert sorted(yml) == sorted(deps)
    assert all("==" in d for d in deps), "every dependency is pinned"


def test_constraints_agree_with_pyproject():
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["test"]:
        name, version = dep.split("==")
        assert pins.get(name.lower().replace("_", "-")) == version, f"{name}: constraints.txt disagrees"
