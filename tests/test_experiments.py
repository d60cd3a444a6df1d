"""The stored experiments (course_lib.experiments): their scripts run end to end at toy sizes, the
committed results record how they were made, and the notebooks' loader finds them."""
from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

from course_lib.experiments import RESULTS, SWEEPS, pretraining as sweeps
from course_lib.experiments.pretraining import DEFAULT_SEEDS


@pytest.mark.parametrize("argv, key", [
    (["isoflop", "--budgets", "3e9", "--min-steps", "2", "--workers", "2"], "budgets"),
    (["mixture", "--steps", "3", "--size", "16", "1", "2", "--code-shares", "0", "1"], "runs"),
    (["dedup", "--steps", "3", "--size", "16", "1", "2"], "runs"),
])
def test_sweeps_run_at_toy_sizes(tmp_path, argv, key):
    sweeps.main(argv + ["--device", "cpu", "--out-dir", str(tmp_path)] + ([] if "--workers" in argv else ["--workers", "1"]))
    record = json.loads((tmp_path / f"pretraining_{argv[0]}.json").read_text())
    assert key in record and record["runs"]
    assert "cpu" in record["device"] and record["seeds"] == DEFAULT_SEEDS[argv[0]]
    assert sorted({run["seed"] for run in record["runs"]}) == DEFAULT_SEEDS[argv[0]]
    assert record["command"].startswith("python -m course_lib.experiments pretraining " + argv[0])
    for run in record["runs"]:
        assert run["val_loss"]["prose"] > 0 and run["tokens"] == run["steps"] * record["batch_size"] * 64


def test_dedup_diets_shrink_as_they_are_cleaned(tmp_path):
    sweeps.main(["dedup", "--steps", "2", "--size", "16", "1", "2", "--device", "cpu", "--workers", "1", "--out-dir", str(tmp_path)])
    runs = {r["diet"]: r for r in json.loads((tmp_path / "pretraining_dedup.json").read_text())["runs"]}
    sizes = [runs[name]["documents"] for name in ("polluted crawl", "crawl, deduplicated",
                                                  "crawl, deduplicated and filtered")]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * runs["clean"]["documents"] / 1.5


@pytest.mark.parametrize("name", ["isoflop", "mixture", "dedup"])
def test_committed_results_say_how_they_were_made(name):
    record = json.loads((RESULTS / f"pretraining_{name}.json").read_text())
    for key in ("command", "seeds", "device", "torch", "date", "runs", "total_seconds"):
        assert key in record, key
    assert record["command"].startswith("python -m course_lib.experiments pretraining ")
    if name != "isoflop":  # the sweeps whose differences the notebook reads: every setting over 3 seeds
        setting = "code_share" if name == "mixture" else "diet"
        seeds_of = {}
        for run in record["runs"]:
            seeds_of.setdefault(run[setting], set()).add(run["seed"])
        assert len(record["seeds"]) >= 3 and all(s == set(record["seeds"]) for s in seeds_of.values())
    for run in record["runs"]:
        assert run["flops"] == 6 * run["parameters"] * run["tokens"]


def test_load_sweep_reports_what_it_loads(capsys, monkeypatch, tmp_path):
    from course_lib import experiments

    with pytest.raises(ValueError, match="unknown sweep"):
        experiments.load_sweep("chinchilla")
    record = experiments.load_sweep("mixture")
    assert record["experiment"] == "mixture" and "Cached result of `python -m course_lib.experiments pretraining " in capsys.readouterr().out
    monkeypatch.setattr(experiments, "RESULTS", tmp_path)
    assert experiments.load_sweep("mixture") is None
    assert "No stored result" in capsys.readouterr().out


def test_the_kl_sweep_runs_at_a_toy_size(tmp_path, monkeypatch):
    from course_lib.experiments import rl

    # A reward model trained for a few steps only: the sweep's plumbing, not its quality.
    monkeypatch.setattr(rl, "learned_reward", functools.partial(rl.learned_reward, labeler_steps=50, problems=20,
                                                                steps=5))
    rl.main(["kl", "--kl", "0", "1", "--seeds", "0", "--steps", "2", "--device", "cpu", "--workers", "1",
             "--out-dir", str(tmp_path)])
    record = json.loads((tmp_path / "rl_kl.json").read_text())
    assert record["command"] == "python -m course_lib.experiments rl kl --kl 0 1 --seeds 0 --steps 2 --device cpu --workers 1 " \
                                f"--out-dir {tmp_path}"
    assert {(r["reward"], r["kl"]) for r in record["runs"]} == {(w, k) for w in rl.grpo.REWARD_NAMES for k in (0, 1)}
    assert all(r["start_accuracy"] >= 0.4 for r in record["runs"])  # the half-right start model
    assert all(("proxy" in r) == (r["reward"] == "reward model") for r in record["runs"])
    assert 0 <= record["reward_model"]["held_out_pair_accuracy"] <= 1 and record["reward_model"]["comparisons"] > 0
    rl.main(["kl", "--kl", "0", "--seeds", "0", "--steps", "1", "--rewards", "correct", "--workers", "1",
             "--out-dir", str(tmp_path)])
    record = json.loads((tmp_path / "rl_kl.json").read_text())
    assert [r["reward"] for r in record["runs"]] == ["correct"] and "reward_model" not in record


def test_the_recall_race_runs_at_a_toy_size(tmp_path):
    from course_lib.experiments import recall

    out = tmp_path / "recall.json"
    argv = ["--steps", "3", "5", "--max-distance", "4", "--seeds", "0", "1", "--n-examples", "8", "--device", "cpu",
            "--out", str(out)]
    recall.main(argv)
    record = json.loads(out.read_text())
    assert record["command"] == "python -m course_lib.experiments recall " + " ".join(argv)
    assert record["distances"] == [1, 2, 4] and record["seeds"] == [0, 1]
    assert [budget["steps"] for budget in record["budgets"]] == [3, 5]
    for budget in record["budgets"]:
        assert [run["seed"] for run in budget["runs"]] == [0, 1]
        for run in budget["runs"]:
            assert set(run["accuracy"]) == {"LSTM", "attention"}
            assert all(0 <= a <= 1 for by_distance in run["accuracy"].values() for a in by_distance.values())


def test_the_committed_recall_race_has_three_seeds_for_every_budget():
    record = json.loads((RESULTS / "recall.json").read_text())
    assert record["command"].startswith("python -m course_lib.experiments recall") and len(record["seeds"]) >= 3
    assert all([run["seed"] for run in budget["runs"]] == record["seeds"] for budget in record["budgets"])


def test_the_committed_kl_sweep_says_how_it_was_made():
    record = json.loads((RESULTS / "rl_kl.json").read_text())
    assert record["command"].startswith("python -m course_lib.experiments rl kl")
    assert len(record["runs"]) == 3 * len(record["kl_weights"]) * len(record["seeds"])  # three rewards
    assert len(record["seeds"]) >= 3
    # E9's lesson on the learned reward: the looser the leash, the lower the gold, beyond the seeds' spread.
    gold = {kl: [r["accuracy"] for r in record["runs"] if r["reward"] == "reward model" and r["kl"] == kl]
            for kl in record["kl_weights"]}
    loosest, tightest = min(gold), max(gold)
    assert max(gold[loosest]) < min(gold[tightest]) - 0.2


def test_every_stored_result_loads_and_says_what_made_it(capsys):
    from course_lib.experiments import load_sweep

    for name in SWEEPS:
        record = load_sweep(name)
        assert record is not None and record["device"] and record["total_seconds"] > 0, name
        said = capsys.readouterr().out
        assert said.startswith("Cached result of `python -m course_lib.experiments ") and record["device"] in said
    assert "(seeds 0, 1, 2)" in said or "(seed" in said


def test_the_scripts_run_from_the_package():
    listed = subprocess.run([sys.executable, "-m", "course_lib.experiments"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 1 and all(f"  {s} " in listed.stderr for s in ("recall", "pretraining", "rl"))
    helped = subprocess.run([sys.executable, "-m", "course_lib.experiments", "rl", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m course_lib.experiments rl ")
