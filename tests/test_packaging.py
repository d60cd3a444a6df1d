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



def test_the_wheel_carries_every_module_asset_and_stored_result(tmp_path):
    """What a wheel install (Colab's) gets: every module, widget front end, asset and stored
    experiment of course_lib, built from a copy of the tree (a build writes beside its sources)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_lib", source / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel")],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("course_lib-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {n for n in archive.namelist() if n.startswith("course_lib/")}
    wanted = {p.relative_to(source).as_posix() for p in (source / "course_lib").rglob("*") if p.is_file()}
    assert wanted - packed == set()
    assert {"course_lib/experiments/results/rl_kl.json", "course_lib/experiments/results/recall.json",
            "course_lib/assets/tinygpt_base.pt"} <= packed
