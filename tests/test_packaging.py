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

