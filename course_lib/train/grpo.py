"""Reinforcement learning on a small model (notebook E): rollouts, GRPO, and a critic for comparison.

The loop, as the primer tells it: try many times, score each try, lean toward the tries that beat
your usual, gently. Concretely, for each step:
1. rollouts: for each of a few prompts, sample a group of completions at a temperature, and keep
   each completion token's log-probability under the policy that wrote it (the "old" policy) and
   under a frozen copy of the starting model (the reference);
2. rewards: score each completion with a checker (course_lib.data.arithmetic), or with a reward
   model learned from comparisons (course_lib.train.rlhf);
3. advantages: each completion's reward against its own group's (GRPO, Shao et al. 2024), or against
   a learned critic's prediction (PPO-style);
4. the update: PPO's clipped objective on every completion token (Schulman et al. 2017), plus an
   optional KL penalty that keeps the policy near the reference.

Steps 3 and 4 call the learner's `grpo_advantages`, `ppo_clip_loss` and `kl_penalty`, so their code
drives the run. With one update per batch of rollouts the policy's ratio to the old policy is 1 at
the update and the clip never acts; PPO makes several updates on each batch
(`GRPOConfig.updates_per_batch`), and from the second one on the ratio moves away from 1 and the
clip holds it: the log's "clip fraction" is the share of tokens outside [1 - clip, 1 + clip].
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.data import arithmetic
from course_lib.data.arithmetic import END_ID, Problem
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig, pad_right
from course_lib.exercises.rl import grpo_advantages, kl_penalty, ppo_clip_loss
from course_lib.train.live import LiveLines
from course_lib.train.loop import RunLog, random_items, train_steps

MAX_ANSWER = 4  # new tokens per completion: three digits and the end token
ARITHMETIC_MODEL = TinyGPTConfig(vocab_size=arithmetic.VOCAB_SIZE, context=16, dim=64, n_layers=2, n_heads=4)


def arithmetic_model(seed: int = 0, cfg: TinyGPTConfig = ARITHMETIC_MODEL) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(cfg)


def _with_mask(rows: list[list[int]], prompt_lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequences, mask): the rows padded with the end token, and True at each position t whose next
    token, sequences[:, t + 1], comes after the prompt (the answer's digits and its end token)."""
    sequences = pad_right(rows, END_ID)
    mask = torch.zeros((len(rows), sequences.shape[1] - 1), dtype=torch.bool)
    for i, (row, prompt_length) in enumerate(zip(rows, prompt_lengths)):
        mask[i, prompt_length - 1:len(row) - 1] = True
    return sequences, mask


def _examples(problems: Sequence[Problem]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequences, answer mask) for supervised training on "a+b=c$"."""
    return _with_mask([arithmetic.encode(p.prompt + p.answer + arithmetic.END) for p in problems],
                      [len(p.prompt) for p in problems])


def answer_loss(model: TinyGPT, problems: Sequence[Problem]) -> torch.Tensor:
    """Mean loss on the right answers' tokens (teacher-forced): how well the model can still write them."""
    sequences, mask = _examples(problems)
    sequences, mask = sequences.to(model.device), mask.to(model.device)
    logits = model(sequences[:, :-1])
    return F.cross_entropy(logits[mask], sequences[:, 1:][mask])


def pretrain_arithmetic(model: TinyGPT, max_steps: int, *, target_accuracy: float | None = None,
                        check_every: int = 50, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                        progress: bool = True) -> list[tuple[int, float]]:
    """Supervised training on right answers of training problems: the starting point RL improves on.

    Trains in chunks of `check_every` steps, measuring greedy accuracy on 200 held-out problems
    after each, until `max_steps` or `target_accuracy` (for a model that is right about half the
    time: room for RL to show what it adds). Returns (steps, accuracy) after each chunk.
    """
    pool = arithmetic.all_problems("train")
    probe = arithmetic.sample_problems(200, "held_out", seed=seed + 1000)
    model.train()

    def reached(log: RunLog) -> str | None:
        if target_accuracy is not None and log.last("accuracy") >= target_accuracy:
            return f"reached {target_accuracy:.0%}"
        return None

    # Adam's usual betas, a constant learning rate and no clipping: plain supervised learning.
    log = train_steps(model.parameters(), lambda batch: (answer_loss(model, [pool[i] for i in batch]), {}),
                      random_items(len(pool), batch_size, seed), steps=max_steps, lr=lr, betas=(0.9, 0.999),
                      schedule="constant", clip=None, evaluate=lambda: {"accuracy": accuracy(model, probe)},
                      eval_every=check_every, eval_at_start=False, after_eval=reached,
                      desc="learning arithmetic", progress=progress)
    return list(zip(log.eval_steps, log.evals["accuracy"]))


def greedy_answers(model: TinyGPT, problems: Sequence[Problem]) -> list[str]:
    outputs = model.generate_batch([arithmetic.encode(p.prompt) for p in problems], MAX_ANSWER, END_ID)
    return [arithmetic.completion_text(ids) for ids, _ in outputs]


def share_right(answers: Sequence[str], problems: Sequence[Problem]) -> float:
    """The share of answers that are exactly the problems' answers."""
    return sum(a == p.answer for a, p in zip(answers, problems, strict=True)) / len(problems)


def accuracy(model: TinyGPT, problems: Sequence[Problem]) -> float:
    """The share of problems the model answers exactly right, greedily."""
    return share_right(greedy_answers(model, problems), problems)


# --- rollouts -------------------------------------------------------------------------------------
@dataclass
class Rollouts:
    """A group of sampled completions per problem, consecutive: problems[i] for i in a group."""
    problems: list[Problem]
    completions: list[str]
    sequences: torch.Tensor  # (n, time) prompt + completion, padded with the end token
    mask: torch.Tensor  # (n, time - 1) True where the next token is one the policy wrote
    old_logp: torch.Tensor  # (n, time - 1) those tokens' log-probabilities under the sampling policy
    ref_logp: torch.Tensor  # (n, time - 1) ... and under the reference
    rewards: torch.Tensor  # (n,)
    group_size: int


def token_logprobs(model: nn.Module, sequences: torch.Tensor) -> torch.Tensor:
    """log p(sequences[:, t + 1] | sequences[:, :t + 1]) for every t: shape (n, time - 1)."""
    logits = model(sequences[:, :-1]).float()
    return torch.log_softmax(logits, -1).gather(-1, sequences[:, 1:].unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def sample_rollouts(policy: TinyGPT, reference: TinyGPT, problems: Sequence[Problem], group_size: int,
                    temperature: float, reward_fn: Callable[[Problem, str], float],
                    generator: torch.Generator) -> Rollouts:
    grouped = [p for p in problems for _ in range(group_size)]
    prompts = [arithmetic.encode(p.prompt) for p in grouped]
    outputs = policy.generate_batch(prompts, MAX_ANSWER, END_ID, temperature=temperature, generator=generator)
    sequences, mask = _with_mask([prompt + new for prompt, (new, _) in zip(prompts, outputs)], list(map(len, prompts)))
    sequences = sequences.to(policy.device)
    completions = [arithmetic.completion_text(new) for new, _ in outputs]
    # A learned reward (course_lib.train.rlhf.LearnedReward) scores the whole batch in one pass.
    score_all = getattr(reward_fn, "score_all", None)
    rewards = score_all(grouped, completions) if score_all else torch.tensor([reward_fn(p, c) for p, c in
                                                                               zip(grouped, completions)])
    return Rollouts(grouped, completions, sequences, mask.to(policy.device),
                    token_logprobs(policy, sequences), token_logprobs(reference, sequences), rewards, group_size)


# --- the critic (for comparison with the group baseline) ------------------------------------------
class Critic(nn.Module):
    """A value model: a copy of the policy's body with a scalar head, predicting the reward to
    expect from a prompt (read at its last token, the "="). PPO needs one; GRPO does not."""

    def __init__(self, policy: TinyGPT):
        super().__init__()
        self.body = copy.deepcopy(policy)
        self.head = nn.Linear(policy.cfg.dim, 1)

    def forward(self, prompts: list[list[int]]) -> torch.Tensor:
        ids = pad_right(prompts, END_ID, self.head.weight.device)
        last = torch.tensor([len(p) - 1 for p in prompts], device=ids.device)
        return self.head(self.body.features(ids)[torch.arange(len(prompts), device=ids.device), last]).squeeze(-1)


# --- the trainer ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GRPOConfig:
    prompts_per_step: int = 16
    group_size: int = 8
    temperature: float = 1.0
    lr: float = 1e-4
    clip: float = 0.2
    updates_per_batch: int = 1  # PPO's epochs: gradient steps on each batch of rollouts
    kl_coef: float = 0.0  # the leash: weight of the KL penalty to the reference
    reward: str = "correct"  # or "gameable" (pays for length too), or "reward model" (a learned one)
    shuffle_rewards: bool = False  # the control: rewards shuffled within the batch, so they carry no signal
    baseline: str = "group"  # or "critic"
    critic_lr: float = 1e-3

    def __post_init__(self):
        if self.reward not in REWARD_NAMES:
            raise ValueError(f"reward must be one of {', '.join(map(repr, REWARD_NAMES))}, got {self.reward!r}")
        if self.baseline not in ("group", "critic"):
            raise ValueError(f"baseline must be 'group' or 'critic', got {self.baseline!r}")
        if self.group_size < 2 and self.baseline == "group":
            raise ValueError("a group baseline needs group_size >= 2")
        if isinstance(self.updates_per_batch, bool) or not isinstance(self.updates_per_batch, int) \
                or self.updates_per_batch < 1:
            raise ValueError(f"updates_per_batch must be a whole number >= 1, got {self.updates_per_batch!r}")


REWARDS = {"correct": arithmetic.correct_reward, "gameable": arithmetic.gameable_reward}
REWARD_NAMES = (*REWARDS, "reward model")  # the last: a learned reward, handed to the trainer


class GRPOTrainer:
    """Trains `policy` in place; the reference is a frozen copy of it as it was when the trainer was made.
    With cfg.reward "reward model", `reward_model` (a course_lib.train.rlhf.LearnedReward) is the reward."""

    def __init__(self, policy: TinyGPT, cfg: GRPOConfig = GRPOConfig(), *, seed: int = 0,
                 advantages_fn: Callable = grpo_advantages, clip_fn: Callable = ppo_clip_loss,
                 kl_fn: Callable = kl_penalty, reward_model: Callable[[Problem, str], float] | None = None):
        if (cfg.reward == "reward model") != (reward_model is not None):
            raise ValueError("pass a reward_model exactly when GRPOConfig(reward='reward model'); "
                             f"got reward={cfg.reward!r} and reward_model={type(reward_model).__name__}")
        self.reward_fn = reward_model or REWARDS[cfg.reward]
        self.policy, self.cfg, self.seed = policy, cfg, seed
        self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        self.advantages_fn, self.clip_fn, self.kl_fn = advantages_fn, clip_fn, kl_fn
        self.generator = torch.Generator().manual_seed(seed)
        self.shuffler = random.Random(seed)
        self.critic = Critic(policy).to(policy.device) if cfg.baseline == "critic" else None
        self.critic_optimizer = (torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr)
                                 if self.critic is not None else None)
        self.pool = arithmetic.all_problems("train")

    def advantages(self, rollouts: Rollouts) -> torch.Tensor:
        rewards = rollouts.rewards
        if self.cfg.shuffle_rewards:
            order = list(range(len(rewards)))
            self.shuffler.shuffle(order)
            rewards = rewards[order]
        if self.critic is None:
            return torch.as_tensor(self.advantages_fn(rewards, rollouts.group_size), dtype=torch.float32)
        values = self.critic([arithmetic.encode(p.prompt) for p in rollouts.problems])
        critic_loss = F.mse_loss(values, rewards.to(values.device))
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        return (rewards.to(values.device) - values.detach()).cpu()

    def batches(self):
        """Each batch of rollouts with its advantages, `updates_per_batch` times in a row: the policy
        that wrote them (the old one) stays fixed while the updates move the current one away."""
        cfg = self.cfg
        for indices in random_items(len(self.pool), cfg.prompts_per_step, self.seed):
            rollouts = sample_rollouts(self.policy, self.reference, [self.pool[i] for i in indices],
                                       cfg.group_size, cfg.temperature, self.reward_fn, self.generator)
            advantages = self.advantages(rollouts).to(self.policy.device)
            for _ in range(cfg.updates_per_batch):
                yield rollouts, advantages

    def step_loss(self, batch: tuple[Rollouts, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        rollouts, advantages = batch
        self.policy.train()
        logp = token_logprobs(self.policy, rollouts.sequences)
        per_token = self.clip_fn(advantages[:, None].expand_as(logp), logp, rollouts.old_logp, cfg.clip)
        kl = self.kl_fn(logp, rollouts.ref_logp)
        if cfg.kl_coef:
            per_token = per_token + cfg.kl_coef * kl
        mask = rollouts.mask
        loss = per_token[mask].mean()
        ratio = torch.exp(logp.detach() - rollouts.old_logp)[mask]
        correct = [c == p.answer for c, p in zip(rollouts.completions, rollouts.problems)]
        groups = [rollouts.completions[i:i + cfg.group_size] for i in range(0, len(correct), cfg.group_size)]
        return loss, {"reward": float(rollouts.rewards.mean()), "sample accuracy": sum(correct) / len(correct),
                      "KL to reference": float(kl.detach()[mask].mean()),
                      "answer length": sum(map(len, rollouts.completions)) / len(correct),
                      "distinct answers per group": sum(len(set(g)) for g in groups) / len(groups),
                      "clip fraction": float(((ratio - 1).abs() > cfg.clip).float().mean()),
                      "ratio min": float(ratio.min()), "ratio max": float(ratio.max())}

    def run(self, steps: int, *, held_out: Sequence[Problem] | None = None, eval_every: int = 25,
            live: bool = True, progress: bool = True) -> RunLog:
        """`steps` batches of rollouts, each used for cfg.updates_per_batch gradient steps; the log
        counts gradient steps. Held-out accuracy is measured every `eval_every` batches."""
        def evaluate():
            if held_out is None:
                return {}
            with torch.no_grad():
                coherence = float(answer_loss(self.policy, held_out))
            answers = greedy_answers(self.policy, held_out)
            measured = {"held-out accuracy": share_right(answers, held_out), "held-out answer loss": coherence}
            if self.cfg.reward == "reward model":  # the proxy's opinion of the same answers the gold score marks
                measured["held-out proxy reward"] = float(self.reward_fn.score_all(held_out, answers).mean())
            return measured

        updates = self.cfg.updates_per_batch
        plot = LiveLines({"reward": 0, "sample accuracy": 0, "held-out accuracy": 0, "KL to reference": 1},
                         ["reward and accuracy", "drift"],
                         f"GRPO ({self.cfg.reward} reward, KL weight {self.cfg.kl_coef:g}"
                         + (f", {updates} updates per batch)" if updates > 1 else ")"),
                         ["share", "KL (nats per token)"]) if live else None
        params = list(self.policy.parameters())
        return train_steps(params, self.step_loss, self.batches(), steps=steps * updates, lr=self.cfg.lr,
                           evaluate=evaluate, eval_every=eval_every * updates, plot=plot, desc="GRPO",
                           progress=progress)

    def parameter_counts(self) -> dict[str, int]:
        """What each baseline costs in parameters: the policy's, and the critic's on top (0 for a group)."""
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {"policy": count(self.policy), "critic": count(self.critic) if self.critic is not None else 0}


# --- does the clip act? -----------------------------------------------------------------------------
def unclipped_loss(advantages: torch.Tensor, logp_new: torch.Tensor, logp_old: torch.Tensor,
                   clip: float) -> torch.Tensor:
    """PPO's objective with the clip taken out (`clip` is ignored): the ratio times the advantage,
    however far the ratio has gone."""
    return -torch.exp(logp_new - logp_old) * advantages


def clip_comparison(start: TinyGPT, held_out: Sequence[Problem], *, steps: int, seeds: Sequence[int] = (0, 1, 2),
                    lr: float = 3e-4, updates_per_batch: int = 4, eval_every: int = 10,
                    advantages_fn: Callable = grpo_advantages, clip_fn: Callable = ppo_clip_loss,
                    kl_fn: Callable = kl_penalty, progress: bool = True) -> dict[str, list[RunLog]]:
    """Large steps (a high learning rate and several updates per batch of rollouts) from the same
    start model, once with `clip_fn` and once without a clip, for each seed: {"with the clip":
    [a log per seed], "without a clip": [...]}. Both arms draw the same first rollouts for a seed."""
    from tqdm.auto import tqdm

    objectives = {"with the clip": clip_fn, "without a clip": unclipped_loss}
    runs: dict[str, list[RunLog]] = {name: [] for name in objectives}
    with tqdm(total=len(objectives) * len(seeds), desc="clip or no clip", unit="run", disable=not progress) as bar:
        for seed in seeds:
            for name, objective in objectives.items():
                policy = copy.deepcopy(start)
                trainer = GRPOTrainer(policy, GRPOConfig(lr=lr, updates_per_batch=updates_per_batch), seed=seed,
                                      advantages_fn=advantages_fn, clip_fn=objective, kl_fn=kl_fn)
                runs[name].append(trainer.run(steps, held_out=held_out, eval_every=eval_every, live=False,
                                              progress=False))
                bar.update(1)
    return runs
