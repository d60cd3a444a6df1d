"""Reference answers for notebook E: reinforcement learning, from a bandit to the losses of GRPO.

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
"""
from __future__ import annotations

import math

import torch

from course_lib.validation import is_number, is_whole


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


def kl_penalty(logp, ref_logp) -> torch.Tensor:
    """k3 (Schulman 2020, "Approximating KL Divergence"), per token, NOT reduced.

    With d = ref_logp - logp at tokens sampled from the policy, exp(d) - d - 1 is an unbiased
    estimate of KL(policy || reference) that is never negative (e^d >= 1 + d) and is exactly 0
    where the two models agree; its average over many tokens is the KL. Gradient flows to logp.
    torch.expm1(d) is exp(d) - 1 without losing digits when d is near 0.
    """
    d = ref_logp - logp
    return torch.expm1(d) - d
