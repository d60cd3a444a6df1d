"""Notebook E's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.rl, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_epsilon_greedy(fn) -> None:
    check(fn, exercise="epsilon_greedy")


def check_grpo_advantages(fn) -> None:
    check(fn, exercise="grpo_advantages")


def check_grpo_advantages_hidden(fn) -> None:
    check(fn, exercise="grpo_advantages", hidden=True)


def check_ppo_clip_loss(fn) -> None:
    check(fn, exercise="ppo_clip_loss")


def check_ppo_clip_loss_hidden(fn) -> None:
    check(fn, exercise="ppo_clip_loss", hidden=True)


def check_kl_penalty(fn) -> None:
    check(fn, exercise="kl_penalty")


def check_rl_claims(grpo_beat_control, hack_effect, best_leash, *, grpo_gain: float, control_gain: float,
                    hack_length: tuple[float, float], hack_accuracy: tuple[float, float],
                    sweep_accuracy: dict[float, float] | None) -> None:
    check(grpo_beat_control, hack_effect, best_leash, exercise="rl_claims", grpo_gain=grpo_gain,
          control_gain=control_gain, hack_length=hack_length, hack_accuracy=hack_accuracy,
          sweep_accuracy=sweep_accuracy)
