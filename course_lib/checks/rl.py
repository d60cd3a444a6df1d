"""Checks for notebook E's exercises: epsilon-greedy, GRPO's group advantages, PPO's clipped loss
and the k3 KL penalty.

When an answer is wrong, the checks compute what the usual mistakes would have given (the greedy
action left out of exploring, a population standard deviation, groups taken strided, max instead
of min, the ratio upside down, k3 of the reverse direction, ...) and name the one that matches,
so the hint points at the line to fix. epsilon-greedy is checked by the shares of many draws, not
by exact draws, so any order of drawing from the generator passes. Every other case runs on
copies of its inputs and fails if the function changed them.
"""
from __future__ import annotations

import math
import random
import warnings

import torch

from course_lib.checks.common import check_same_draws, fail, refuses
from course_lib.checks.lifecycle import _matching_hint, _rounded
from course_lib.checks.post_training import _close
from course_lib.checks.post_training import _compare as compare
from course_lib.checks.pretraining import _run
from course_lib.reference.rl import grpo_advantages, kl_penalty, ppo_clip_loss

_IN_PLACE = ("use operations that return new tensors (rewards - mean, torch.clamp, torch.minimum), not in-place "
             "ones (-=, /=, clamp_, x[...] = ...): the caller still needs its tensors")
_NOT_A_TENSOR = ("return a torch tensor with one value per element of the input (no .item(), .tolist() or Python "
                 "floats)")


def _compare(fn, what: str, args: tuple, names: tuple[str, ...], reference, mistakes, **options) -> None:
    """post_training's comparison (inputs unchanged, a tensor, its shape, finiteness, values naming the
    matching mistake, the gradient) with this notebook's hints for a non-tensor and an in-place edit."""
    compare(fn, what, args, names, reference, mistakes, not_a_tensor=_NOT_A_TENSOR, in_place=_IN_PLACE, **options)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- epsilon-greedy ------------------------------------------------------------------------

# 20,000 draws put each action's share within 0.02 of its probability (at least 6.5 standard
# deviations in every case below: a false failure about once in a billion runs of the check), while
# every mistake the hints name moves some share by 0.03 or more, or picks an action that must never
# come. The shares, not the exact draws, are checked: any order of drawing passes.
DRAWS = 20_000
SHARE_TOLERANCE = 0.02

_Q = torch.tensor([0.2, 0.9, -0.4, 0.5])  # the greedy action is 1: neither the first nor the last
_DRAW = ("use the generator passed in for every draw: explore when torch.rand(1, generator=generator) < epsilon, "
         "then pick torch.randint(len(q_values), (1,), generator=generator); else int(torch.argmax(q_values))")


def _act(fn, q: torch.Tensor, epsilon: float, generator: torch.Generator) -> int:
    what = f"epsilon_greedy(q_values={_rounded(q)}, epsilon={epsilon}, generator)"
    action = _run(fn, what, q.clone(), epsilon, generator, hint=_DRAW)
    if not isinstance(action, int) or isinstance(action, bool):
        fail(f"{what} should return a Python int, the action's index", "an int such as 1",
             f"{type(action).__name__}: {action!r}"[:120],
             "torch.argmax and torch.randint return tensors: convert the action with int(...)")
    if not 0 <= action < len(q):
        fail(f"{what} returned an action that does not exist", f"an index in 0 .. {len(q) - 1}", action)
    return action


def _epsilon_mistakes(q: torch.Tensor, epsilon: float) -> dict[str, torch.Tensor]:
    """The distributions over actions the usual mistakes draw from, keyed by the hint that names each."""
    k = len(q)
    best, worst = int(torch.argmax(q)), int(torch.argmin(q))
    eye = torch.eye(k, dtype=torch.float64)
    uniform = torch.full((k,), 1 / k, dtype=torch.float64)
    others = (1 - eye[best]) / (k - 1)
    all_but_last = torch.cat([torch.full((k - 1,), 1 / (k - 1), dtype=torch.float64),
                              torch.zeros(1, dtype=torch.float64)])

    def mix(greedy, explore, e=epsilon):
        return (1 - e) * greedy + e * explore

    return {
        "when exploring, draw from ALL the actions, the greedy one included (torch.randint(len(q_values), (1,), "
        "generator=generator)): leaving it out makes the greedy action rarer than 1 - epsilon + epsilon / n":
            mix(eye[best], others),
        "epsilon is the probability of EXPLORING: explore when torch.rand(1, generator=generator) < epsilon and "
        "exploit otherwise (the comparison is the wrong way round)": mix(eye[best], uniform, 1 - epsilon),
        "exploiting means the action with the HIGHEST estimated value, torch.argmax(q_values), not the lowest":
            mix(eye[worst], uniform),
        "it never explores: with probability epsilon (torch.rand(1, generator=generator) < epsilon) pick an action "
        "uniformly at random": eye[best],
        "it always explores: explore only with probability epsilon, and exploit, int(torch.argmax(q_values)), "
        "otherwise": uniform,
        "the last action is never drawn: torch.randint(high, ...) excludes high, so torch.randint(len(q_values), "
        "(1,), generator=generator) already covers every action (len(q_values) - 1 leaves the last one out)":
            mix(eye[best], all_but_last),
    }


def _check_epsilon_shares(fn, q: torch.Tensor, epsilon: float, seed: int) -> None:
    generator = _seeded(seed)
    counts = torch.zeros(len(q), dtype=torch.float64)
    for _ in range(DRAWS):
        counts[_act(fn, q, epsilon, generator)] += 1
    got = counts / DRAWS
    best = int(torch.argmax(q))
    expected = torch.full((len(q),), epsilon / len(q), dtype=torch.float64)
    expected[best] += 1 - epsilon

    def close(a, b):
        # Close shares, and never an action that b rules out.
        return bool(((a - b).abs() <= SHARE_TOLERANCE).all() and (a[b == 0] == 0).all())

    if close(got, expected):
        return
    fail(f"q_values={_rounded(q)}, epsilon={epsilon}: the share of {DRAWS:,} calls that picked each action "
         f"0..{len(q) - 1} (action {best} is the greedy one: 1 - epsilon + epsilon/{len(q)} = "
         f"{1 - epsilon + epsilon / len(q):.4g}, each other epsilon/{len(q)} = {epsilon / len(q):.4g})",
         _rounded(expected, 3), _rounded(got, 3),
         _matching_hint(got, expected, _epsilon_mistakes(q, epsilon), close) or
         "with probability epsilon pick any action uniformly at random (the greedy one included), "
         "else the argmax")


def _check_always(fn, q: torch.Tensor, action: int, what: str, hint: str, calls: int = 200) -> None:
    generator = _seeded(5)
    picked = [_act(fn, q, 0, generator) for _ in range(calls)]
    if any(p != action for p in picked):
        worst = int(torch.argmin(q))
        if len(set(picked)) == 1 and picked[0] == worst:
            hint = "that is the action with the LOWEST value: exploit the highest one, int(torch.argmax(q_values))"
        elif len(set(picked)) > 1:
            hint = ("epsilon=0 never explores: explore only when torch.rand(1, generator=generator) < epsilon "
                    "(strictly less: a draw is never below 0). Is the comparison the wrong way round? epsilon is "
                    "the probability of exploring")
        fail(f"{what}: with epsilon=0 every one of {calls} calls should exploit", f"always {action}",
             f"{sorted(set(picked))} (the first picks: {picked[:8]})", hint)


def _check_generator_is_used(fn) -> None:
    check_same_draws(lambda generator: [_act(fn, _Q, 0.5, generator) for _ in range(60)],
                     "two runs with generators seeded alike (epsilon=0.5) should pick the same actions",
                     "draw from the generator passed in, for both the explore-or-exploit coin and the action: "
                     "torch.rand(1, generator=generator), torch.randint(..., generator=generator) "
                     "(not random.random() or torch's global generator)")


def check_epsilon_greedy(fn) -> None:
    """The one check of this exercise: greedy at epsilon 0 (ties to the lowest index), the generator, the shares
    of 20,000 draws at epsilon 0.3, 1 and 0.1, and refusing a bad epsilon or no action."""
    argmax = "with epsilon=0, always the action with the highest value: int(torch.argmax(q_values))"
    _check_always(fn, _Q, 1, f"q_values={_rounded(_Q)}", argmax)
    _check_always(fn, torch.tensor([-2.0, -5.0, -1.0]), 2, "q_values=[-2.0, -5.0, -1.0]", argmax)
    _check_always(fn, torch.tensor([7.0, 1.0]), 0, "q_values=[7.0, 1.0]", argmax)
    _check_always(fn, torch.tensor([1.0, 3.0, 3.0, 0.5]), 1, "q_values=[1.0, 3.0, 3.0, 0.5], a tie for the best",
                  "a tie goes to the LOWEST index, as torch.argmax does: int(torch.argmax(q_values)) (not a random "
                  "pick among the best, nor the last one)")
    _check_generator_is_used(fn)
    _check_epsilon_shares(fn, _Q, 0.3, seed=0)
    _check_epsilon_shares(fn, _Q, 1.0, seed=1)
    _check_epsilon_shares(fn, torch.tensor([-1.0, 0.0, 2.5]), 0.1, seed=2)
    bad_epsilon = "epsilon is a probability: raise ValueError with a message unless 0 <= epsilon <= 1"
    for epsilon in (-0.1, 1.5):
        refuses(fn, f"epsilon_greedy with epsilon={epsilon}", bad_epsilon, _Q.clone(), epsilon, _seeded(0))
    refuses(fn, "epsilon_greedy with an empty q_values (no action)",
            "there is no action to pick: raise ValueError with a message when len(q_values) == 0",
            torch.tensor([]), 0.1, _seeded(0))
    print("✅ epsilon_greedy passes the tests.")


# ---- GRPO's group advantages ---------------------------------------------------------------

_GRPO = ("each reward minus its group's mean, divided by the group's sample std + eps: groups = "
         "rewards.view(-1, group_size), (groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, "
         "keepdim=True) + eps), then .reshape(-1) back to the shape of rewards")
_GRPO_SHAPE = "one advantage per rollout, the same shape as rewards: reshape the result back, .reshape(-1)"
_GRPO_NAN = ("a group whose rewards are all equal has std 0, and 0/0 is NaN: divide by (std + eps), so those "
             "rollouts get advantage 0 (they teach nothing)")
_GRPO_NAN_SHAPE = ("NaN or inf, and no group here has equal rewards: the std of a single value is NaN (N - 1 = 0). A "
                   "group is the group_size consecutive rewards of one prompt, a row of rewards.view(-1, group_size): "
                   "take the mean and std over dim=1")
_GRPO_INT = ("rewards may come as integers (a checker's 0 or 1): convert them first, rewards = rewards.float() "
             "(mean() and std() need floats)")
_POPULATION = ("that divides by the population standard deviation (divided by N): use the SAMPLE standard "
               "deviation (N - 1), torch.std's default, groups.std(dim=1, keepdim=True), not unbiased=False, "
               "correction=0 or a hand-written mean of squares")
_SQRT_EPS = "eps goes outside the square root, added to the standard deviation: / (std + eps), not / sqrt(var + eps)"
_WHOLE_BATCH = ("that normalises over the whole batch: GRPO judges each rollout against its own group (the "
                "group_size rollouts of the same prompt), so take the mean and std of each group, over dim=1 of "
                "rewards.view(-1, group_size)")
_CONSECUTIVE = ("a group is group_size CONSECUTIVE rewards (rewards[0:group_size] is the first prompt's), the rows "
                "of rewards.view(-1, group_size): take the mean and std over dim=1")


def _grpo_mistakes(rewards, group_size, eps=1e-6, normalize_by_std=True) -> list[tuple[torch.Tensor, str]]:
    """What the usual mistakes give on these inputs, each with the hint that names it."""
    with warnings.catch_warnings():  # a std over a single value (a strided "group" of 1) warns, and is NaN: no match
        warnings.simplefilter("ignore")
        return _grpo_mistakes_quietly(rewards, group_size, eps, normalize_by_std)


def _grpo_mistakes_quietly(rewards, group_size, eps, normalize_by_std) -> list[tuple[torch.Tensor, str]]:
    r = rewards.double()
    n, size = len(r), group_size

    def judged(groups, dim, *, population=False, sqrt_eps=False, centre=True, scale=normalize_by_std,
               epsilon=eps):
        """Advantages with each group a slice of `groups` along `dim`, flattened back in the order of r."""
        centred = groups - groups.mean(dim, keepdim=True) if centre else groups
        if scale:
            correction = 0 if population else 1
            spread = (groups.var(dim, keepdim=True, correction=correction) + epsilon).sqrt() if sqrt_eps else \
                groups.std(dim, keepdim=True, correction=correction) + epsilon
            centred = centred / spread
        return centred.reshape(-1)

    rows = r.reshape(-1, size)
    correct = judged(rows, 1)
    combined = []  # two mistakes at once: named only where no single mistake explains the result
    mistakes = [
        (judged(r[None], 1), _WHOLE_BATCH),
        (judged(rows, 0), "that groups every group_size-th reward (rewards[0::group_size], ...), strided: "
                          + _CONSECUTIVE + ", not dim=0"),
        (judged(r.reshape(size, -1), 0),
         f"that groups the rewards strided, every (len(rewards) / group_size)-th one, here every {n // size} "
         "(rewards.view(group_size, -1) along dim 0): "
         + _CONSECUTIVE),
        (judged(r.reshape(size, -1), 1), f"those groups have len(rewards) / group_size = {n // size} rewards each: "
                                         "rewards.view(group_size, -1) makes group_size rows. " + _CONSECUTIVE),
        (-correct, "the sign is flipped: reward minus its group's mean, positive for a rollout that did better "
                   "than its group"),
        (correct.reshape(-1, size), _GRPO_SHAPE),
    ]
    if normalize_by_std:
        mistakes += [
            (judged(rows, 1, population=True), _POPULATION),
            (judged(rows, 1, sqrt_eps=True), _SQRT_EPS),
            (judged(rows, 1, epsilon=0.0), "eps is missing (or not the one passed in): divide by (std + eps)"),
            ((rows - rows.mean(1, keepdim=True)).reshape(-1) / (r.std() + eps),
             "the mean is each group's but the std is the whole batch's: divide by each group's own std"),
            (judged(rows, 1, centre=False), "the group's mean was not subtracted: an advantage says how much better "
                                            "than its group a rollout did, (reward - group mean) / (std + eps)"),
            (judged(rows, 1, scale=False), "the division by the group's std + eps is missing: normalize_by_std=True, "
                                           "the default, divides"),
        ]
        combined = [(judged(rows, 1, population=True, sqrt_eps=True), f"{_POPULATION}; and {_SQRT_EPS}"),
                    (judged(r[None], 1, population=True), f"{_WHOLE_BATCH}; and {_POPULATION}")]
    else:
        mistakes.append((judged(rows, 1, scale=True), "with normalize_by_std=False only subtract the group's mean, "
                                                      "do not divide by its std: the flag was ignored"))
    return mistakes + [(result, hint) for result, hint in combined
                       if not any(_close(result, single) for single, _ in mistakes)]


def _grpo(fn, what: str, rewards, group_size: int, *, hint: str = _GRPO, errors: str = "", **kwargs) -> None:
    settings = "".join(f", {name}={value}" for name, value in kwargs.items())
    groups = rewards.reshape(-1, group_size)
    all_equal = bool((groups == groups[:, :1]).all(dim=1).any())
    _compare(fn, f"{what}, group_size={group_size}{settings}", (rewards, group_size), ("rewards", "group_size"),
             grpo_advantages, _grpo_mistakes, kwargs=kwargs, hint=hint, shape_hint=_GRPO_SHAPE,
             nonfinite=_GRPO_NAN if all_equal else _GRPO_NAN_SHAPE, errors=errors)


def _random_rewards(seed: int, groups: int, size: int, *, kind: str = "partial") -> torch.Tensor:
    """Seeded rewards: 0/1 ("binary"), partial credit in [0, 1] ("partial") or scores ("scores"), the second group
    all equal (a prompt every rollout solved, or none did).

    The equal rewards are 0, 1 or 10, whose float32 mean is exact: the float32 mean of equal rewards such as 0.7
    is off in its last bit, and the plain (reward - mean) / (std + eps) then gives ±0.06 instead of 0."""
    generator = _seeded(seed)
    if kind == "binary":
        rewards = (torch.rand(groups, size, generator=generator) < 0.5).float()
    elif kind == "scores":
        rewards = torch.randn(groups, size, generator=generator) * 3 + 10
    else:
        rewards = torch.rand(groups, size, generator=generator).round(decimals=2)
    if groups > 1:
        rewards[1] = 10.0 if kind == "scores" else float(seed % 2)
    return rewards.reshape(-1)


def check_grpo_advantages(fn) -> None:
    """Hand-computed groups, an all-equal group, a large eps, normalize_by_std=False, a random batch, and
    refusing group sizes that do not fit."""
    _grpo(fn, "rewards [1, 0, 0, 1]: two groups of one success and one failure, mean 0.5 and sample std "
              "sqrt(0.5) ≈ 0.7071, so the advantages are ±0.5 / 0.7071 ≈ [0.7071, -0.7071, -0.7071, 0.7071]",
          torch.tensor([1.0, 0.0, 0.0, 1.0]), 2)
    _grpo(fn, "12 rewards [1, 0, 0, 0 | 0, 0, 0, 0 | 1, 1, 0, 1] in 3 groups: means 0.25, 0, 0.75 and sample stds "
              "0.5, 0, 0.5, so the advantages are [1.5, -0.5, -0.5, -0.5 | 0, 0, 0, 0 | 0.5, 0.5, -1.5, 0.5] (the "
              "all-0 group teaches nothing)", torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1]), 4)
    _grpo(fn, "rewards [1, 0, 0, 1] with a large eps, where it shows: 0.5 / (0.7071 + 0.1) ≈ 0.6195",
          torch.tensor([1.0, 0.0, 0.0, 1.0]), 2, eps=0.1)
    _grpo(fn, "6 partial-credit rewards [0.2, 0.5, 0.8 | 1.0, 1.0, 0.4]: the advantages are the rewards minus their "
              "group's mean, [-0.3, 0, 0.3 | 0.2, 0.2, -0.4]", torch.tensor([0.2, 0.5, 0.8, 1.0, 1.0, 0.4]), 3,
          normalize_by_std=False)
    _grpo(fn, "20 partial-credit rewards in 4 groups of 5 (group 1 all equal)", _random_rewards(0, 4, 5), 5)
    refuses(fn, "grpo_advantages with group_size=0", "raise ValueError with a message when group_size < 1",
            torch.zeros(4), 0)
    refuses(fn, "grpo_advantages with 5 rewards in groups of 2",
            "the rewards must split into whole groups: raise ValueError when len(rewards) % group_size != 0",
            torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]), 2)
    refuses(fn, "grpo_advantages with group_size=1 and normalize_by_std=True",
            "the sample std of a single reward is 0/0: raise ValueError when group_size == 1 and normalize_by_std",
            torch.tensor([1.0, 0.0, 1.0]), 1)
    print("✅ grpo_advantages passes the visible tests.")


def check_grpo_advantages_hidden(fn) -> None:
    """One group, 0/1 integer rewards, float64, group_size 1 without the std, random batches, more refusals."""
    _grpo(fn, "one group of 8 binary rewards", _random_rewards(10, 1, 8, kind="binary"), 8)
    _grpo(fn, "16 rewards given as 0/1 integers (torch.long) in 4 groups of 4",
          _random_rewards(11, 4, 4, kind="binary").long(), 4, hint=_GRPO_INT, errors=_GRPO_INT)
    _grpo(fn, "18 float64 rewards in 6 groups of 3", _random_rewards(12, 6, 3).double(), 3)
    _grpo(fn, "group_size=1 without the std: each reward minus itself, all 0", torch.tensor([0.3, 1.0, 0.0]), 1,
          normalize_by_std=False, errors="group_size=1 is allowed when normalize_by_std=False: each rollout is its "
                                         "own group, every advantage 0")
    _grpo(fn, "20 partial-credit rewards in 5 groups of 4", _random_rewards(13, 5, 4), 4, normalize_by_std=False)
    for seed in range(14, 18):
        draw = random.Random(seed)
        groups, size = draw.randint(2, 6), draw.randint(2, 9)
        kind, eps = draw.choice(("binary", "partial", "scores")), draw.choice((1e-6, 1e-4, 0.5))
        _grpo(fn, f"{groups} groups of {size} {kind} rewards (seed {seed})", _random_rewards(seed, groups, size,
                                                                                             kind=kind), size, eps=eps)
    _grpo(fn, "4 groups of 3 scores around 10", _random_rewards(18, 4, 3, kind="scores"), 3, eps=1.0)
    refuses(fn, "grpo_advantages with group_size=-2", "raise ValueError when group_size < 1", torch.zeros(4), -2)
    refuses(fn, "grpo_advantages with 7 rewards in groups of 3", "raise ValueError when len(rewards) % group_size",
            torch.arange(7.0), 3)
    refuses(fn, "grpo_advantages with group_size=1 (normalize_by_std=True, the default) on 6 rewards",
            "raise ValueError when group_size == 1 and normalize_by_std", torch.arange(6.0), 1)
    print("✅ grpo_advantages passes the hidden tests too.")


# ---- PPO's clipped loss --------------------------------------------------------------------

_PPO = ("r = torch.exp(logp_new - logp_old), then -torch.minimum(r * advantages, torch.clamp(r, 1 - clip, 1 + clip) "
        "* advantages), one value per token")
_PPO_SHAPE = ("one loss per token, the shape of logp_new: let broadcasting spread advantages of shape (batch, 1) "
              "over the tokens, and do not reduce (no .mean() or .sum(): the trainer masks and averages)")
_PPO_NO_GRADIENT = ("build the loss from logp_new with torch operations only: .item(), .detach(), .numpy(), "
                    "torch.tensor(...) or torch.no_grad() cut the graph back to the policy (logp_old and the "
                    "advantages are constants; logp_new carries the gradient)")
_PPO_NAN = "the loss is finite for finite log-probabilities: r = torch.exp(logp_new - logp_old)"
_UNDERFLOW = ("exp() of a log-probability near -110 underflows to 0 in float32, and 0 / 0 is NaN: take the "
              "difference of the log-probabilities first, then its exp: r = torch.exp(logp_new - logp_old)")
_PPO_REFUSE = "clip must be > 0 (0.2 is usual): raise ValueError with a message otherwise"


def _ppo_mistakes(advantages, logp_new, logp_old, clip) -> list[tuple[torch.Tensor, str]]:
    a = advantages
    r = torch.exp(logp_new - logp_old)
    low, high = 1 - clip, 1 + clip

    def loss(ratio, clipped=None):
        clipped = torch.clamp(ratio, low, high) if clipped is None else clipped
        return -torch.minimum(ratio * a, clipped * a)

    correct = loss(r)
    mistakes = [
        (-torch.maximum(r * a, torch.clamp(r, low, high) * a),
         "max instead of min: PPO keeps the SMALLER (pessimistic) of r * A and clamp(r, 1 - clip, 1 + clip) * A, "
         "torch.minimum"),
        (-correct, "the minus sign is missing: PPO maximises min(r * A, clamp(r) * A), so the loss to minimise is "
                   "its negative"),
        (-torch.minimum(r * a, r * torch.clamp(a, low, high)),
         "that clamps the advantage: clamp the RATIO, torch.clamp(ratio, 1 - clip, 1 + clip) * advantages"),
        (loss(logp_new / logp_old), "that divides the log-probabilities: the ratio is of probabilities, "
                                    "r = exp(logp_new - logp_old)"),
        (loss(torch.exp(logp_old - logp_new)), "the ratio is upside down: r = exp(logp_new - logp_old), new over "
                                               "old (check the order of the arguments too: advantages, logp_new, "
                                               "logp_old, clip)"),
        (loss(logp_new - logp_old), "the exp is missing: r = exp(logp_new - logp_old), the probability ratio"),
        (-torch.clamp(r, low, high) * a, "the min is missing: -min(r * A, clamp(r) * A), so a step that went the "
                                         "wrong way is still corrected in full"),
        (-r * a, "the clipping is missing: -min(r * A, torch.clamp(r, 1 - clip, 1 + clip) * A)"),
        (loss(r, torch.clamp(r, max=high)), "the ratio is clipped above only: clamp it on both sides, "
                                            "torch.clamp(r, 1 - clip, 1 + clip)"),
        (loss(r, torch.clamp(r, min=low)), "the ratio is clipped below only: clamp it on both sides, "
                                           "torch.clamp(r, 1 - clip, 1 + clip)"),
        (loss(r, torch.clamp(r, -clip, clip)), "clamp the ratio around 1 (no change), to [1 - clip, 1 + clip], "
                                               "not to [-clip, clip]"),
        (correct.mean(), "that is the mean over every token: " + _PPO_SHAPE),
        (correct.sum(), "that is the sum over every token: " + _PPO_SHAPE),
    ]
    if correct.dim() >= 2:
        mistakes.append((correct.mean(-1), "that is one loss per sequence: " + _PPO_SHAPE))
    if clip != 0.2:
        mistakes.append((loss(r, torch.clamp(r, 0.8, 1.2)), "use the `clip` passed in, not a fixed 0.2"))
    return mistakes


def _ppo(fn, what: str, advantages, logp_new, logp_old, clip: float, *, gradient: bool = False) -> None:
    nonfinite = _UNDERFLOW if float(logp_old.min()) < -80 else _PPO_NAN
    _compare(fn, f"{what}, clip={clip}", (advantages, logp_new, logp_old, clip),
             ("advantages", "logp_new", "logp_old", "clip"), ppo_clip_loss, _ppo_mistakes, hint=_PPO,
             shape_hint=_PPO_SHAPE, nonfinite=nonfinite, grad=(1,) if gradient else (), no_gradient=_PPO_NO_GRADIENT)


def _random_logps(seed: int, *shape: int, spread: float = 0.3, dtype=torch.float32, level: float = 0.0):
    """logp_old of sampled tokens (probabilities between 0.02 and 1, shifted by `level`) and logp_new a step away."""
    generator = _seeded(seed)
    logp_old = torch.empty(*shape, dtype=torch.float64).uniform_(0.02, 1.0, generator=generator).log() + level
    logp_new = logp_old + torch.randn(*shape, generator=generator, dtype=torch.float64) * spread
    return logp_new.to(dtype), logp_old.to(dtype)


def _random_advantages(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=_seeded(seed), dtype=torch.float64).to(dtype)


def _hand_ppo_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ratios [[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]] (tokens sampled at probability 0.4), advantages
    [[1, -1, 2], [1, -1, 1]]."""
    ratios = torch.tensor([[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]], dtype=torch.float64)
    logp_old = torch.full((2, 3), math.log(0.4), dtype=torch.float64)
    logp_new = (0.4 * ratios).log()
    advantages = torch.tensor([[1.0, -1.0, 2.0], [1.0, -1.0, 1.0]])
    return advantages, logp_new.float(), logp_old.float()


def check_ppo_clip_loss(fn) -> None:
    """Hand-computed tokens on every side of the clip, advantages per sequence and per token, a gradient, and
    refusing clip <= 0."""
    _ppo(fn, "ratios r = exp(logp_new - logp_old) = [[1.5, 0.5, 1.1], [0.7, 1.5, 0.5]] with advantages "
             "[[1, -1, 2], [1, -1, 1]]: the losses are [[-1.2, 0.8, -2.2], [-0.7, 1.5, -0.5]] (r = 1.5 with A = 1 "
             "is clipped to 1.2, r = 0.5 with A = -1 to 0.8; the others are not)", *_hand_ppo_case(), 0.2)
    logp_new, logp_old = _random_logps(0, 3, 6)
    _ppo(fn, "3 sequences of 6 tokens with one advantage per sequence, shape (3, 1) against (3, 6)",
         _random_advantages(1, 3, 1), logp_new, logp_old, 0.1)
    logp_new, logp_old = _random_logps(2, 4, 7, spread=0.5)
    advantages = _random_advantages(3, 4, 7)
    _ppo(fn, "a batch of shape (4, 7) with an advantage per token", advantages, logp_new, logp_old, 0.2)
    _ppo(fn, "the batch of shape (4, 7) with logp_new.requires_grad = True", advantages, logp_new, logp_old, 0.2,
         gradient=True)
    for clip in (0, -0.2):
        refuses(fn, f"ppo_clip_loss with clip={clip}", _PPO_REFUSE, advantages, logp_new, logp_old, clip)
    print("✅ ppo_clip_loss passes the visible tests.")


def check_ppo_clip_loss_hidden(fn) -> None:
    """One sequence, float64, three dimensions, other clips, very unlikely tokens, a float64 gradient, refusals."""
    logp_new, logp_old = _random_logps(20, 9)
    _ppo(fn, "one sequence of 9 tokens, shape (9,), an advantage per token", _random_advantages(21, 9), logp_new,
         logp_old, 0.3)
    logp_new, logp_old = _random_logps(22, 2, 5, dtype=torch.float64)
    _ppo(fn, "float64, shape (2, 5), advantages (2, 1)", _random_advantages(23, 2, 1, dtype=torch.float64),
         logp_new, logp_old, 0.2)
    logp_new, logp_old = _random_logps(24, 2, 4, 6)
    _ppo(fn, "2 prompts × 4 rollouts × 6 tokens, shape (2, 4, 6), advantages (2, 4, 1)",
         _random_advantages(25, 2, 4, 1), logp_new, logp_old, 0.2)
    for seed in range(26, 30):
        draw = random.Random(seed)
        shape = (draw.randint(1, 5), draw.randint(1, 12))
        clip, spread = draw.choice((0.05, 0.1, 0.28, 0.4)), draw.choice((0.1, 0.5, 1.5))
        logp_new, logp_old = _random_logps(seed, *shape, spread=spread)
        _ppo(fn, f"random log-probabilities of shape {shape} (seed {seed})",
             _random_advantages(seed + 100, shape[0], 1), logp_new, logp_old, clip)
    logp_new, logp_old = _random_logps(30, 2, 6, level=-108.0)
    _ppo(fn, "very unlikely tokens, log-probabilities near -110 (float32), shape (2, 6)",
         _random_advantages(31, 2, 6), logp_new, logp_old, 0.2)
    logp_new, logp_old = _random_logps(32, 3, 5, dtype=torch.float64)
    _ppo(fn, "float64, shape (3, 5), advantages (3, 1), with logp_new.requires_grad = True",
         _random_advantages(33, 3, 1, dtype=torch.float64), logp_new, logp_old, 0.15, gradient=True)
    refuses(fn, "ppo_clip_loss with clip=-1.0", _PPO_REFUSE, _random_advantages(34, 2, 1), logp_new.float(),
            logp_old.float(), -1.0)
    print("✅ ppo_clip_loss passes the hidden tests too.")


# ---- the KL penalty (k3) -------------------------------------------------------------------

_K3 = "k3 per token: d = ref_logp - logp, then torch.exp(d) - d - 1 (or torch.expm1(d) - d), no reduction"
_KL_NO_GRADIENT = ("build it from logp with torch operations only: .item(), .detach(), .numpy(), torch.tensor(...) "
                   "or torch.no_grad() cut the graph back to the policy (ref_logp is a constant, logp carries the "
                   "gradient)")
_KL_SHAPE = "one value per token, the shape of logp: no .mean() or .sum() (the trainer masks and averages)"


def _kl_mistakes(logp, ref_logp) -> list[tuple[torch.Tensor, str]]:
    d = ref_logp - logp
    k3 = torch.expm1(d) - d
    mistakes = [
        (logp - ref_logp, "that is the naive estimator k1 = logp - ref_logp: unbiased but noisy and negative on "
                          "many tokens; k3 = exp(d) - d - 1 with d = ref_logp - logp is never negative"),
        (d, "that is d = ref_logp - logp itself (minus the naive estimator): k3 = exp(d) - d - 1"),
        (torch.expm1(-d) + d, "that is k3 of the reverse direction, exp(logp - ref_logp) - (logp - ref_logp) - 1: "
                              "it estimates KL(reference || policy) and needs tokens sampled from the reference. "
                              "These tokens come from the policy: d = ref_logp - logp"),
        (d ** 2 / 2, "that is k2 = (logp - ref_logp)**2 / 2, low-variance but biased: k3 = exp(d) - d - 1 is "
                     "unbiased and as cheap"),
        (torch.exp(d) - d, "the - 1 is missing: k3 = exp(d) - d - 1, exactly 0 where the two models agree"),
        (torch.expm1(d), "the - d is missing: k3 = exp(d) - d - 1"),
        (torch.exp(d) + d - 1, "the middle term has the wrong sign: k3 = exp(d) - d - 1"),
        (k3.mean(), "that is the mean over every token: " + _KL_SHAPE),
        (k3.sum(), "that is the sum over every token: " + _KL_SHAPE),
    ]
    if k3.dim() >= 2:
        mistakes.append((k3.mean(-1), "that is one value per sequence: " + _KL_SHAPE))
    return mistakes


def _kl(fn, what: str, logp, ref_logp, *, gradient: bool = False) -> None:
    nonfinite = (_UNDERFLOW.replace("r = torch.exp(logp_new - logp_old)", "d = ref_logp - logp, then torch.exp(d)")
                 if float(logp.min()) < -80 else f"k3 is finite for finite log-probabilities: {_K3}")
    _compare(fn, what, (logp, ref_logp), ("logp", "ref_logp"), kl_penalty, _kl_mistakes, hint=_K3,
             shape_hint=_KL_SHAPE, nonfinite=nonfinite, grad=(0,) if gradient else (), no_gradient=_KL_NO_GRADIENT)


def check_kl_penalty(fn) -> None:
    """The one check of this exercise: hand-computed tokens, exactly 0 for identical models, random batches in
    float32 and float64, large differences, very unlikely tokens, a gradient."""
    _kl(fn, "the policy gives 3 tokens probabilities [0.5, 0.25, 0.3], the reference [0.25, 0.5, 0.3]: d = ref_logp - "
            "logp = [-log 2, log 2, 0], so k3 = [1/2 + log 2 - 1, 2 - log 2 - 1, 0] ≈ [0.1931, 0.3069, 0]",
        torch.tensor([0.5, 0.25, 0.3]).log(), torch.tensor([0.25, 0.5, 0.3]).log())
    logp, _ = _random_logps(40, 2, 6)
    _kl(fn, "identical models, shape (2, 6): k3 is 0 at every token", logp, logp.clone())
    got = _run(fn, "identical models, shape (2, 6)", logp.clone(), logp.clone(), hint=_K3)
    if not bool((got == 0).all()):
        fail("identical models, shape (2, 6): k3 should be exactly 0 where logp == ref_logp", "all exactly 0",
             f"values up to {got.detach().abs().max().item():.3g}",
             "compute d = ref_logp - logp first, then exp(d) - d - 1 (no eps, no clamping)")
    logp, ref_logp = _random_logps(41, 3, 8)
    _kl(fn, "a batch of shape (3, 8), the reference a step away from the policy", logp, ref_logp)
    logp, ref_logp = _random_logps(42, 2, 5, spread=8.0)
    _kl(fn, "large differences between the models (up to about ±20 nats), shape (2, 5)", logp, ref_logp)
    logp, ref_logp = _random_logps(43, 7, dtype=torch.float64, spread=1.0)
    _kl(fn, "one sequence of 7 tokens in float64, shape (7,)", logp, ref_logp)
    logp, ref_logp = _random_logps(44, 2, 6, level=-108.0)
    _kl(fn, "very unlikely tokens, log-probabilities near -110 (float32), shape (2, 6)", logp, ref_logp)
    logp, ref_logp = _random_logps(45, 3, 8, spread=0.5)
    _kl(fn, "a batch of shape (3, 8) with logp.requires_grad = True", logp, ref_logp, gradient=True)
    print("✅ kl_penalty passes the tests.")


# ---- evaluate the claim ------------------------------------------------------------------------
HACK_EFFECTS = ("longer and less accurate", "longer and more accurate", "shorter and less accurate",
                "shorter and more accurate")


def check_rl_claims(grpo_beat_control, hack_effect, best_leash, *, grpo_gain: float, control_gain: float,
                    hack_length: tuple[float, float], hack_accuracy: tuple[float, float],
                    sweep_accuracy: dict[float, float] | None) -> None:
    """The three answers of notebook E's "evaluate the claim", against what the notebook measured.

    grpo_beat_control: True if your GRPO run raised held-out accuracy more than the shuffled-reward
    control did (grpo_gain against control_gain). hack_effect: one of HACK_EFFECTS, what the
    gameable reward did to the answers (hack_length and hack_accuracy: before and after). best_leash:
    the KL weight whose gameable-reward runs ended with the best mean held-out accuracy in the
    stored sweep (sweep_accuracy: KL weight -> that accuracy; None where the sweep is missing).
    """
    if not isinstance(grpo_beat_control, bool):
        fail("1. Set grpo_beat_control", "True or False", repr(grpo_beat_control))
    if grpo_beat_control != (grpo_gain > control_gain):
        fail("1. Did your GRPO run beat the shuffled-reward control?", grpo_gain > control_gain, grpo_beat_control,
             f"you measured a gain of {grpo_gain:+.2f} with the real rewards and {control_gain:+.2f} with shuffled ones")
    if hack_effect not in HACK_EFFECTS:
        fail("2. Set hack_effect", f"one of {HACK_EFFECTS}", repr(hack_effect))
    measured = (f"{'longer' if hack_length[1] > hack_length[0] else 'shorter'} and "
                f"{'more' if hack_accuracy[1] > hack_accuracy[0] else 'less'} accurate")
    if hack_effect != measured:
        fail("2. What did the gameable reward do?", repr(measured), repr(hack_effect),
             f"answer length went {hack_length[0]:.2f} -> {hack_length[1]:.2f}, held-out accuracy "
             f"{hack_accuracy[0]:.2f} -> {hack_accuracy[1]:.2f}")
    if sweep_accuracy is None:
        fail("3. The stored KL sweep is missing, so best_leash cannot be checked", "the stored sweep",
             "none on this install", "reinstall the course, or make the sweep with "
             "`python -m course_lib.experiments rl kl` (minutes), then run the dial's cell again")
    best = max(sweep_accuracy.values())
    winners = [kl for kl, accuracy in sweep_accuracy.items() if accuracy == best]
    if best_leash not in winners:
        fail("3. Which KL weight kept the gameable-reward runs most accurate?", " or ".join(map(repr, winners)),
             repr(best_leash), "the stored sweep's mean held-out accuracy per KL weight: "
             + ", ".join(f"{kl:g}: {a:.2f}" for kl, a in sweep_accuracy.items()))
    print("✅ All three answers agree with what you measured.")
