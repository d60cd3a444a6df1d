"""Notebook E's exercises: reinforcement learning, from a bandit to the losses of GRPO.

An agent that always takes the action it currently thinks best never finds out whether another is
better; epsilon-greedy explores a little and exploits the rest. For a language model the "actions"
are tokens and an answer's reward comes from a checker. GRPO (Shao et al. 2024, "DeepSeekMath:
Pushing the Limits of Mathematical Reasoning in Open Language Models") samples a group of answers
to each prompt and judges each answer against its own group's average, instead of against a
learned critic. The policy then takes PPO's clipped step (Schulman et al. 2017, "Proximal Policy
Optimization Algorithms"), held near a frozen reference model by a KL penalty.

Shapes: the per-token functions take tensors of the same shape, usually (batch, time), one value
per generated token; advantages may also come one per sequence, shape (batch, 1), and broadcast.
None of them reduces: the trainer masks the padding and takes the mean.

When an answer is wrong, the cases compute what the usual mistakes would have given (the greedy
action left out of exploring, a population standard deviation, groups taken strided, max instead
of min, the ratio upside down, k3 of the reverse direction, ...) and name the one that matches.
epsilon-greedy is checked by the shares of many draws, not by exact draws, so any order of drawing
from the generator passes. The notebook's "evaluate the claim" is checked against what it measured.
"""
from __future__ import annotations

import math
import random
import warnings
from typing import Callable

import torch

from course_lib.exercises.engine import (FLOAT64_TOLERANCE as TOLERANCE, Exercise, Float64Case, Hint, Trial, matching,
                                         rounded)
from course_lib.validation import is_number, is_whole


# --------------------------------------------------------------------------------------------
# What the cases below share
# --------------------------------------------------------------------------------------------


def close(a, b) -> bool:  # the tolerance of Float64Case: k3 reaches e^20
    """Same shape, finite, and within Float64Case's tolerance (TOLERANCE * (1 + |b|)) elementwise."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return (a.shape == b.shape and bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
            and bool(((a - b).abs() <= TOLERANCE * (1 + b.abs())).all()))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# epsilon_greedy
# --------------------------------------------------------------------------------------------
def epsilon_greedy(q_values, epsilon: float, generator: torch.Generator | None = None) -> int:
    """Explore a little, exploit the rest: an action id (an int) for these estimated values.

    With probability epsilon, an action drawn uniformly from ALL of them (the best one included);
    otherwise the action with the highest estimate (ties: the lowest index, as torch.argmax does).
    Every draw comes from `generator`, so a seeded generator gives the same actions again: first
    torch.rand(1) decides explore (< epsilon) or exploit, then, only when exploring,
    torch.randint(len(q_values), (1,)) picks the action.
    """
    if not is_number(epsilon) or not 0 <= epsilon <= 1:  # a NaN fails both comparisons
        raise ValueError(f"epsilon must be a probability, a number in [0, 1], got {epsilon!r}")
    q = torch.as_tensor(q_values)
    if q.dim() != 1 or q.numel() == 0:
        raise ValueError(f"q_values must be a 1-D tensor with one value per action, got shape {tuple(q.shape)}")
    device = generator.device if generator is not None else None  # a CUDA generator draws on its GPU
    if torch.rand(1, generator=generator, device=device).item() < epsilon:
        return int(torch.randint(len(q), (1,), generator=generator, device=device))
    return int(torch.argmax(q))


# 20,000 draws put each action's share within 0.02 of its probability (at least 6.5 standard
# deviations in every case below: a false failure about once in a billion runs of the check), while
# every mistake the hints name moves some share by 0.03 or more, or picks an action that must never
# come. The shares, not the exact draws, are checked: any order of drawing passes.
DRAWS = 20_000
SHARE_TOLERANCE = 0.02

Q = torch.tensor([0.2, 0.9, -0.4, 0.5])  # the greedy action is 1: neither the first nor the last


def action(t: Trial, q: torch.Tensor, epsilon: float, generator: torch.Generator) -> int:
    what = f"epsilon_greedy(q_values={rounded(q)}, epsilon={epsilon}, generator)"
    picked = t.call(q, epsilon, generator, what=what)
    if not isinstance(picked, int) or isinstance(picked, bool):
        t.fail("not_an_int", f"{what} should return a Python int, the action's index", "an int such as 1",
               f"{type(picked).__name__}: {picked!r}"[:120])
    if not 0 <= picked < len(q):
        t.fail("no_such_action", f"{what} returned an action that does not exist",
               f"an index in 0 .. {len(q) - 1}", picked)
    return picked


def always_exploits(t: Trial, q: torch.Tensor, best: int, what: str, key: str = "not_greedy",
                    calls: int = 200) -> None:
    generator = seeded(5)
    picked = [action(t, q, 0, generator) for _ in range(calls)]
    if any(p != best for p in picked):
        if len(set(picked)) == 1 and picked[0] == int(torch.argmin(q)):
            key = "argmin"
        elif len(set(picked)) > 1:
            key = "explores_at_zero"
        t.fail(key, f"{what}: with epsilon=0 every one of {calls} calls should exploit", f"always {best}",
               f"{sorted(set(picked))} (the first picks: {picked[:8]})")


def greedy_at_epsilon_zero(t: Trial) -> None:
    always_exploits(t, Q, 1, f"q_values={rounded(Q)}")
    always_exploits(t, torch.tensor([-2.0, -5.0, -1.0]), 2, "q_values=[-2.0, -5.0, -1.0]")
    always_exploits(t, torch.tensor([7.0, 1.0]), 0, "q_values=[7.0, 1.0]")
    always_exploits(t, torch.tensor([1.0, 3.0, 3.0, 0.5]), 1, "q_values=[1.0, 3.0, 3.0, 0.5], a tie for the best",
                    key="tie")


def draws_from_the_generator(t: Trial) -> None:
    t.same_draws(lambda generator: [action(t, Q, 0.5, generator) for _ in range(60)], "generator",
               "two runs with generators seeded alike (epsilon=0.5) should pick the same actions")


def mistaken_shares(q: torch.Tensor, epsilon: float) -> dict[str, torch.Tensor]:
    """The distributions over actions the usual mistakes draw from, keyed by the mistake."""
    k = len(q)
    best, worst = int(torch.argmax(q)), int(torch.argmin(q))
    eye = torch.eye(k, dtype=torch.float64)
    uniform = torch.full((k,), 1 / k, dtype=torch.float64)
    others = (1 - eye[best]) / (k - 1)
    all_but_last = torch.cat([torch.full((k - 1,), 1 / (k - 1), dtype=torch.float64),
                              torch.zeros(1, dtype=torch.float64)])

    def mix(greedy, explore, e=epsilon):
        return (1 - e) * greedy + e * explore

    return {"greedy_left_out": mix(eye[best], others), "inverted": mix(eye[best], uniform, 1 - epsilon),
            "argmin": mix(eye[worst], uniform), "never_explores": eye[best], "always_explores": uniform,
            "last_never_drawn": mix(eye[best], all_but_last)}


def close_shares(a, b) -> bool:
    """Close shares, and never an action that b rules out."""
    return bool(((a - b).abs() <= SHARE_TOLERANCE).all() and (a[b == 0] == 0).all())


def shares_of_many_draws(q: torch.Tensor, epsilon: float, seed: int) -> Callable[[Trial], None]:
    def case(t: Trial) -> None:
        generator = seeded(seed)
        counts = torch.zeros(len(q), dtype=torch.float64)
        for _ in range(DRAWS):
            counts[action(t, q, epsilon, generator)] += 1
        got = counts / DRAWS
        best = int(torch.argmax(q))
        expected = torch.full((len(q),), epsilon / len(q), dtype=torch.float64)
        expected[best] += 1 - epsilon
        if not close_shares(got, expected):
            t.fail(matching(got, expected, mistaken_shares(q, epsilon), close_shares) or ["shares"],
                        f"q_values={rounded(q)}, epsilon={epsilon}: the share of {DRAWS:,} calls that picked each "
                        f"action 0..{len(q) - 1} (action {best} is the greedy one: 1 - epsilon + epsilon/{len(q)} "
                        f"= {1 - epsilon + epsilon / len(q):.4g}, each other epsilon/{len(q)} = "
                        f"{epsilon / len(q):.4g})", rounded(expected, 3), rounded(got, 3))
    return case


def refuses_a_bad_epsilon_or_no_action(t: Trial) -> None:
    for epsilon in (-0.1, 1.5):
        t.refuses(f"epsilon_greedy with epsilon={epsilon}", Q, epsilon, seeded(0))
    t.refuses("epsilon_greedy with an empty q_values (no action)", torch.tensor([]), 0.1, seeded(0))


EPSILON_GREEDY = Exercise(
    name="epsilon_greedy",
    answer=epsilon_greedy,
    probe=lambda f: f(torch.tensor([0.0, 1.0]), 0.5, torch.Generator().manual_seed(0)),
    mistakes={
        "raised": "use the generator passed in for every draw: explore when torch.rand(1, generator=generator) < "
                  "epsilon, then pick torch.randint(len(q_values), (1,), generator=generator); else "
                  "int(torch.argmax(q_values))",
        "not_an_int": "torch.argmax and torch.randint return tensors: convert the action with int(...)",
        "no_such_action": "an action is an index into q_values, from 0 to len(q_values) - 1",
        "not_greedy": "with epsilon=0, always the action with the highest value: int(torch.argmax(q_values))",
        "argmin": "that is the action with the LOWEST value: exploit the one with the HIGHEST estimated value, "
                  "int(torch.argmax(q_values))",
        "explores_at_zero": "epsilon=0 never explores: explore only when torch.rand(1, generator=generator) < "
                            "epsilon (strictly less: a draw is never below 0). Is the comparison the wrong way "
                            "round? epsilon is the probability of exploring",
        "tie": "a tie goes to the LOWEST index, as torch.argmax does: int(torch.argmax(q_values)) (not a random "
               "pick among the best, nor the last one)",
        "generator": "draw from the generator passed in, for both the explore-or-exploit coin and the action: "
                     "torch.rand(1, generator=generator), torch.randint(..., generator=generator) (not "
                     "random.random() or torch's global generator)",
        "greedy_left_out": "when exploring, draw from ALL the actions, the greedy one included "
                           "(torch.randint(len(q_values), (1,), generator=generator)): leaving it out makes the "
                           "greedy action rarer than 1 - epsilon + epsilon / n",
        "inverted": "epsilon is the probability of EXPLORING: explore when torch.rand(1, generator=generator) < "
                    "epsilon and exploit otherwise (the comparison is the wrong way round)",
        "never_explores": "it never explores: with probability epsilon (torch.rand(1, generator=generator) < "
                          "epsilon) pick an action uniformly at random",
        "always_explores": "it always explores: explore only with probability epsilon, and exploit, "
                           "int(torch.argmax(q_values)), otherwise",
        "last_never_drawn": "the last action is never drawn: torch.randint(high, ...) excludes high, so "
                            "torch.randint(len(q_values), (1,), generator=generator) already covers every action "
                            "(len(q_values) - 1 leaves the last one out)",
        "shares": "with probability epsilon pick any action uniformly at random (the greedy one included), else "
                  "the argmax",
        "no_refusal": "raise ValueError with a message unless 0 <= epsilon <= 1 (epsilon is a probability), and "
                      "when len(q_values) == 0 (there is no action to pick)",
    },
    visible=(greedy_at_epsilon_zero, draws_from_the_generator, shares_of_many_draws(Q, 0.3, seed=0),
             shares_of_many_draws(Q, 1.0, seed=1), shares_of_many_draws(torch.tensor([-1.0, 0.0, 2.5]), 0.1, seed=2),
             refuses_a_bad_epsilon_or_no_action),
    hints=(
        Hint("Two branches: explore (a random action) or exploit (the best-looking one). First refuse what makes "
             "no sense, `raise ValueError(...)` when `epsilon` is outside [0, 1] or `q_values` is empty; then "
             "flip a biased coin with `torch.rand(1, generator=generator)`, a number between 0 and 1 drawn from "
             "the generator you were given.",
             fits=("no_refusal", "generator", "raised")),
        Hint("Explore when that draw is below `epsilon` (`torch.rand(1, generator=generator).item() < epsilon`): "
             "epsilon is the probability of exploring, and epsilon 0 never explores. Otherwise exploit: "
             "`int(torch.argmax(q_values))`, the highest estimate, with ties going to the lowest index.",
             fits=("inverted", "explores_at_zero", "never_explores", "always_explores", "not_greedy", "argmin",
                   "tie", "not_an_int")),
        Hint("When exploring, draw from ALL the actions, the best one included: "
             "`torch.randint(len(q_values), (1,), generator=generator)` gives 0 to `len(q_values) - 1` (its "
             "upper bound is already left out, so subtract nothing). Turn it into a plain number with `int(...)`.",
             fits=("greedy_left_out", "last_never_drawn", "no_such_action", "shares")),
    ),
)


# --------------------------------------------------------------------------------------------
# grpo_advantages
# --------------------------------------------------------------------------------------------
def grpo_advantages(rewards, group_size: int, eps: float = 1e-6, normalize_by_std: bool = True) -> torch.Tensor:
    """GRPO's advantages: each rollout judged against its own group's average, no learned critic.

    rewards: 1-D, one reward per rollout, the group_size rollouts of one prompt next to each other
    (rewards[0:group_size] is the first prompt's group). Each reward minus its group's mean,
    divided by the group's sample standard deviation (N - 1, torch.std's default) plus eps; a
    group whose rewards are all equal teaches nothing and gets 0 (not 0/0). With
    normalize_by_std=False only the mean is subtracted (as Dr. GRPO, Liu et al. 2025, suggests).
    Same shape as rewards; float64 stays float64, integer rewards become floats.

    Raises ValueError when group_size is not a whole number >= 1, when the rewards do not split
    into whole groups, and for group_size 1 with normalize_by_std (the sample standard deviation
    of one value is 0/0).
    """
    rewards = torch.as_tensor(rewards)
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D, one reward per rollout, got shape {tuple(rewards.shape)}")
    if not is_whole(group_size) or group_size < 1:
        raise ValueError(f"group_size must be a whole number >= 1, got {group_size!r}")
    if len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}: the length must be a "
                         f"multiple of group_size")
    if normalize_by_std and group_size == 1:
        raise ValueError("group_size=1 with normalize_by_std=True: the sample standard deviation of a single "
                         "reward is undefined (0/0); use groups of at least 2 rollouts")
    if not is_number(eps) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
    groups = rewards.reshape(-1, group_size)  # one row per prompt
    # Measured from each group's first reward: the same mean difference and std, but a group of equal
    # rewards is exactly 0 here. Taken directly, the float32 mean of eight rewards of 0.7 is 0.7 -
    # 7e-8, and (reward - mean) / (std + eps) gives ±0.056 instead of 0.
    shifted = groups - groups[:, :1]
    advantages = shifted - shifted.mean(dim=1, keepdim=True)
    if normalize_by_std:
        advantages = advantages / (shifted.std(dim=1, keepdim=True) + eps)
    return advantages.reshape(rewards.shape)


# How the usual mistakes lay the rewards out: one row per group (right), the whole batch as one
# group, or group_size rows of len(rewards) / group_size (each column then holds one group).
LAYOUTS = {"rows": lambda r, size: r.reshape(-1, size), "batch": lambda r, size: r[None],
           "columns": lambda r, size: r.reshape(size, -1)}


def judged(groups, dim, eps, scale, *, population=False, sqrt_eps=False, centre=True) -> torch.Tensor:
    """Advantages with each group a slice of `groups` along `dim`, flattened back in the order of the rewards."""
    centred = groups - groups.mean(dim, keepdim=True) if centre else groups
    if scale:
        correction = 0 if population else 1
        spread = ((groups.var(dim, keepdim=True, correction=correction) + eps).sqrt() if sqrt_eps else
                  groups.std(dim, keepdim=True, correction=correction) + eps)
        centred = centred / spread
    return centred.reshape(-1)


def grpo_mistake(layout: str = "rows", dim: int = 1, *, needs_std: bool = False, scale: bool | None = None,
                 no_eps: bool = False, **steps) -> Callable:
    """grpo_advantages with the groups laid out wrongly, or a step (`steps` of judged) done wrongly.
    `scale` overrides normalize_by_std; a mistake in the division by the std (`needs_std`) cannot be
    made without one."""
    def wrong(rewards, group_size, eps=1e-6, normalize_by_std=True):
        if needs_std and not normalize_by_std:
            raise ValueError("this mistake needs normalize_by_std=True")
        groups = LAYOUTS[layout](torch.as_tensor(rewards).double(), group_size)
        with warnings.catch_warnings():  # a std over a strided "group" of one value warns, and is NaN: no match
            warnings.simplefilter("ignore")
            return judged(groups, dim, 0.0 if no_eps else eps, normalize_by_std if scale is None else scale, **steps)
    return wrong


def batch_std(rewards, group_size, eps=1e-6, normalize_by_std=True):
    """The group's mean, but the whole batch's std."""
    if not normalize_by_std:
        raise ValueError("this mistake needs normalize_by_std=True")
    r = torch.as_tensor(rewards).double()
    rows = r.reshape(-1, group_size)
    return (rows - rows.mean(1, keepdim=True)).reshape(-1) / (r.std() + eps)


SINGLE_GRPO_MISTAKES = {
    "whole_batch": grpo_mistake("batch"),
    "strided": grpo_mistake("rows", 0),
    "strided_columns": grpo_mistake("columns", 0),
    "group_count": grpo_mistake("columns", 1),
    "sign": lambda rewards, *args, **kwargs: -grpo_advantages(rewards, *args, **kwargs),
    "shape": lambda rewards, group_size, *args, **kwargs: grpo_advantages(rewards, group_size, *args,
                                                                          **kwargs).reshape(-1, group_size),
    "population": grpo_mistake(needs_std=True, population=True),
    "sqrt_eps": grpo_mistake(needs_std=True, sqrt_eps=True),
    "no_eps": grpo_mistake(needs_std=True, no_eps=True),
    "batch_std": batch_std,
    "no_mean": grpo_mistake(needs_std=True, centre=False),
    "no_division": grpo_mistake(needs_std=True, scale=False),
    "flag_ignored": grpo_mistake(scale=True),
}


def unless_a_single_mistake(wrong: Callable) -> Callable:
    """Two mistakes at once: named only where no single mistake gives the same result."""
    def combined(*args, **kwargs):
        result = wrong(*args, **kwargs)
        for single in SINGLE_GRPO_MISTAKES.values():
            try:
                explained = close(result, single(*args, **kwargs))
            except Exception:  # a single mistake that cannot be made on this input
                continue
            if explained:
                raise ValueError("a single mistake gives this result")
        return result
    return combined


GRPO_MISTAKES = {
    **SINGLE_GRPO_MISTAKES,
    "population_and_sqrt_eps": unless_a_single_mistake(grpo_mistake(needs_std=True, population=True, sqrt_eps=True)),
    "whole_batch_and_population": unless_a_single_mistake(grpo_mistake("batch", needs_std=True, population=True)),
}


def random_rewards(seed: int, groups: int, size: int, *, kind: str = "partial") -> torch.Tensor:
    """Seeded rewards: 0/1 ("binary"), partial credit in [0, 1] ("partial") or scores ("scores"), the second group
    all equal (a prompt every rollout solved, or none did).

    The equal rewards are 0, 1 or 10, whose float32 mean is exact: the float32 mean of equal rewards such as 0.7
    is off in its last bit, and the plain (reward - mean) / (std + eps) then gives ±0.06 instead of 0."""
    generator = seeded(seed)
    if kind == "binary":
        rewards = (torch.rand(groups, size, generator=generator) < 0.5).float()
    elif kind == "scores":
        rewards = torch.randn(groups, size, generator=generator) * 3 + 10
    else:
        rewards = torch.rand(groups, size, generator=generator).round(decimals=2)
    if groups > 1:
        rewards[1] = 10.0 if kind == "scores" else float(seed % 2)
    return rewards.reshape(-1)


def grpo_case(what: str, rewards: torch.Tensor, group_size: int, *, key: str = "values", raised: str = "raised",
              **kwargs) -> Compared:
    """A comparison on these rewards; NaN there means 0/0 from a group of equal rewards when there is one."""
    settings = "".join(f", {name}={value}" for name, value in kwargs.items())
    groups = rewards.reshape(-1, group_size)
    all_equal = bool((groups == groups[:, :1]).all(dim=1).any())
    return Float64Case(f"{what}, group_size={group_size}{settings}", (rewards, group_size), kwargs, key=key,
                    not_finite="zero_std" if all_equal else "not_finite", raised=raised)


def refuses_groups_that_do_not_fit(t: Trial) -> None:
    t.refuses("grpo_advantages with group_size=0", torch.zeros(4), 0)
    t.refuses("grpo_advantages with 5 rewards in groups of 2", torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]), 2)
    t.refuses("grpo_advantages with group_size=1 and normalize_by_std=True", torch.tensor([1.0, 0.0, 1.0]), 1)


def refuses_more_groups_that_do_not_fit(t: Trial) -> None:
    t.refuses("grpo_advantages with group_size=-2", torch.zeros(4), -2)
    t.refuses("grpo_advantages with 7 rewards in groups of 3", torch.arange(7.0), 3)
    t.refuses("grpo_advantages with group_size=1 (normalize_by_std=True, the default) on 6 rewards",
              torch.arange(6.0), 1)


def random_grpo_case(seed: int) -> Compared:
    draw = random.Random(seed)
    groups, size = draw.randint(2, 6), draw.randint(2, 9)
    kind, eps = draw.choice(("binary", "partial", "scores")), draw.choice((1e-6, 1e-4, 0.5))
    return grpo_case(f"{groups} groups of {size} {kind} rewards (seed {seed})",
                     random_rewards(seed, groups, size, kind=kind), size, eps=eps)


_GRPO = ("each reward minus its group's mean, divided by the group's sample std + eps: groups = "
         "rewards.view(-1, group_size), (groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, "
         "keepdim=True) + eps), then .reshape(-1) back to the shape of rewards")
_CONSECUTIVE = ("a group is group_size CONSECUTIVE rewards (rewards[0:group_size] is the first prompt's), the rows "
                "of rewards.view(-1, group_size): take the mean and std over dim=1")
_POPULATION = ("that divides by the population standard deviation (divided by N): use the SAMPLE standard "
               "deviation (N - 1), torch.std's default, groups.std(dim=1, keepdim=True), not unbiased=False, "
               "correction=0 or a hand-written mean of squares")
_SQRT_EPS = "eps goes outside the square root, added to the standard deviation: / (std + eps), not / sqrt(var + eps)"
_WHOLE_BATCH = ("that normalises over the whole batch: GRPO judges each rollout against its own group (the "
                "group_size rollouts of the same prompt), so take the mean and std of each group, over dim=1 of "
                "rewards.view(-1, group_size)")
_SHAPE = "one advantage per rollout, the same shape as rewards: reshape the result back, .reshape(-1)"
_IN_PLACE = ("use operations that return new tensors (rewards - mean, torch.clamp, torch.minimum), not in-place "
             "ones (-=, /=, clamp_, x[...] = ...): the caller still needs its tensors")
_NOT_A_TENSOR = ("return a torch tensor with one value per element of the input (no .item(), .tolist() or Python "
                 "floats)")

GRPO_ADVANTAGES = Exercise(
    name="grpo_advantages",
    answer=grpo_advantages,
    probe=lambda f: f(torch.tensor([0.0, 1.0, 1.0, 0.0]), 2),
    mistakes={
        "values": _GRPO,
        "raised": _GRPO,
        "changed_input": _IN_PLACE,
        "not_a_tensor": _NOT_A_TENSOR,
        "shape": _SHAPE,
        "zero_std": "a group whose rewards are all equal has std 0, and 0/0 is NaN: divide by (std + eps), so "
                    "those rollouts get advantage 0 (they teach nothing)",
        "not_finite": "NaN or inf, and no group here has equal rewards: the std of a single value is NaN (N - 1 = "
                      "0). A group is the group_size consecutive rewards of one prompt, a row of rewards.view(-1, "
                      "group_size): take the mean and std over dim=1",
        "int_rewards": "rewards may come as integers (a checker's 0 or 1): convert them first, rewards = "
                       "rewards.float() (mean() and std() need floats)",
        "size_one_allowed": "group_size=1 is allowed when normalize_by_std=False: each rollout is its own group, "
                            "every advantage 0",
        "no_refusal": "raise ValueError with a message when group_size < 1, when the rewards do not split into "
                      "whole groups (len(rewards) % group_size != 0), and when group_size == 1 with "
                      "normalize_by_std (the sample std of a single reward is 0/0)",
        "whole_batch": _WHOLE_BATCH,
        "strided": "that groups every group_size-th reward (rewards[0::group_size], ...), strided: "
                   + _CONSECUTIVE + ", not dim=0",
        "strided_columns": "that groups the rewards strided, every (len(rewards) / group_size)-th one "
                           "(rewards.view(group_size, -1) along dim 0): " + _CONSECUTIVE,
        "group_count": "those groups have len(rewards) / group_size rewards each: rewards.view(group_size, -1) "
                       "makes group_size rows. " + _CONSECUTIVE,
        "sign": "the sign is flipped: reward minus its group's mean, positive for a rollout that did better than "
                "its group",
        "population": _POPULATION,
        "sqrt_eps": _SQRT_EPS,
        "no_eps": "eps is missing (or not the one passed in): divide by (std + eps)",
        "batch_std": "the mean is each group's but the std is the whole batch's: divide by each group's own std",
        "no_mean": "the group's mean was not subtracted: an advantage says how much better than its group a "
                   "rollout did, (reward - group mean) / (std + eps)",
        "no_division": "the division by the group's std + eps is missing: normalize_by_std=True, the default, "
                       "divides",
        "flag_ignored": "with normalize_by_std=False only subtract the group's mean, do not divide by its std: "
                        "the flag was ignored",
        "population_and_sqrt_eps": f"{_POPULATION}; and {_SQRT_EPS}",
        "whole_batch_and_population": f"{_WHOLE_BATCH}; and {_POPULATION}",
    },
    wrong=GRPO_MISTAKES,
    visible=(
        grpo_case("rewards [1, 0, 0, 1]: two groups of one success and one failure, mean 0.5 and sample std "
                  "sqrt(0.5) ≈ 0.7071, so the advantages are ±0.5 / 0.7071 ≈ [0.7071, -0.7071, -0.7071, 0.7071]",
                  torch.tensor([1.0, 0.0, 0.0, 1.0]), 2),
        grpo_case("12 rewards [1, 0, 0, 0 | 0, 0, 0, 0 | 1, 1, 0, 1] in 3 groups: means 0.25, 0, 0.75 and sample "
                  "stds 0.5, 0, 0.5, so the advantages are [1.5, -0.5, -0.5, -0.5 | 0, 0, 0, 0 | 0.5, 0.5, -1.5, "
                  "0.5] (the all-0 group teaches nothing)", torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1]), 4),
        grpo_case("rewards [1, 0, 0, 1] with a large eps, where it shows: 0.5 / (0.7071 + 0.1) ≈ 0.6195",
                  torch.tensor([1.0, 0.0, 0.0, 1.0]), 2, eps=0.1),
        grpo_case("6 partial-credit rewards [0.2, 0.5, 0.8 | 1.0, 1.0, 0.4]: the advantages are the rewards minus "
                  "their group's mean, [-0.3, 0, 0.3 | 0.2, 0.2, -0.4]", torch.tensor([0.2, 0.5, 0.8, 1.0, 1.0, 0.4]),
                  3, normalize_by_std=False),
        grpo_case("20 partial-credit rewards in 4 groups of 5 (group 1 all equal)", random_rewards(0, 4, 5), 5),
        refuses_groups_that_do_not_fit,
    ),
    hidden=(
        grpo_case("one group of 8 binary rewards", random_rewards(10, 1, 8, kind="binary"), 8),
        grpo_case("16 rewards given as 0/1 integers (torch.long) in 4 groups of 4",
                  random_rewards(11, 4, 4, kind="binary").long(), 4, key="int_rewards", raised="int_rewards"),
        grpo_case("18 float64 rewards in 6 groups of 3", random_rewards(12, 6, 3).double(), 3),
        grpo_case("group_size=1 without the std: each reward minus itself, all 0", torch.tensor([0.3, 1.0, 0.0]), 1,
                  normalize_by_std=False, raised="size_one_allowed"),
        grpo_case("20 partial-credit rewards in 5 groups of 4", random_rewards(13, 5, 4), 4, normalize_by_std=False),
        *(random_grpo_case(seed) for seed in range(14, 18)),
        grpo_case("4 groups of 3 scores around 10", random_rewards(18, 4, 3, kind="scores"), 3, eps=1.0),
        refuses_more_groups_that_do_not_fit,
    ),
    hints=(
        Hint("Start with the checks and the layout. Turn integer rewards into floats (`rewards.float()`), raise "
             "`ValueError` for the three bad cases (refuse `group_size` 1 only when `normalize_by_std` is on), "
             "then put each group in a row: `groups = rewards.reshape(-1, group_size)`, the `group_size` "
             "consecutive rewards of one problem side by side.",
             fits=("int_rewards", "no_refusal", "size_one_allowed", "whole_batch", "strided", "strided_columns",
                   "group_count", "whole_batch_and_population", "not_a_tensor", "raised")),
        Hint("Work along each row, `dim=1, keepdim=True`, so that every group gets its own mean and spread, "
             "lined up with its row. First subtract each group's first reward, `shifted = groups - groups[:, :1]` "
             "(it changes neither the differences nor the spread, and makes a group of equal rewards exactly 0), "
             "then subtract the row's mean: positive for a rollout that did better than its group.",
             fits=("sign", "no_mean", "batch_std", "not_finite")),
        Hint("With `normalize_by_std`, divide by the group's sample standard deviation plus `eps`, "
             "`shifted.std(dim=1, keepdim=True) + eps` (torch's default already divides by N − 1; the eps goes "
             "on the std, not under a square root); without it, stop after the mean. Reshape the result back to "
             "the shape of `rewards`, with operations that make new tensors (no `-=` or `/=` on the input).",
             fits=("population", "sqrt_eps", "no_eps", "zero_std", "no_division", "flag_ignored",
                   "population_and_sqrt_eps", "shape", "changed_input", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# ppo_clip_loss
# --------------------------------------------------------------------------------------------
def _checked_clip(clip) -> float:
    if not is_number(clip) or not math.isfinite(clip) or clip <= 0:
        raise ValueError(f"clip must be a number > 0 (0.2 is usual), got {clip!r}")
    return clip


def ppo_clip_loss(advantages, logp_new, logp_old, clip: float) -> torch.Tensor:
    """PPO's clipped loss for each token, NOT reduced (same shape as logp_new).

    r = exp(logp_new - logp_old) is how much more likely the token is now than when it was
    sampled. The loss is -min(r * A, clamp(r, 1 - clip, 1 + clip) * A): a step that moves a token's
    ratio beyond 1 ± clip in the direction its advantage favours gets no further push (there the
    loss is flat in logp_new), while a step that went the wrong way is still corrected in full.
    Advantages of shape (batch, 1), one per sequence, broadcast over the tokens. The gradient
    reaches logp_new; logp_old is a constant, from the policy that sampled.
    """
    clip = _checked_clip(clip)
    ratio = torch.exp(logp_new - logp_old)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip) * advantages
    return -torch.minimum(unclipped, clipped)


def ppo_mistake(ratio=lambda new, old: torch.exp(new - old), clamp=lambda r, clip: torch.clamp(r, 1 - clip, 1 + clip),
                pick=torch.minimum) -> Callable:
    """ppo_clip_loss with the ratio, its clamp or the pick of the two surrogates done wrongly."""
    def wrong(advantages, logp_new, logp_old, clip):
        r = ratio(logp_new, logp_old)
        return -pick(r * advantages, clamp(r, clip) * advantages)
    return wrong


def per_sequence(values: torch.Tensor) -> torch.Tensor:
    """The mean over the tokens of each sequence: for one sequence, the same as the mean over every token."""
    if values.dim() < 2:
        raise ValueError("one sequence: its mean is the mean over every token")
    return values.mean(-1)


def _ratio(logp_new, logp_old):
    return torch.exp(logp_new - logp_old)


PPO_MISTAKES = {
    "max": ppo_mistake(pick=torch.maximum),
    "no_minus": lambda *args: -ppo_clip_loss(*args),
    "clamp_advantage": lambda a, new, old, clip: -torch.minimum(_ratio(new, old) * a,
                                                                _ratio(new, old) * torch.clamp(a, 1 - clip, 1 + clip)),
    "divided_logps": ppo_mistake(ratio=lambda new, old: new / old),
    "upside_down": ppo_mistake(ratio=lambda new, old: torch.exp(old - new)),
    "no_exp": ppo_mistake(ratio=lambda new, old: new - old),
    "no_min": lambda a, new, old, clip: -torch.clamp(_ratio(new, old), 1 - clip, 1 + clip) * a,
    "no_clip": lambda a, new, old, clip: -_ratio(new, old) * a,
    "upper_only": ppo_mistake(clamp=lambda r, clip: torch.clamp(r, max=1 + clip)),
    "lower_only": ppo_mistake(clamp=lambda r, clip: torch.clamp(r, min=1 - clip)),
    "clamp_around_zero": ppo_mistake(clamp=lambda r, clip: torch.clamp(r, -clip, clip)),
    "mean": lambda *args: ppo_clip_loss(*args).mean(),
    "sum": lambda *args: ppo_clip_loss(*args).sum(),
    "per_sequence": lambda *args: per_sequence(ppo_clip_loss(*args)),
    "fixed_clip": lambda a, new, old, clip: ppo_clip_loss(a, new, old, 0.2),
}


def random_logps(seed: int, *shape: int, spread: float = 0.3, dtype=torch.float32, level: float = 0.0):
    """logp_old of sampled tokens (probabilities between 0.02 and 1, shifted by `level`) and logp_new a step away."""
    generator = seeded(seed)
    logp_old = torch.empty(*shape, dtype=torch.float64).uniform_(0.02, 1.0, generator=generator).log() + level
    logp_new = logp_old + torch.randn(*shape, generator=generator, dtype=torch.float64) * spread
    return logp_new.to(dtype), logp_old.to(dtype)


def random_advantages(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=seeded(seed), dtype=torch.float64).to(dtype)


def hand_ppo_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ratios [[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]] (tokens sampled at probability 0.4), advantages
    [[1, -1, 2], [1, -1, 1]]."""
    ratios = torch.tensor([[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]], dtype=torch.float64)
    logp_old = torch.full((2, 3), math.log(0.4), dtype=torch.float64)
    logp_new = (0.4 * ratios).log()
    advantages = torch.tensor([[1.0, -1.0, 2.0], [1.0, -1.0, 1.0]])
    return advantages, logp_new.float(), logp_old.float()


def underflows(logp: torch.Tensor) -> bool:
    """Log-probabilities so low that exp() of them is 0 in float32."""
    return float(logp.min()) < -80


def ppo_case(what: str, advantages, logp_new, logp_old, clip: float, *, gradient: bool = False) -> Compared:
    return Float64Case(f"{what}, clip={clip}", (advantages, logp_new, logp_old, clip),
                    not_finite="underflow" if underflows(logp_old) else "not_finite", grad=(1,) if gradient else ())


def random_ppo_case(seed: int) -> Compared:
    draw = random.Random(seed)
    shape = (draw.randint(1, 5), draw.randint(1, 12))
    clip, spread = draw.choice((0.05, 0.1, 0.28, 0.4)), draw.choice((0.1, 0.5, 1.5))
    return ppo_case(f"random log-probabilities of shape {shape} (seed {seed})",
                    random_advantages(seed + 100, shape[0], 1), *random_logps(seed, *shape, spread=spread), clip)


PPO_BATCH = (random_advantages(3, 4, 7), *random_logps(2, 4, 7, spread=0.5))


def refuses_a_clip_that_is_not_positive(t: Trial) -> None:
    for clip in (0, -0.2):
        t.refuses(f"ppo_clip_loss with clip={clip}", *PPO_BATCH, clip)


def refuses_a_negative_clip(t: Trial) -> None:
    logp_new, logp_old = random_logps(32, 3, 5)
    t.refuses("ppo_clip_loss with clip=-1.0", random_advantages(34, 2, 1), logp_new, logp_old, -1.0)


_UNDERFLOW = ("exp() of a log-probability near -110 underflows to 0 in float32, and 0 / 0 is NaN: take the "
              "difference of the log-probabilities first, then its exp: r = torch.exp(logp_new - logp_old)")
_PPO = ("r = torch.exp(logp_new - logp_old), then -torch.minimum(r * advantages, torch.clamp(r, 1 - clip, 1 + clip) "
        "* advantages), one value per token")
_PPO_SHAPE = ("one loss per token, the shape of logp_new: let broadcasting spread advantages of shape (batch, 1) "
              "over the tokens, and do not reduce (no .mean() or .sum(): the trainer masks and averages)")
_PPO_NO_GRADIENT = ("build the loss from logp_new with torch operations only: .item(), .detach(), .numpy(), "
                    "torch.tensor(...) or torch.no_grad() cut the graph back to the policy (logp_old and the "
                    "advantages are constants; logp_new carries the gradient)")

PPO_CLIP_LOSS = Exercise(
    name="ppo_clip_loss",
    answer=ppo_clip_loss,
    probe=lambda f: f(torch.ones(2), torch.zeros(2), torch.zeros(2), 0.2),
    mistakes={
        "values": _PPO,
        "raised": _PPO,
        "changed_input": _IN_PLACE,
        "not_a_tensor": _NOT_A_TENSOR,
        "shape": _PPO_SHAPE,
        "not_finite": "the loss is finite for finite log-probabilities: r = torch.exp(logp_new - logp_old)",
        "underflow": _UNDERFLOW,
        "no_gradient": _PPO_NO_GRADIENT,
        "gradient": _PPO_NO_GRADIENT,
        "no_refusal": "clip must be > 0 (0.2 is usual): raise ValueError with a message otherwise",
        "max": "max instead of min: PPO keeps the SMALLER (pessimistic) of r * A and clamp(r, 1 - clip, 1 + clip) "
               "* A, torch.minimum",
        "no_minus": "the minus sign is missing: PPO maximises min(r * A, clamp(r) * A), so the loss to minimise is "
                    "its negative",
        "clamp_advantage": "that clamps the advantage: clamp the RATIO, torch.clamp(ratio, 1 - clip, 1 + clip) * "
                           "advantages",
        "divided_logps": "that divides the log-probabilities: the ratio is of probabilities, r = exp(logp_new - "
                         "logp_old)",
        "upside_down": "the ratio is upside down: r = exp(logp_new - logp_old), new over old (check the order of "
                       "the arguments too: advantages, logp_new, logp_old, clip)",
        "no_exp": "the exp is missing: r = exp(logp_new - logp_old), the probability ratio",
        "no_min": "the min is missing: -min(r * A, clamp(r) * A), so a step that went the wrong way is still "
                  "corrected in full",
        "no_clip": "the clipping is missing: -min(r * A, torch.clamp(r, 1 - clip, 1 + clip) * A)",
        "upper_only": "the ratio is clipped above only: clamp it on both sides, torch.clamp(r, 1 - clip, 1 + clip)",
        "lower_only": "the ratio is clipped below only: clamp it on both sides, torch.clamp(r, 1 - clip, 1 + clip)",
        "clamp_around_zero": "clamp the ratio around 1 (no change), to [1 - clip, 1 + clip], not to [-clip, clip]",
        "mean": "that is the mean over every token: " + _PPO_SHAPE,
        "sum": "that is the sum over every token: " + _PPO_SHAPE,
        "per_sequence": "that is one loss per sequence: " + _PPO_SHAPE,
        "fixed_clip": "use the `clip` passed in, not a fixed 0.2",
    },
    wrong=PPO_MISTAKES,
    visible=(
        ppo_case("ratios r = exp(logp_new - logp_old) = [[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]] with advantages "
                 "[[1, -1, 2], [1, -1, 1]]: the losses are [[-1.2, 0.8, -2.2], [-0.7, 1.5, -0.5]] (r = 1.5 with "
                 "A = 1 is clipped to 1.2, r = 0.5 with A = -1 to 0.8; the others are not)", *hand_ppo_case(), 0.2),
        ppo_case("3 sequences of 6 tokens with one advantage per sequence, shape (3, 1) against (3, 6)",
                 random_advantages(1, 3, 1), *random_logps(0, 3, 6), 0.1),
        ppo_case("a batch of shape (4, 7) with an advantage per token", *PPO_BATCH, 0.2),
        ppo_case("the batch of shape (4, 7) with logp_new.requires_grad = True", *PPO_BATCH, 0.2, gradient=True),
        refuses_a_clip_that_is_not_positive,
    ),
    hidden=(
        ppo_case("one sequence of 9 tokens, shape (9,), an advantage per token", random_advantages(21, 9),
                 *random_logps(20, 9), 0.3),
        ppo_case("float64, shape (2, 5), advantages (2, 1)", random_advantages(23, 2, 1, dtype=torch.float64),
                 *random_logps(22, 2, 5, dtype=torch.float64), 0.2),
        ppo_case("2 prompts × 4 rollouts × 6 tokens, shape (2, 4, 6), advantages (2, 4, 1)",
                 random_advantages(25, 2, 4, 1), *random_logps(24, 2, 4, 6), 0.2),
        *(random_ppo_case(seed) for seed in range(26, 30)),
        ppo_case("very unlikely tokens, log-probabilities near -110 (float32), shape (2, 6)",
                 random_advantages(31, 2, 6), *random_logps(30, 2, 6, level=-108.0), 0.2),
        ppo_case("float64, shape (3, 5), advantages (3, 1), with logp_new.requires_grad = True",
                 random_advantages(33, 3, 1, dtype=torch.float64), *random_logps(32, 3, 5, dtype=torch.float64), 0.15,
                 gradient=True),
        refuses_a_negative_clip,
    ),
    hints=(
        Hint("Everything works on whole tensors at once, one value per token: `advantages` of shape "
             "`(batch, 1)` spread over the tokens by themselves (broadcasting). First `raise ValueError` unless "
             "`clip` is a positive number, then get the ratio of new to old probability from the "
             "log-probabilities: subtract first, then `exp`, `torch.exp(logp_new - logp_old)` (the probabilities "
             "themselves can underflow to 0).",
             fits=("no_refusal", "divided_logps", "upside_down", "no_exp", "underflow", "not_finite", "not_a_tensor",
                   "raised")),
        Hint("There are two candidates per token: the plain one, `ratio * advantages`, and a clipped one, where "
             "the RATIO (not the advantage) is held within 1 ± `clip` on both sides, "
             "`torch.clamp(ratio, 1 - clip, 1 + clip)`, then multiplied by `advantages`. Use the `clip` you "
             "were given.",
             fits=("clamp_advantage", "no_clip", "upper_only", "lower_only", "clamp_around_zero", "fixed_clip")),
        Hint("Keep the smaller of the two, token by token, with `torch.minimum(...)` (not `maximum`, and not one "
             "candidate alone), and return its negative: PPO maximises that objective, training minimises the "
             "loss. No `.mean()` or `.sum()`, no `.item()` or `.detach()`, and no in-place `*=`: the result keeps "
             "the shape of `logp_new` and its gradient.",
             fits=("max", "no_min", "no_minus", "mean", "sum", "per_sequence", "shape", "no_gradient", "gradient",
                   "changed_input", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# kl_penalty
# --------------------------------------------------------------------------------------------
def kl_penalty(logp, ref_logp) -> torch.Tensor:
    """k3 (Schulman 2020, "Approximating KL Divergence"), per token, NOT reduced.

    With d = ref_logp - logp at tokens sampled from the policy, exp(d) - d - 1 is an unbiased
    estimate of KL(policy || reference) that is never negative (e^d >= 1 + d) and is exactly 0
    where the two models agree; its average over many tokens is the KL. Gradient flows to logp.
    torch.expm1(d) is exp(d) - 1 without losing digits when d is near 0.
    """
    d = ref_logp - logp
    return torch.expm1(d) - d


KL_MISTAKES = {
    "k1": lambda logp, ref: logp - ref,
    "minus_k1": lambda logp, ref: ref - logp,
    "reverse": lambda logp, ref: torch.expm1(logp - ref) - (logp - ref),
    "k2": lambda logp, ref: (logp - ref) ** 2 / 2,
    "no_minus_one": lambda logp, ref: torch.exp(ref - logp) - (ref - logp),
    "no_minus_d": lambda logp, ref: torch.expm1(ref - logp),
    "plus_d": lambda logp, ref: torch.exp(ref - logp) + (ref - logp) - 1,
    "mean": lambda *args: kl_penalty(*args).mean(),
    "sum": lambda *args: kl_penalty(*args).sum(),
    "per_sequence": lambda *args: per_sequence(kl_penalty(*args)),
}


def kl_case(what: str, logp, ref_logp, *, gradient: bool = False) -> Compared:
    return Float64Case(what, (logp, ref_logp), not_finite="underflow" if underflows(logp) else "not_finite",
                    grad=(0,) if gradient else ())


IDENTICAL_MODELS = random_logps(40, 2, 6)[0]


def exactly_zero_where_the_models_agree(t: Trial) -> None:
    what = "identical models, shape (2, 6)"
    got = t.tensor(t.call(IDENTICAL_MODELS, IDENTICAL_MODELS.clone(), what=what), IDENTICAL_MODELS.shape, what)
    if not bool((got == 0).all()):
        t.fail("not_exactly_zero", f"{what}: k3 should be exactly 0 where logp == ref_logp", "all exactly 0",
               f"values up to {got.abs().max().item():.3g}")


_K3 = "k3 per token: d = ref_logp - logp, then torch.exp(d) - d - 1 (or torch.expm1(d) - d), no reduction"
_KL_SHAPE = "one value per token, the shape of logp: no .mean() or .sum() (the trainer masks and averages)"
_KL_NO_GRADIENT = ("build it from logp with torch operations only: .item(), .detach(), .numpy(), torch.tensor(...) "
                   "or torch.no_grad() cut the graph back to the policy (ref_logp is a constant, logp carries the "
                   "gradient)")

KL_PENALTY = Exercise(
    name="kl_penalty",
    answer=kl_penalty,
    probe=lambda f: f(torch.zeros(2), torch.zeros(2)),
    mistakes={
        "values": _K3,
        "raised": _K3,
        "changed_input": _IN_PLACE,
        "not_a_tensor": _NOT_A_TENSOR,
        "shape": _KL_SHAPE,
        "not_finite": f"k3 is finite for finite log-probabilities: {_K3}",
        "underflow": _UNDERFLOW.replace("r = torch.exp(logp_new - logp_old)", "d = ref_logp - logp, then torch.exp(d)"),
        "no_gradient": _KL_NO_GRADIENT,
        "gradient": _KL_NO_GRADIENT,
        "not_exactly_zero": "compute d = ref_logp - logp first, then exp(d) - d - 1 (no eps, no clamping)",
        "k1": "that is the naive estimator k1 = logp - ref_logp: unbiased but noisy and negative on many tokens; "
              "k3 = exp(d) - d - 1 with d = ref_logp - logp is never negative",
        "minus_k1": "that is d = ref_logp - logp itself (minus the naive estimator): k3 = exp(d) - d - 1",
        "reverse": "that is k3 of the reverse direction, exp(logp - ref_logp) - (logp - ref_logp) - 1: it "
                   "estimates KL(reference || policy) and needs tokens sampled from the reference. These tokens "
                   "come from the policy: d = ref_logp - logp",
        "k2": "that is k2 = (logp - ref_logp)**2 / 2, low-variance but biased: k3 = exp(d) - d - 1 is unbiased and "
              "as cheap",
        "no_minus_one": "the - 1 is missing: k3 = exp(d) - d - 1, exactly 0 where the two models agree",
        "no_minus_d": "the - d is missing: k3 = exp(d) - d - 1",
        "plus_d": "the middle term has the wrong sign: k3 = exp(d) - d - 1",
        "mean": "that is the mean over every token: " + _KL_SHAPE,
        "sum": "that is the sum over every token: " + _KL_SHAPE,
        "per_sequence": "that is one value per sequence: " + _KL_SHAPE,
    },
    wrong=KL_MISTAKES,
    visible=(
        kl_case("the policy gives 3 tokens probabilities [0.5, 0.25, 0.3], the reference [0.25, 0.5, 0.3]: d = "
                "ref_logp - logp = [-log 2, log 2, 0], so k3 = [1/2 + log 2 - 1, 2 - log 2 - 1, 0] ≈ [0.1931, "
                "0.3069, 0]", torch.tensor([0.5, 0.25, 0.3]).log(), torch.tensor([0.25, 0.5, 0.3]).log()),
        kl_case("identical models, shape (2, 6): k3 is 0 at every token", IDENTICAL_MODELS, IDENTICAL_MODELS.clone()),
        exactly_zero_where_the_models_agree,
        kl_case("a batch of shape (3, 8), the reference a step away from the policy", *random_logps(41, 3, 8)),
        kl_case("large differences between the models (up to about ±20 nats), shape (2, 5)",
                *random_logps(42, 2, 5, spread=8.0)),
        kl_case("one sequence of 7 tokens in float64, shape (7,)",
                *random_logps(43, 7, dtype=torch.float64, spread=1.0)),
        kl_case("very unlikely tokens, log-probabilities near -110 (float32), shape (2, 6)",
                *random_logps(44, 2, 6, level=-108.0)),
        kl_case("a batch of shape (3, 8) with logp.requires_grad = True", *random_logps(45, 3, 8, spread=0.5),
                gradient=True),
    ),
    hints=(
        Hint("One formula applied to every token at once, with torch operations on the whole tensors: the "
             "result has the shape of `logp`, with no `.mean()` or `.sum()` (the trainer averages later), and no "
             "`.item()` or `.detach()`, so the gradient reaches `logp`. Build it from the difference of the "
             "log-probabilities, never from the probabilities themselves.",
             fits=("not_a_tensor", "shape", "mean", "sum", "per_sequence", "underflow", "no_gradient", "gradient",
                   "changed_input")),
        Hint("Take the difference in the order the notebook gives: `d = ref_logp - logp`, the reference minus "
             "the policy (the tokens were sampled from the policy, and this direction estimates the KL from the "
             "policy to the reference). Not `logp - ref_logp`, not `d` alone, and not a square.",
             fits=("reverse", "k1", "minus_k1", "k2")),
        Hint("k3 is `e^d - d - 1`: all three terms, with a minus before `d`. `torch.expm1(d)` is `e^d - 1` in one "
             "precise step (the `- 1` is already inside it); where the models agree, `d` is exactly 0, and so is "
             "k3 if you add no `eps` and no clamp.",
             fits=("no_minus_one", "no_minus_d", "plus_d", "not_exactly_zero", "not_finite", "values", "raised")),
    ),
)


# --------------------------------------------------------------------------------------------
# Evaluate the claim: three answers, checked against what the notebook measured
# --------------------------------------------------------------------------------------------
HACK_EFFECTS = ("longer and less accurate", "longer and more accurate", "shorter and less accurate",
                "shorter and more accurate")


def hack_effect_measured(hack_length: tuple[float, float], hack_accuracy: tuple[float, float]) -> str:
    """What the gameable reward did to the answers, from their length and accuracy before and after."""
    return (f"{'longer' if hack_length[1] > hack_length[0] else 'shorter'} and "
            f"{'more' if hack_accuracy[1] > hack_accuracy[0] else 'less'} accurate")


def _accuracy_range(measured) -> tuple[float, float, float]:
    """(mean, lowest, highest) over seeds; one number (as notebooks handed out earlier pass) is all three."""
    return tuple(measured) if isinstance(measured, (tuple, list)) else (measured, measured, measured)


def best_leashes(sweep_accuracy: dict) -> list[float]:
    """The KL weights whose gameable-reward runs were not clearly less accurate than the best: the
    weight with the best mean, and every weight whose seeds' range overlaps its range.

    sweep_accuracy: KL weight -> held-out accuracy as (mean, lowest, highest) over the seeds (or a
    mean alone). Only a difference larger than the spread of the seeds is read as one."""
    ranges = {kl: _accuracy_range(measured) for kl, measured in sweep_accuracy.items()}
    best = max(ranges, key=lambda kl: ranges[kl][0])
    return [kl for kl, (_, low, high) in ranges.items() if high >= ranges[best][1] and low <= ranges[best][2]]


def rl_claims(*, grpo_gain: float, control_gain: float, hack_length: tuple[float, float],
              hack_accuracy: tuple[float, float], sweep_accuracy: dict[float, float]) -> tuple[bool, str, float]:
    """The three answers that agree with these measurements: did GRPO beat the shuffled-reward
    control, what the gameable reward did, and the KL weight that kept those runs most accurate
    (one of those within the seeds' spread of the best)."""
    return grpo_gain > control_gain, hack_effect_measured(hack_length, hack_accuracy), best_leashes(sweep_accuracy)[0]


def grpo_beat_the_control(t: Trial) -> None:
    answer, gain, control = t.submitted[0], t.context["grpo_gain"], t.context["control_gain"]
    if not isinstance(answer, bool):
        t.fail("not_true_or_false", "1. Set grpo_beat_control", "True or False", repr(answer))
    if answer != (gain > control):
        t.fail("control", "1. Did your GRPO run beat the shuffled-reward control?", gain > control, answer,
               hint=f"you measured a gain of {gain:+.2f} with the real rewards and {control:+.2f} with shuffled ones")


def what_the_gameable_reward_did(t: Trial) -> None:
    answer, length, accuracy = t.submitted[1], t.context["hack_length"], t.context["hack_accuracy"]
    if answer not in HACK_EFFECTS:
        t.fail("not_an_effect", "2. Set hack_effect", f"one of {HACK_EFFECTS}", repr(answer))
    measured = hack_effect_measured(length, accuracy)
    if answer != measured:
        t.fail("hack_effect", "2. What did the gameable reward do?", repr(measured), repr(answer),
               hint=f"answer length went {length[0]:.2f} -> {length[1]:.2f}, held-out accuracy "
                    f"{accuracy[0]:.2f} -> {accuracy[1]:.2f}")


def the_best_leash(t: Trial) -> None:
    answer, sweep = t.submitted[2], t.context.get("sweep_accuracy")
    if sweep is None:
        t.fail("no_sweep", "3. The stored KL sweep is missing, so best_leash cannot be checked", "the stored sweep",
               "none on this install")
    winners = best_leashes(sweep)
    if answer not in winners:
        t.fail("leash", "3. Which KL weight kept the gameable-reward runs most accurate?",
               " or ".join(map(repr, winners)), repr(answer),
               hint="the stored sweep's held-out accuracy per KL weight, mean (lowest to highest seed): "
                    + ", ".join("{:g}: {:.2f} ({:.2f} to {:.2f})".format(kl, *_accuracy_range(measured))
                                for kl, measured in sweep.items())
                    + "; weights whose ranges overlap the best one's are equally right")


RL_CLAIMS = Exercise(
    name="rl_claims",
    answer=rl_claims,
    probe=None,
    mistakes={
        "not_true_or_false": "grpo_beat_control is True or False",
        "control": "compare grpo_gain with control_gain",
        "not_an_effect": "copy one of the four answers exactly",
        "hack_effect": "compare hack_length and hack_accuracy, before -> after",
        "no_sweep": "reinstall the course, or make the sweep with `python -m course_lib.experiments rl kl` "
                    "(minutes), then run the dial's cell again",
        "leash": "the KL weight with the highest mean held-out accuracy in the dial, or one whose seeds' "
                 "range overlaps its range (no clear difference)",
    },
    visible=(grpo_beat_the_control, what_the_gameable_reward_did, the_best_leash),
    passed=lambda t: "✅ All three answers agree with what you measured.",
    hints=(
        Hint("Question 1: the full run (\"The full run: your GRPO\") stores `grpo_gain`, and the shuffled-reward "
             "control right after it stores `control_gain`; the control's cell prints both as \"real rewards: "
             "..., shuffled: ...\". Compare the two gains and set `grpo_beat_control` to the Python value `True` "
             "or `False` (not a string).",
             fits=("not_true_or_false", "control")),
        Hint("Question 2: E3's cell, with the honest and the gameable run, prints the gameable run's answer "
             "length and held-out accuracy as before -> after; `hack_length` and `hack_accuracy` hold those "
             "pairs as `(before, after)`. Read whether each went up or down, then copy the matching phrase "
             "exactly, character for character.",
             fits=("hack_effect", "not_an_effect")),
        Hint("Question 3: in E9, for each KL weight in `dial.kl_weights`, "
             "`dial.ranges(\"gameable\", kl)[\"accuracy\"]` gives the mean, lowest and highest held-out "
             "accuracy over the seeds of the gameable-reward runs; `best_leash` is one of those weights, a "
             "number. Take the one with the highest mean (a weight whose range overlaps its range counts too); if "
             "`dial` is `None`, the sweep is missing: set `RERUN = True` in the dial's cell and run it again.",
             fits=("leash", "no_sweep")),
    ),
)

EXERCISES = (EPSILON_GREEDY, GRPO_ADVANTAGES, PPO_CLIP_LOSS, KL_PENALTY, RL_CLAIMS)
