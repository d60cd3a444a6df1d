"""Notebook E's answers (epsilon-greedy, GRPO's advantages, PPO's clipped loss, the k3 KL penalty)
agree with hand-computed values, and their exercises pass them while catching typical learner
mistakes under the key that names the mistake (tests assert keys, never wording). The learner
versions below are written independently of the exercises' own list of mistakes, each keyword one bug."""
import functools
import math
import random

import pytest
import torch

from course_lib.checks import rl as checks
from course_lib.exercises import ExerciseFailure, check
from course_lib.exercises import rl as reference

ALL_CHECKS = [
    (checks.check_epsilon_greedy, reference.epsilon_greedy),
    (checks.check_grpo_advantages, reference.grpo_advantages),
    (checks.check_grpo_advantages_hidden, reference.grpo_advantages),
    (checks.check_ppo_clip_loss, reference.ppo_clip_loss),
    (checks.check_ppo_clip_loss_hidden, reference.ppo_clip_loss),
    (checks.check_kl_penalty, reference.kl_penalty),
]


def test_the_reference_passes_every_check(capsys):
    for check, answer in ALL_CHECKS:
        check(answer)
    out = capsys.readouterr().out
    assert out.count("✅") == len(ALL_CHECKS)
    for name in ("epsilon_greedy", "grpo_advantages", "ppo_clip_loss", "kl_penalty"):
        assert f"✅ {name} passes the visible tests." in out
    for name in ("grpo_advantages", "ppo_clip_loss"):
        assert f"✅ {name} passes the hidden tests too." in out


def mistake(learner, exercise, hidden=False) -> ExerciseFailure:
    """The failure the exercise's visible (or hidden) cases give this learner."""
    with pytest.raises(ExerciseFailure) as failure:
        check(learner, exercise=exercise, hidden=hidden)
    return failure.value


# ---- the reference answers ----


def test_epsilon_greedy_draws_the_coin_then_the_action_from_the_generator():
    q = torch.tensor([0.2, 0.9, -0.4, 0.5])
    mine, replay = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(200):
        explore = torch.rand(1, generator=replay).item() < 0.4
        expected = int(torch.randint(4, (1,), generator=replay)) if explore else 1
        got = reference.epsilon_greedy(q, 0.4, mine)
        assert type(got) is int and got == expected
    generator = torch.Generator().manual_seed(0)
    assert {reference.epsilon_greedy(q, 0, generator) for _ in range(100)} == {1}
    assert reference.epsilon_greedy(torch.tensor([1.0, 3.0, 3.0]), 0.0, generator) == 1  # ties: the lowest index
    assert {reference.epsilon_greedy(q, 1, generator) for _ in range(200)} == {0, 1, 2, 3}


@pytest.mark.parametrize("epsilon", [-0.1, 1.5, float("nan"), "0.3", True])
def test_epsilon_greedy_refuses_an_epsilon_that_is_not_a_probability(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        reference.epsilon_greedy(torch.tensor([1.0, 2.0]), epsilon, torch.Generator())


@pytest.mark.parametrize("q", [torch.tensor([]), torch.zeros(2, 3)])
def test_epsilon_greedy_refuses_q_values_that_are_not_one_row_of_actions(q):
    with pytest.raises(ValueError, match="q_values"):
        reference.epsilon_greedy(q, 0.1, torch.Generator())


def test_grpo_advantages_judge_each_rollout_against_its_own_group():
    got = reference.grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 2)
    assert got.tolist() == pytest.approx([0.5 / (math.sqrt(0.5) + 1e-6) * s for s in (1, -1, -1, 1)], rel=1e-6)
    got = reference.grpo_advantages(torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1]), 4)  # integers
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0, 0.5, 0.5, -1.5, 0.5], abs=1e-5)
    got = reference.grpo_advantages(torch.tensor([0.2, 0.5, 0.8, 1.0, 1.0, 0.4], dtype=torch.float64), 3,
                                    normalize_by_std=False)
    assert got.dtype == torch.float64 and got.tolist() == pytest.approx([-0.3, 0, 0.3, 0.2, 0.2, -0.4])
    assert reference.grpo_advantages(torch.tensor([0.3, 1.0]), 1, normalize_by_std=False).tolist() == [0, 0]


def test_grpo_advantages_give_exactly_0_to_a_group_of_equal_rewards_even_in_float32():
    """The float32 mean of eight 0.7s is not 0.7: measured directly, (r - mean) / (std + eps) is ±0.056."""
    rewards = torch.tensor([0.7] * 8 + [0.1, 0.9] * 4)
    got = reference.grpo_advantages(rewards, 8)
    assert torch.isfinite(got).all() and (got[:8] == 0).all()
    groups = rewards.view(-1, 8)
    naive = (groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-6)
    assert naive[0].abs().max() > 1e-3  # why the reference measures from each group's first reward
    assert torch.allclose(got[8:], naive[1], atol=1e-5)


@pytest.mark.parametrize("rewards, group_size, settings, words", [
    (torch.zeros(4), 0, {}, "group_size"),
    (torch.zeros(4), -2, {}, "group_size"),
    (torch.zeros(4), 2.0, {}, "group_size"),
    (torch.zeros(5), 2, {}, "multiple of group_size"),
    (torch.zeros(3), 1, {}, "group_size=1"),
    (torch.zeros(2, 2), 2, {}, "1-D"),
    (torch.zeros(4), 2, {"eps": -1e-6}, "eps"),
])
def test_grpo_advantages_refuse_groups_that_do_not_fit(rewards, group_size, settings, words):
    with pytest.raises(ValueError, match=words):
        reference.grpo_advantages(rewards, group_size, **settings)


def _hand_ratios_loss(ratios, advantages, clip):
    return [-min(r * a, min(max(r, 1 - clip), 1 + clip) * a) for r, a in zip(ratios, advantages)]


def test_ppo_clip_loss_per_token_and_its_gradient_stops_beyond_the_clip():
    advantages, logp_new, logp_old = reference.hand_ppo_case()
    got = reference.ppo_clip_loss(advantages, logp_new, logp_old, 0.2)
    assert got.shape == (2, 3)
    assert got.flatten().tolist() == pytest.approx([-1.2, 0.8, -2.2, -0.7, 1.5, -0.5], rel=1e-6)
    assert got.flatten().tolist() == pytest.approx(
        _hand_ratios_loss([1.5, 0.5, 1.1, 0.7, 1.5, 0.5], [1, -1, 2, 1, -1, 1], 0.2), rel=1e-6)
    new = logp_new.clone().requires_grad_(True)
    reference.ppo_clip_loss(advantages, new, logp_old, 0.2).sum().backward()
    # Clipped tokens (r = 1.5 with A = 1, r = 0.5 with A = -1) get no push; the others -r * A.
    assert new.grad.flatten().tolist() == pytest.approx([0, 0, -2.2, -0.7, 1.5, -0.5], rel=1e-5)
    per_sequence = reference.ppo_clip_loss(torch.tensor([[2.0], [-1.0]]), torch.zeros(2, 4), torch.zeros(2, 4), 0.2)
    assert per_sequence.tolist() == [[-2.0] * 4, [1.0] * 4]


@pytest.mark.parametrize("clip", [0, 0.0, -0.2, float("nan"), float("inf"), "0.2", True])
def test_ppo_clip_loss_refuses_a_clip_that_is_not_a_positive_number(clip):
    with pytest.raises(ValueError, match="clip"):
        reference.ppo_clip_loss(torch.ones(2), torch.zeros(2), torch.zeros(2), clip)


def test_kl_penalty_is_k3_never_negative_and_0_where_the_models_agree():
    logp, ref = torch.tensor([0.5, 0.25, 0.3]).log(), torch.tensor([0.25, 0.5, 0.3]).log()
    got = reference.kl_penalty(logp, ref)
    assert got.tolist() == pytest.approx([0.5 + math.log(2) - 1, 2 - math.log(2) - 1, 0], abs=1e-6)
    assert got[2].item() == 0.0
    generator = torch.Generator().manual_seed(0)
    logp, ref = torch.randn(4, 50, generator=generator) * 3, torch.randn(4, 50, generator=generator) * 3
    assert (reference.kl_penalty(logp, ref) >= 0).all()
    tiny = torch.tensor([1e-4, -1e-7, 3e-9])
    assert (reference.kl_penalty(torch.zeros(3), tiny) >= 0).all()
    logp = logp.requires_grad_(True)
    reference.kl_penalty(logp, ref).sum().backward()
    assert torch.allclose(logp.grad, 1 - torch.exp(ref - logp.detach()), rtol=1e-5)


def test_k3_averages_to_the_kl_over_tokens_sampled_from_the_policy():
    """Unbiased: the mean of k3 over many draws from the policy is KL(policy || reference)."""
    policy, ref = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.2, 0.5, 0.3])
    tokens = torch.multinomial(policy, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    estimate = reference.kl_penalty(policy.log()[tokens], ref.log()[tokens]).mean().item()
    exact = (policy * (policy / ref).log()).sum().item()
    assert estimate == pytest.approx(exact, rel=0.02)


def test_the_stated_values_are_the_references():
    """The numbers the checks' messages quote."""
    got = reference.grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 2, eps=0.1)
    assert got[0].item() == pytest.approx(0.6195, abs=1e-4)
    assert reference.grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 2)[0].item() == pytest.approx(0.7071,
                                                                                                       abs=1e-4)
    got = reference.kl_penalty(torch.tensor([0.5, 0.25, 0.3]).log(), torch.tensor([0.25, 0.5, 0.3]).log())
    assert [round(x, 4) for x in got.tolist()] == [0.1931, 0.3069, 0.0]
    advantages, logp_new, logp_old = reference.hand_ppo_case()
    assert torch.exp(logp_new - logp_old).flatten().tolist() == pytest.approx([1.5, 0.5, 1.1, 0.7, 1.5, 0.5])


# ---- epsilon_greedy ----


def learner_epsilon(q_values, epsilon, generator, *, bug=None):
    """A learner's epsilon_greedy, with one chosen mistake."""
    if bug != "no check" and not 0 <= epsilon <= 1:
        raise ValueError("epsilon must be in [0, 1]")
    n = len(q_values)
    if bug != "no check" and n == 0:
        raise ValueError("no actions")
    best = int(torch.argmax(q_values))
    if bug == "other order":  # draws the action first, every time: the same shares
        candidate = int(torch.randint(n, (1,), generator=generator))
        return candidate if torch.rand(1, generator=generator).item() < epsilon else best
    if bug == "python random":
        explore = random.random() < epsilon
    elif bug == "global generator":
        explore = torch.rand(1).item() < epsilon
    elif bug == "inverted":
        explore = torch.rand(1, generator=generator).item() > epsilon
    elif bug == "never explore":
        explore = False
    else:
        explore = torch.rand(1, generator=generator).item() < epsilon
    if explore:
        if bug == "exclude greedy":
            others = [i for i in range(n) if i != best]
            return others[int(torch.randint(n - 1, (1,), generator=generator))]
        if bug == "off by one":
            return int(torch.randint(n - 1, (1,), generator=generator))
        return int(torch.randint(n, (1,), generator=generator))
    if bug == "argmin":
        return int(torch.argmin(q_values))
    if bug == "last tie":
        return n - 1 - int(torch.argmax(q_values.flip(0)))
    if bug == "tensor":
        return torch.argmax(q_values)
    return best


@pytest.mark.parametrize("bug", [None, "other order"])
def test_a_correct_learner_passes_whatever_order_it_draws_in(bug, capsys):
    check(functools.partial(learner_epsilon, bug=bug), exercise="epsilon_greedy")
    assert "✅ epsilon_greedy passes the visible tests." in capsys.readouterr().out


@pytest.mark.parametrize("bug, key", [
    ("exclude greedy", "greedy_left_out"),
    ("off by one", "last_never_drawn"),
    ("inverted", "explores_at_zero"),
    ("never explore", "never_explores"),
    ("argmin", "argmin"),
    ("last tie", "tie"),
    ("tensor", "not_an_int"),
    ("python random", "generator"),
    ("global generator", "generator"),
    ("no check", "no_refusal"),
])
def test_epsilon_greedy_names_the_mistake(bug, key):
    assert mistake(functools.partial(learner_epsilon, bug=bug), "epsilon_greedy").key == key


def test_the_epsilon_check_shows_the_shares():
    """Leaving the greedy action out of exploring fails at epsilon 0.3, quoting the shares expected there."""
    failure = mistake(functools.partial(learner_epsilon, bug="exclude greedy"), "epsilon_greedy")
    assert failure.key == "greedy_left_out" and "[0.075, 0.775, 0.075, 0.075]" in str(failure)


# ---- grpo_advantages ----


def learner_grpo(rewards, group_size, eps=1e-6, normalize_by_std=True, *, bug=None):
    """A learner's grpo_advantages, with one chosen mistake."""
    if bug != "no check":
        if group_size < 1 or len(rewards) % group_size:
            raise ValueError("rewards do not split into groups")
        if group_size == 1 and (normalize_by_std or bug == "no size 1"):
            raise ValueError("groups of 1 have no std")
    if bug != "int rewards" and not rewards.is_floating_point():
        rewards = rewards.float()
    if bug == "in place":
        groups = rewards.view(-1, group_size)
        groups -= groups.mean(dim=1, keepdim=True)
        return (groups / (groups.std(dim=1, keepdim=True) + eps)).reshape(-1) if normalize_by_std else rewards
    if bug == "whole batch":
        groups = rewards.view(1, -1)
    elif bug == "strided":
        groups = rewards.view(-1, group_size).T  # each row every group_size-th reward
    else:
        groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    advantages = groups if bug == "no mean" else groups - mean
    if normalize_by_std or bug == "flag ignored":
        std = groups.std(dim=1, keepdim=True, correction=0 if bug == "population" else 1)
        if bug == "sqrt eps":
            advantages = advantages / torch.sqrt(groups.var(dim=1, keepdim=True) + eps)
        elif bug == "no eps":
            advantages = advantages / std
        else:
            advantages = advantages / (std + eps)
    if bug == "2-D":
        return advantages
    if bug == "strided":
        advantages = advantages.T
    return advantages.reshape(-1)


def test_the_mistake_free_learner_grpo_passes(capsys):
    check(learner_grpo, exercise="grpo_advantages")
    check(learner_grpo, exercise="grpo_advantages", hidden=True)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, key", [
    ("population", "population"),
    ("whole batch", "whole_batch"),
    ("strided", "strided"),
    ("sqrt eps", "sqrt_eps"),
    ("no eps", "zero_std"),
    ("no mean", "no_mean"),
    ("flag ignored", "flag_ignored"),
    ("2-D", "shape"),
    ("in place", "changed_input"),
    ("no check", "no_refusal"),
])
def test_grpo_advantages_names_the_mistake(bug, key):
    assert mistake(functools.partial(learner_grpo, bug=bug), "grpo_advantages").key == key


@pytest.mark.parametrize("bug, key", [
    ("int rewards", "int_rewards"),
    ("no size 1", "size_one_allowed"),
])
def test_the_hidden_grpo_cases_catch_what_the_visible_ones_let_through(bug, key):
    check(functools.partial(learner_grpo, bug=bug), exercise="grpo_advantages")
    assert mistake(functools.partial(learner_grpo, bug=bug), "grpo_advantages", hidden=True).key == key


# ---- ppo_clip_loss ----


def learner_ppo(advantages, logp_new, logp_old, clip, *, bug=None):
    """A learner's ppo_clip_loss, with one chosen mistake."""
    if bug != "no check" and clip <= 0:
        raise ValueError("clip must be positive")
    if bug == "fixed clip":
        clip = 0.2
    if bug == "divide":
        ratio = logp_new / logp_old
    elif bug == "upside down":
        ratio = torch.exp(logp_old - logp_new)
    elif bug == "exp divide":
        ratio = torch.exp(logp_new) / torch.exp(logp_old)
    else:
        ratio = torch.exp(logp_new - logp_old)
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    if bug == "upper only":
        clipped = torch.clamp(ratio, max=1 + clip)
    if bug == "lower only":
        clipped = torch.clamp(ratio, min=1 - clip)
    surrogate = torch.min(ratio * advantages, clipped * advantages)
    if bug == "clamp advantage":
        surrogate = torch.min(ratio * advantages, ratio * torch.clamp(advantages, 1 - clip, 1 + clip))
    if bug == "max":
        surrogate = torch.max(ratio * advantages, clipped * advantages)
    if bug == "no min":
        surrogate = clipped * advantages
    loss = surrogate if bug == "no minus" else -surrogate
    if bug == "mean":
        return loss.mean()
    if bug == "detached":
        return loss.detach()
    if bug == "list":
        return loss.tolist()
    return loss


def test_the_mistake_free_learner_ppo_passes(capsys):
    check(learner_ppo, exercise="ppo_clip_loss")
    check(learner_ppo, exercise="ppo_clip_loss", hidden=True)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, key", [
    ("max", "max"),
    ("no minus", "no_minus"),
    ("clamp advantage", "clamp_advantage"),
    ("divide", "divided_logps"),
    ("upside down", "upside_down"),
    ("upper only", "upper_only"),
    ("lower only", "lower_only"),
    ("no min", "no_min"),
    ("mean", "mean"),
    ("fixed clip", "fixed_clip"),
    ("detached", "no_gradient"),
    ("list", "not_a_tensor"),
    ("no check", "no_refusal"),
])
def test_ppo_clip_loss_names_the_mistake(bug, key):
    assert mistake(functools.partial(learner_ppo, bug=bug), "ppo_clip_loss").key == key


def test_the_hidden_ppo_cases_catch_a_ratio_of_exps_underflowing():
    check(functools.partial(learner_ppo, bug="exp divide"), exercise="ppo_clip_loss")
    assert mistake(functools.partial(learner_ppo, bug="exp divide"), "ppo_clip_loss", hidden=True).key == "underflow"


# ---- kl_penalty ----


def learner_kl(logp, ref_logp, *, bug=None):
    """A learner's kl_penalty, with one chosen mistake."""
    if bug == "naive":
        return logp - ref_logp
    if bug == "k2":
        return (logp - ref_logp) ** 2 / 2
    d = logp - ref_logp if bug == "reverse" else ref_logp - logp
    ratio = torch.exp(ref_logp) / torch.exp(logp) if bug == "ratio of exps" else torch.exp(d)
    k3 = ratio - d - 1
    if bug == "mean":
        return k3.mean()
    if bug == "detached":
        return k3.detach()
    if bug == "eps":
        return k3 + 1e-9
    return k3


def test_the_mistake_free_learner_kl_passes(capsys):
    check(learner_kl, exercise="kl_penalty")
    assert "✅ kl_penalty passes the visible tests." in capsys.readouterr().out


@pytest.mark.parametrize("bug, key", [
    ("naive", "k1"),
    ("reverse", "reverse"),
    ("k2", "k2"),
    ("mean", "mean"),
    ("detached", "no_gradient"),
    ("ratio of exps", "underflow"),
    ("eps", "not_exactly_zero"),
])
def test_kl_penalty_names_the_mistake(bug, key):
    assert mistake(functools.partial(learner_kl, bug=bug), "kl_penalty").key == key


@pytest.mark.parametrize("exercise, learner, bug", [
    ("grpo_advantages", learner_grpo, "sqrt eps"),
    ("grpo_advantages", learner_grpo, "strided"),
    ("grpo_advantages", learner_grpo, "no mean"),
    ("ppo_clip_loss", learner_ppo, "max"),
    ("ppo_clip_loss", learner_ppo, "upper only"),
    ("ppo_clip_loss", learner_ppo, "clamp advantage"),
    ("epsilon_greedy", learner_epsilon, "never explore"),
    ("kl_penalty", learner_kl, "reverse"),
    ("epsilon_greedy", learner_epsilon, "off by one"),
])
def test_a_wrong_answer_names_one_mistake_only(exercise, learner, bug):
    failure = mistake(functools.partial(learner, bug=bug), exercise)
    assert str(failure).count("hint:") == 1 and "\n   or:" not in str(failure)


def test_the_old_check_names_run_the_same_declarations():
    with pytest.raises(ExerciseFailure) as failure:
        checks.check_ppo_clip_loss_hidden(functools.partial(learner_ppo, bug="exp divide"))
    assert failure.value.key == "underflow"


# ---- evaluate the claim ------------------------------------------------------------------------
MEASURED = dict(grpo_gain=0.2, control_gain=-0.4, hack_length=(2.5, 4.0), hack_accuracy=(0.5, 0.0),
                sweep_accuracy={0.0: 0.0, 0.1: 0.6, 0.3: 0.7, 1.0: 0.7})


def test_the_rl_claims_are_checked_against_the_measurements(capsys):
    from course_lib.checks import check_rl_claims

    check_rl_claims(True, "longer and less accurate", 0.3, **MEASURED)
    check_rl_claims(True, "longer and less accurate", 1.0, **MEASURED)  # a tie: either is right
    assert capsys.readouterr().out.count("✅") == 2
    assert reference.rl_claims(**MEASURED) == (True, "longer and less accurate", 0.3)


@pytest.mark.parametrize("answers, measured, key", [
    ((False, "longer and less accurate", 0.3), {}, "control"),
    (("yes", "longer and less accurate", 0.3), {}, "not_true_or_false"),
    ((True, "shorter and less accurate", 0.3), {}, "hack_effect"),
    ((True, "worse", 0.3), {}, "not_an_effect"),
    ((True, "longer and less accurate", 0.0), {}, "leash"),
    # An install without the stored sweep: the third answer cannot be checked, and the failure says
    # how to get the sweep back rather than failing on a missing attribute.
    ((True, "longer and less accurate", None), {"sweep_accuracy": None}, "no_sweep"),
])
def test_a_claim_that_disagrees_with_the_measurements_is_named(answers, measured, key):
    with pytest.raises(ExerciseFailure) as failure:
        check(*answers, exercise="rl_claims", **{**MEASURED, **measured})
    assert failure.value.key == key


def test_a_leash_within_the_seeds_spread_of_the_best_is_right_and_one_beyond_it_is_not():
    """The stored sweep's shape: 0.3 and 1.0 differ by less than their seeds' ranges; 0.1 is clearly worse."""
    ranges = {0.0: (0.0, 0.0, 0.0), 0.1: (0.52, 0.49, 0.57), 0.3: (0.647, 0.625, 0.67), 1.0: (0.642, 0.63, 0.653)}
    measured = {**MEASURED, "sweep_accuracy": ranges}
    for leash in (0.3, 1.0):
        check(True, "longer and less accurate", leash, exercise="rl_claims", **measured)
    with pytest.raises(ExerciseFailure) as failure:
        check(True, "longer and less accurate", 0.1, exercise="rl_claims", **measured)
    assert failure.value.key == "leash" and "0.3: 0.65 (0.62 to 0.67)" in str(failure.value)
