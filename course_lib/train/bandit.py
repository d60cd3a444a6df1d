"""A multi-armed bandit (notebook E1-E2): the smallest problem where exploring pays.

A row of slot machines ("arms"), each paying a noisy reward around its own hidden mean. The agent
keeps an estimate of each arm's value (the average of what it paid so far) and picks an arm with a
rule such as epsilon-greedy. Regret is what the agent lost against always pulling the best arm:
the sum, over the steps, of (best mean - mean of the arm pulled). A good rule's regret flattens
out; a rule that never explores can lock onto a poor arm and lose forever.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class BanditRun:
    rewards: list[float]
    regret: list[float]  # cumulative, after each step
    best_arm_share: float  # how often the best arm was pulled
    estimates: list[float]  # the final value estimates


def bandit_means(arms: int = 10, seed: int = 0) -> torch.Tensor:
    """The hidden mean reward of each arm: drawn once from a standard normal, seeded."""
    return torch.randn(arms, generator=torch.Generator().manual_seed(seed))


def run_bandit(choose: Callable, epsilon: float, means: torch.Tensor, steps: int = 1000, seed: int = 0,
               noise: float = 1.0) -> BanditRun:
    """`steps` pulls, each arm chosen by `choose(q_values, epsilon, generator)` (epsilon_greedy's
    signature) from the running averages; rewards are the arm's mean plus Gaussian noise."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    choices = torch.Generator().manual_seed(seed)
    payouts = torch.Generator().manual_seed(seed + 10_000)  # its own stream: the rule's draws never shift the rewards
    q = torch.zeros(len(means))
    pulls = torch.zeros(len(means))
    best = int(means.argmax())
    rewards, regret, total, best_pulls = [], [], 0.0, 0
    for _ in range(steps):
        arm = int(choose(q.clone(), epsilon, choices))
        if not 0 <= arm < len(means):
            raise ValueError(f"the rule chose arm {arm}, but there are {len(means)} arms (0 to {len(means) - 1})")
        reward = float(means[arm] + noise * torch.randn(1, generator=payouts))
        pulls[arm] += 1
        q[arm] += (reward - q[arm]) / pulls[arm]  # the running average, without storing every reward
        total += float(means[best] - means[arm])
        best_pulls += arm == best
        rewards.append(reward)
        regret.append(total)
    return BanditRun(rewards, regret, best_pulls / steps, q.tolist())


def compare_rules(choose: Callable, epsilons: dict[str, float], arms: int = 10, steps: int = 1000,
                  runs: int = 20, seed: int = 0) -> dict[str, dict]:
    """Each named epsilon on `runs` bandits (seeds seed..seed + runs - 1): the mean cumulative regret
    curve and the mean share of pulls on the best arm."""
    result = {}
    for name, epsilon in epsilons.items():
        curves, shares = [], []
        for r in range(runs):
            run = run_bandit(choose, epsilon, bandit_means(arms, seed + r), steps, seed=seed + r)
            curves.append(run.regret)
            shares.append(run.best_arm_share)
        result[name] = {"epsilon": epsilon, "regret": torch.tensor(curves).mean(0).tolist(),
                        "best_arm_share": sum(shares) / runs}
    return result
