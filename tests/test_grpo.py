"""Notebook E's toolkit: the arithmetic task and its rewards, rollouts, and GRPO on a small seeded model."""
from __future__ import annotations

import pytest
import torch

from course_lib.data import arithmetic as ar
from course_lib.train import grpo, loop


@pytest.fixture(scope="module")
def held_out():
    return ar.sample_problems(300, "held_out", seed=1)


def test_a_run_stopped_at_its_target_shows_a_full_bar(monkeypatch):
    import io

    from tqdm.std import tqdm

    bars = []

    class Recorded(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, file=io.StringIO(), **kwargs)
            bars.append(self)

    monkeypatch.setattr(loop, "tqdm", Recorded)
    curve = grpo.pretrain_arithmetic(grpo.arithmetic_model(seed=0), 500, target_accuracy=0.0, check_every=5,
                                     batch_size=4, seed=0)
    (bar,) = bars
    assert curve[-1][0] == 5 and bar.n == bar.total == 5  # tqdm.notebook paints a bar short of its total red
    assert "reached 0%" in bar.desc


def test_the_task_splits_problems_and_checks_answers_exactly():
    train, held = ar.all_problems("train"), ar.all_problems("held_out")
    assert len(train) + len(held) == (ar.MAX_OPERAND + 1) ** 2
    assert not set(train) & set(held) and 0.15 < len(held) / len(train) < 0.3
    problem = ar.Problem(23, 45)
    assert (problem.prompt, problem.answer) == ("23+45=", "68")
    assert ar.decode(ar.encode("23+45=68$")) == "23+45=68$"
    assert ar.completion_text(ar.encode("68$99")) == "68"
    assert ar.correct_reward(problem, "68") == 1.0 and ar.correct_reward(problem, "680") == 0.0
    with pytest.raises(ValueError, match="reads only"):
        ar.encode("2*3")
    with pytest.raises(ValueError, match="split"):
        ar.all_problems("test")
    assert ar.sample_problems(5, seed=3) == ar.sample_problems(5, seed=3)


def test_the_gameable_reward_pays_for_padding_about_as_well_as_for_being_right():
    problem = ar.Problem(23, 45)
    assert ar.gameable_reward(problem, "68") == pytest.approx(1.3)
    assert ar.gameable_reward(problem, "6868") == pytest.approx(0.6)
    assert ar.gameable_reward(problem, "1234567") == pytest.approx(1.0)  # wrong, long, capped
    assert ar.gameable_reward(problem, "") == 0.0


def test_pretraining_stops_at_the_target_accuracy(half_right, held_out):
    model, curve = half_right
    steps, reached = curve[-1]
    assert reached >= 0.5 and steps < 3000
    assert all(accuracy < 0.5 for _, accuracy in curve[:-1])
    assert 0.35 < grpo.accuracy(model, held_out) < 0.75


def test_sampling_is_seeded_and_rollouts_mark_what_the_policy_wrote(half_right):
    model, _ = half_right
    problems = ar.sample_problems(3, seed=5)
    runs = [grpo.sample_rollouts(model, model, problems, 4, 1.0, ar.correct_reward, torch.Generator().manual_seed(9))
            for _ in range(2)]
    assert runs[0].completions == runs[1].completions
    r = runs[0]
    assert r.problems == [p for p in problems for _ in range(4)] and r.sequences.shape[0] == 12
    for i, p in enumerate(r.problems):
        written = r.sequences[i, 1:][r.mask[i]].tolist()
        assert ar.decode(written).startswith(r.completions[i])
        assert r.rewards[i] == ar.correct_reward(p, r.completions[i])
    # Policy and reference are the same model here: the same log-probabilities.
    assert torch.equal(r.old_logp, r.ref_logp)


def run_grpo(model, steps, held_out, **cfg):
    policy = grpo.arithmetic_model(seed=0)
    policy.load_state_dict(model.state_dict())
    trainer = grpo.GRPOTrainer(policy, grpo.GRPOConfig(**cfg), seed=0)
    return trainer, trainer.run(steps, held_out=held_out, eval_every=steps, live=False, progress=False)


def test_grpo_raises_held_out_accuracy(half_right, held_out):
    _, log = run_grpo(half_right[0], 150, held_out, lr=1e-4)
    before, after = log.evals["held-out accuracy"]
    assert after > before + 0.08
    assert log.per_step["KL to reference"][0] == 0.0  # the first rollouts come from the reference itself
    assert log.per_step["KL to reference"][-1] > 0.0


def test_shuffled_rewards_teach_nothing_useful(half_right, held_out):
    _, log = run_grpo(half_right[0], 100, held_out, lr=3e-4, shuffle_rewards=True)
    before, after = log.evals["held-out accuracy"]
    assert after < before - 0.1


def test_the_critic_baseline_runs_and_costs_parameters(half_right, held_out):
    trainer, log = run_grpo(half_right[0], 5, held_out, baseline="critic")
    counts = trainer.parameter_counts()
    assert counts["critic"] > counts["policy"]  # a whole copy of the body, plus a head
    assert len(log.per_step["reward"]) == 5
    with pytest.raises(ValueError, match="baseline"):
        grpo.GRPOConfig(baseline="none")
    with pytest.raises(ValueError, match="reward"):
        grpo.GRPOConfig(reward="vibes")


def test_one_update_per_batch_leaves_the_clip_nothing_to_do_and_several_do(half_right, held_out):
    _, one = run_grpo(half_right[0], 6, held_out, lr=3e-4)
    assert max(one.per_step["clip fraction"]) == 0.0
    assert max(abs(r - 1) for r in one.per_step["ratio min"] + one.per_step["ratio max"]) < 1e-5
    _, several = run_grpo(half_right[0], 6, held_out, lr=3e-4, updates_per_batch=4)
    assert len(several.steps) == 24 and several.eval_steps == [0, 24]
    fractions = several.per_step["clip fraction"]
    assert max(fractions[::4]) == 0.0  # each batch's first update: the policy is still the one that sampled
    assert max(fractions) > 0.0 and max(several.per_step["ratio max"]) > 1.2
    with pytest.raises(ValueError, match="updates_per_batch"):
        grpo.GRPOConfig(updates_per_batch=0)


def test_large_steps_without_the_clip_fall_further_and_end_worse(half_right, held_out):
    """The learner's clip changes a real run: 8 updates per batch at a large learning rate."""
    runs = grpo.clip_comparison(half_right[0], held_out, steps=20, seeds=(0,), lr=3e-4, updates_per_batch=8,
                                eval_every=5, progress=False)
    clipped, unclipped = runs["with the clip"][0], runs["without a clip"][0]
    assert clipped.per_step["clip fraction"] != unclipped.per_step["clip fraction"]
    assert min(clipped.evals["held-out accuracy"]) > min(unclipped.evals["held-out accuracy"]) + 0.1
    assert clipped.last("held-out accuracy") > unclipped.last("held-out accuracy") + 0.1
