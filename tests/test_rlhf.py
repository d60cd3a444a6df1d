"""RLHF against a learned reward model (course_lib.train.rlhf): over-optimisation at a small seeded size."""
import pytest

from course_lib.data import arithmetic
from course_lib.train import grpo, rlhf


@pytest.fixture(scope="module")
def setting(half_right):
    held_out = arithmetic.sample_problems(200, "held_out", seed=1)
    start = half_right[0]
    labeler = rlhf.labeler_model(max_steps=2000, progress=False)
    pairs = rlhf.ComparisonSet(rlhf.comparisons(start, rlhf.training_problems(600, seed=0)))
    reward = rlhf.train_learned_reward(labeler, pairs, steps=500, progress=False)
    return start, reward, held_out


def test_comparisons_prefer_the_right_answer(setting):
    start, _, held_out = setting
    pairs = rlhf.comparisons(start, held_out[:50])
    assert pairs and all(c.chosen == c.problem.answer != c.rejected for c in pairs)


def test_reward_model_learns_the_comparisons_but_not_perfectly(setting):
    start, reward, held_out = setting
    accuracy = reward.pair_accuracy(rlhf.ComparisonSet(rlhf.comparisons(start, held_out, seed=1)))
    assert 0.6 < accuracy < 1.0


def test_best_of_n_overoptimises(setting):
    start, reward, held_out = setting
    for seed in (0, 1, 2):
        result = rlhf.best_of_n(start, reward, held_out, seed=seed)
        assert result["proxy"] == sorted(result["proxy"])  # the proxy only rises with N
        peak = max(result["gold"])
        assert peak > result["gold"][0] + 0.05  # a few tries help ...
        assert result["gold"][-1] < peak - 0.05  # ... and many tries overshoot


def test_grpo_on_the_reward_model_opens_a_proxy_gold_gap(setting):
    start, reward, held_out = setting
    runs = rlhf.optimise_against(start, reward, held_out, steps=60, seeds=(0,), eval_every=20, progress=False)
    run = runs[0.0][0]
    assert run.proxy[-1] > run.proxy[0]
    assert run.gold[-1] < run.gold[0] - 0.1
    assert run.kl[-1] > run.kl[0]


def test_reward_model_must_match_the_config():
    policy = grpo.arithmetic_model(seed=0)
    with pytest.raises(ValueError, match="reward_model"):
        grpo.GRPOTrainer(policy, grpo.GRPOConfig(reward="reward model"))
