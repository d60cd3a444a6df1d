"""RLHF on notebook E's task: a reward model learned from comparisons, then optimised against.

In RL from human feedback the reward is not a checker but a model of what people preferred, and a
model is right only where its training data reached. Here the exact checker plays both parts it
plays in Gao, Schulman and Hilton, "Scaling Laws for Reward Model Overoptimization" (2022):
1. the labeler: it compares pairs of the start model's own answers to training problems and
   prefers the right one, as a person would; a reward model (post_training.RewardModel, trained
   with the Bradley-Terry loss) learns those comparisons: the **proxy** reward;
2. the **gold** score: held out from training, it says how often the answers are really right.
Optimising the proxy then goes well while the policy stays among answers like those the labeler
compared, and badly once it drifts to answers no comparison covered, where the reward model's
opinion is a guess. Two ways to optimise:
- best-of-N: sample N answers and keep the one the reward model likes best; its drift from the
  policy is at most log N - (N - 1) / N nats (Stiennon et al. 2020), with no training at all;
- GRPO (course_lib.train.grpo) with the reward model as its reward, watched as the KL grows.
"""
from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from course_lib.data import arithmetic
from course_lib.data.arithmetic import END, END_ID, Problem
from course_lib.models.tinygpt import TinyGPT, pad_right
from course_lib.train import grpo
from course_lib.train.post_training import RewardModel, pair_wins, train_reward_model

SAMPLES_PER_PROMPT = 8  # the start model's answers to each problem that the labeler compares
BEST_OF = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Comparison:
    """One labelled pair: two answers to one problem, the labeler's choice first."""
    problem: Problem
    chosen: str
    rejected: str


class Answers:
    """Answers to problems as the reward model reads them: prompt, answer, end token."""

    def __init__(self, problems: Sequence[Problem], completions: Sequence[str]):
        self.rows = [arithmetic.encode(p.prompt + c + END) for p, c in zip(problems, completions, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)

    def sequences(self, indices, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(padded ids, lengths) of the answers at `indices`: what RewardModel takes."""
        rows = [self.rows[i] for i in indices]
        return pad_right(rows, END_ID, device), torch.tensor([len(r) for r in rows], device=device)


class ComparisonSet:
    """Comparisons as two aligned sets of answers, as post_training.train_reward_model reads them."""

    def __init__(self, comparisons: Sequence[Comparison]):
        self.comparisons = list(comparisons)
        if not self.comparisons:
            raise ValueError("no comparisons: every problem's answers were all right or all wrong")
        problems = [c.problem for c in self.comparisons]
        self.chosen = Answers(problems, [c.chosen for c in self.comparisons])
        self.rejected = Answers(problems, [c.rejected for c in self.comparisons])

    def __len__(self) -> int:
        return len(self.comparisons)


def labeler_model(max_steps: int = 4000, seed: int = 1, device: torch.device | str = "cpu",
                  progress: bool = True) -> TinyGPT:
    """The reward model's starting point: the arithmetic TinyGPT trained further than the policy
    (to 95% held-out accuracy or `max_steps`), as real reward models often start from a model at
    least as large as the policy. It still has to learn what the labeler prefers."""
    model = grpo.arithmetic_model(seed=seed).to(device)
    grpo.pretrain_arithmetic(model, max_steps, target_accuracy=0.95, check_every=250, seed=seed, progress=progress)
    return model


@torch.no_grad()
def _answers(policy: TinyGPT, problems: Sequence[Problem], samples: int, seed: int) -> tuple[list[Problem], list[str]]:
    """`samples` answers of `policy` to each problem at temperature 1: (each problem repeated, the answers)."""
    generator = torch.Generator().manual_seed(seed)
    grouped = [p for p in problems for _ in range(samples)]
    outputs = policy.generate_batch([arithmetic.encode(p.prompt) for p in grouped], grpo.MAX_ANSWER, END_ID,
                                    temperature=1.0, generator=generator)
    return grouped, [arithmetic.completion_text(ids) for ids, _ in outputs]


@torch.no_grad()
def comparisons(policy: TinyGPT, problems: Sequence[Problem], *, samples: int = SAMPLES_PER_PROMPT,
                seed: int = 0) -> list[Comparison]:
    """The labeler at work: `samples` answers of `policy` to each problem (temperature 1), and for
    each problem every (right, wrong) pair of its distinct answers, the right one chosen. Problems
    whose answers are all right or all wrong give no pair."""
    grouped, completions = _answers(policy, problems, samples, seed)
    pairs = []
    for start in range(0, len(grouped), samples):
        problem, answers = grouped[start], dict.fromkeys(completions[start:start + samples])
        right = [a for a in answers if a == problem.answer]
        pairs += [Comparison(problem, r, w) for r in right for w in answers if w != problem.answer]
    return pairs


class LearnedReward:
    """A trained RewardModel as a reward: reward(problem, answer) for one answer, score_all for many
    in one forward pass (what GRPO's rollouts use)."""

    def __init__(self, reward_model: RewardModel):
        self.model = reward_model.eval().requires_grad_(False)

    @torch.no_grad()
    def score_all(self, problems: Sequence[Problem], completions: Sequence[str]) -> torch.Tensor:
        answers = Answers(problems, completions)
        return self.model(*answers.sequences(range(len(answers)), self.model.device)).float().cpu()

    def __call__(self, problem: Problem, completion: str) -> float:
        return float(self.score_all([problem], [completion])[0])

    def pair_accuracy(self, pairs: ComparisonSet) -> float:
        """The share of comparisons whose chosen answer scores higher (a tie counts half)."""
        problems = [c.problem for c in pairs.comparisons]
        chosen = self.score_all(problems, [c.chosen for c in pairs.comparisons])
        rejected = self.score_all(problems, [c.rejected for c in pairs.comparisons])
        wins = pair_wins(chosen, rejected)
        return sum(wins) / len(wins)


def train_learned_reward(backbone: TinyGPT, pairs: ComparisonSet, *, steps: int, lr: float = 1e-3,
                         batch_size: int = 64, seed: int = 0, live: bool = False,
                         progress: bool = True) -> LearnedReward:
    """A reward model on a copy of `backbone`, trained on the comparisons with the Bradley-Terry loss
    (D's training, on E's task)."""
    reward_model, _ = train_reward_model(backbone, pairs, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                         live=live, progress=progress)
    return LearnedReward(reward_model)


def best_of_n_kl(n: int) -> float:
    """How far best-of-n drifts from the policy it samples: log n - (n - 1) / n nats (an upper
    bound on the KL, and the usual x-axis of over-optimisation plots)."""
    return math.log(n) - (n - 1) / n


@torch.no_grad()
def best_of_n(policy: TinyGPT, reward: LearnedReward, problems: Sequence[Problem], *, ns: Sequence[int] = BEST_OF,
              seed: int = 0) -> dict[str, list[float]]:
    """Best-of-N against the learned reward, for each N in `ns`: max(ns) answers to each problem
    (temperature 1), and for each N the one of the first N that the reward model scores highest.
    Returns {"n", "kl", "proxy" (its mean score), "gold" (the share exactly right)}, one entry per N."""
    if not ns or min(ns) < 1:
        raise ValueError(f"each N must be at least 1, got {list(ns)}")
    most = max(ns)
    grouped, completions = _answers(policy, problems, most, seed)
    scores = reward.score_all(grouped, completions).view(len(problems), most)
    right = torch.tensor([c == p.answer for p, c in zip(grouped, completions)], dtype=torch.float32)
    right = right.view(len(problems), most)
    result: dict[str, list[float]] = {"n": [], "kl": [], "proxy": [], "gold": []}
    rows = torch.arange(len(problems))
    for n in sorted(ns):
        best = scores[:, :n].argmax(1)
        result["n"].append(n)
        result["kl"].append(best_of_n_kl(n))
        result["proxy"].append(float(scores[rows, best].mean()))
        result["gold"].append(float(right[rows, best].mean()))
    return result


def training_problems(n: int, seed: int = 0) -> list[Problem]:
    """n distinct training problems for the labeler (never held-out ones)."""
    return random.Random(seed).sample(arithmetic.all_problems("train"), n)


# --- GRPO against the learned reward --------------------------------------------------------------
@dataclass
class Trajectory:
    """One GRPO run against the learned reward, read at each evaluation: the drift (KL to the start
    model, per answer token, averaged over the steps since the last reading), the proxy's mean
    score and the gold accuracy of the policy's greedy answers to the held-out problems."""
    steps: list[int]
    kl: list[float]
    proxy: list[float]
    gold: list[float]

    @classmethod
    def of_log(cls, log) -> "Trajectory":
        per_step, kl = log.per_step["KL to reference"], []
        for previous, step in zip([0] + log.eval_steps, log.eval_steps):
            window = per_step[previous:step]
            kl.append(sum(window) / len(window) if window else 0.0)
        return cls(list(log.eval_steps), kl, list(log.evals["held-out proxy reward"]),
                   list(log.evals["held-out accuracy"]))


def optimise_against(start: TinyGPT, reward: LearnedReward, held_out: Sequence[Problem], *, steps: int,
                     kl_weights: Sequence[float] = (0.0,), seeds: Sequence[int] = (0, 1, 2), lr: float = 1e-4,
                     eval_every: int = 10, progress: bool = True, **functions) -> dict[float, list[Trajectory]]:
    """GRPO from `start` with the learned reward, at each KL weight and seed: {KL weight: [a
    Trajectory per seed]}. `functions` are the learner's (advantages_fn, clip_fn, kl_fn)."""
    from tqdm.auto import tqdm

    runs: dict[float, list[Trajectory]] = {kl: [] for kl in kl_weights}
    with tqdm(total=len(kl_weights) * len(seeds), desc="GRPO on the reward model", unit="run",
              disable=not progress) as bar:
        for kl in kl_weights:
            for seed in seeds:
                trainer = grpo.GRPOTrainer(copy.deepcopy(start), grpo.GRPOConfig(lr=lr, kl_coef=kl, reward="reward model"),
                                           seed=seed, reward_model=reward, **functions)
                log = trainer.run(steps, held_out=held_out, eval_every=eval_every, live=False, progress=False)
                runs[kl].append(Trajectory.of_log(log))
                bar.update(1)
    return runs
