"""Notebook E's bandit, advantage slider and leash dial: driven from Python, as a learner's clicks would."""
from __future__ import annotations

import json

import pytest
import torch

from course_lib.exercises.rl import epsilon_greedy, grpo_advantages
from course_lib.experiments import RESULTS
from course_lib.train.bandit import bandit_means, compare_rules, run_bandit
from course_lib.widgets.advantage import AdvantageExplorer
from course_lib.widgets.leash import LeashDial, sweep_summary


# ---- the bandit --------------------------------------------------------------------------------
def test_a_bandit_run_is_seeded_and_regret_only_grows():
    means = bandit_means(10, seed=3)
    a = run_bandit(epsilon_greedy, 0.1, means, steps=200, seed=1)
    b = run_bandit(epsilon_greedy, 0.1, means, steps=200, seed=1)
    assert a.rewards == b.rewards and len(a.regret) == 200
    assert all(y >= x - 1e-9 for x, y in zip(a.regret, a.regret[1:])) and a.regret[0] >= 0
    with pytest.raises(ValueError, match="arms"):
        run_bandit(lambda q, e, g: 10, 0.1, means, steps=5)
    with pytest.raises(ValueError, match="steps"):
        run_bandit(epsilon_greedy, 0.1, means, steps=0)


def test_a_little_exploration_beats_none_and_all():
    result = compare_rules(epsilon_greedy, {"greedy": 0.0, "some": 0.1, "random": 1.0}, steps=1000, runs=20)
    final = {name: r["regret"][-1] for name, r in result.items()}
    assert final["some"] < final["greedy"] < final["random"]
    assert result["some"]["best_arm_share"] > result["greedy"]["best_arm_share"] > result["random"]["best_arm_share"]
    assert result["random"]["best_arm_share"] == pytest.approx(0.1, abs=0.03)


# ---- the advantage slider ---------------------------------------------------------------------
def test_moving_the_baseline_flips_rollouts_between_reinforce_and_suppress():
    w = AdvantageExplorer(["408", "388", "<b>41</b>"], [1.0, 0.45, 0.05], grpo_advantages)
    assert w.baseline == pytest.approx(0.5)
    assert w.verdicts == ["reinforce", "suppress", "suppress"]
    w.set_baseline(0.4)
    assert w.verdicts == ["reinforce", "reinforce", "suppress"]
    assert list(w.figure.data[0].y) == pytest.approx([0.6, 0.05, -0.35])
    assert "2 reinforced, 1 suppressed" in w.caption.value
    w.use_group_mean()
    assert w.baseline == pytest.approx(0.5)
    group = grpo_advantages(torch.tensor([1.0, 0.45, 0.05]), 3)
    assert f"{float(group[0]):+.2f}" in w.caption.value
    assert "&lt;b&gt;" in w.figure.data[0].x[2]  # labels are escaped
    w.set_baseline(100)  # clamped to the slider's range
    assert w.baseline == w.slider.max
    with pytest.raises(ValueError, match="finite"):
        w.set_baseline(float("nan"))
    with pytest.raises(ValueError, match="one reward per rollout"):
        AdvantageExplorer(["a"], [1.0, 2.0], grpo_advantages)


def test_the_group_mean_survives_the_browser_snapping_the_slider():
    # Scores that differ by less than 0.01 (SmolLM2's near misses at 17 x 24): a browser puts the
    # slider at min + k * step and sends that value back.
    rewards = [0.0299, 0.0202, 0.0299]
    w = AdvantageExplorer(["a", "b", "c"], rewards, grpo_advantages)
    w.use_group_mean()
    snapped = w.slider.min + round((w.baseline - w.slider.min) / w.slider.step) * w.slider.step
    w.slider.value = snapped
    group = [float(a) for a in grpo_advantages(torch.tensor(rewards), 3)]
    assert w.verdicts == ["reinforce" if a > 0 else "suppress" for a in group] == \
           ["reinforce", "suppress", "reinforce"]
    assert w.slider.min <= min(rewards) - 0.5 and w.slider.max >= max(rewards) + 0.5
    assert f"baseline {sum(rewards) / 3:.4f}" in w.caption.value  # shown to the slider's precision


def test_the_slider_says_when_grpo_advantages_is_not_written_yet():
    def grpo_advantages(rewards, group_size):
        raise NotImplementedError

    w = AdvantageExplorer(["a", "b"], [1.0, 0.0], grpo_advantages)
    assert "not implemented yet" in w.caption.value and w.verdicts == ["reinforce", "suppress"]


# ---- the leash dial ---------------------------------------------------------------------------
def fake_sweep():
    runs = [{"reward": reward, "kl": kl, "seed": seed, "accuracy": 0.1 * seed + kl, "mean_reward": 0.5,
             "kl_to_reference": 1 - kl, "answer_length": 2.0, "answer_loss": 0.5, "start_accuracy": 0.5,
             "start_answer_loss": 0.4}
            for reward in ("correct", "gameable") for kl in (0.0, 0.5) for seed in (0, 1, 2)]
    return {"kl_weights": [0.0, 0.5], "seeds": [0, 1, 2], "steps": 10, "runs": runs}


def test_the_dial_shows_the_mean_and_spread_over_seeds():
    dial = LeashDial(fake_sweep())
    assert dial.values("gameable", 0.5)["accuracy"] == pytest.approx(0.6)
    assert sweep_summary(fake_sweep())["correct", 0.0]["accuracy"] == pytest.approx((0.1, 0.0, 0.2))
    dial.show(0.5)
    assert dial.dial.value == 0.5 and "KL weight 0.5" in dial.caption.value
    assert [name for _, name, _ in dial.rewards] == ["honest reward", "gameable reward"]  # no reward model runs
    assert len(dial.figure.data) == 2 * 5  # so no bars for it
    first = dial.figure.data[0]  # honest reward, accuracy
    assert list(first.y) == pytest.approx([0.6]) and list(first.error_y.array) == pytest.approx([0.1])
    with pytest.raises(ValueError, match="KL weights"):
        dial.show(0.3)
    with pytest.raises(ValueError, match="no runs"):
        LeashDial({"kl_weights": [0.0], "seeds": [0], "steps": 1, "runs": []})


def test_the_dial_reads_the_committed_sweep():
    sweep = json.loads((RESULTS / "rl_kl.json").read_text())
    dial = LeashDial(sweep)
    assert dial.kl_weights == sorted(sweep["kl_weights"])
    assert [reward for reward, _, _ in dial.rewards] == ["correct", "gameable", "reward model"]
    for kl in dial.kl_weights:
        for reward, _, _ in dial.rewards:
            assert 0 <= dial.values(reward, kl)["accuracy"] <= 1


def test_the_dial_can_start_at_a_chosen_weight():
    assert LeashDial(fake_sweep(), value=0.5).dial.value == 0.5
    with pytest.raises(ValueError, match="KL weights"):
        LeashDial(fake_sweep(), value=0.2)
