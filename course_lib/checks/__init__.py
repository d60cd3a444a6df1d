"""The check names notebooks already handed out call (check_softmax_with_temperature(fn), ...),
and their fallback learner_or_reference: each runs the exercise's declaration in
course_lib.exercises, as check(fn) and use(fn) do in the current notebooks.
"""
from __future__ import annotations

from typing import Callable

from course_lib.exercises import Exercise
from course_lib.checks.bpe import (
    check_encode_decode,
    check_encode_decode_hidden,
    check_get_pair_counts,
    check_merge,
    check_train_bpe,
    check_train_bpe_hidden,
)
from course_lib.checks.compute import (
    check_fit_power_law,
    check_fit_power_law_hidden,
    check_forward_flops,
    check_forward_flops_hidden,
    check_matmul_flops,
)
from course_lib.checks.lifecycle import (
    check_causal_mask,
    check_cosine_similarity,
    check_nearest_neighbors,
    check_sample_next_token,
    check_sample_next_token_hidden,
    check_scaled_dot_product_attention,
    check_scaled_dot_product_attention_hidden,
)
from course_lib.checks.post_training import (
    check_bradley_terry_loss,
    check_bradley_terry_loss_hidden,
    check_dpo_loss,
    check_dpo_loss_hidden,
    check_post_training_claims,
    check_sequence_logprob,
    check_sft_loss,
    check_sft_loss_hidden,
)
from course_lib.checks.pretraining import (
    check_chinchilla_loss,
    check_compute_optimal,
    check_compute_optimal_hidden,
    check_dedupe,
    check_dedupe_hidden,
    check_next_token_loss,
    check_next_token_loss_hidden,
)
from course_lib.checks.rl import (
    check_epsilon_greedy,
    check_grpo_advantages,
    check_grpo_advantages_hidden,
    check_kl_penalty,
    check_ppo_clip_loss,
    check_ppo_clip_loss_hidden,
    check_rl_claims,
)
from course_lib.checks.onramp import (
    check_generate,
    check_generate_hidden,
    check_softmax_with_temperature,
    check_softmax_with_temperature_hidden,
    check_strawberry_prediction,
)

__all__ = [
    "check_epsilon_greedy",
    "check_grpo_advantages",
    "check_grpo_advantages_hidden",
    "check_kl_penalty",
    "check_ppo_clip_loss",
    "check_ppo_clip_loss_hidden",
    "check_rl_claims",
    "check_bradley_terry_loss",
    "check_bradley_terry_loss_hidden",
    "check_dpo_loss",
    "check_dpo_loss_hidden",
    "check_post_training_claims",
    "check_sequence_logprob",
    "check_sft_loss",
    "check_sft_loss_hidden",
    "check_causal_mask",
    "check_chinchilla_loss",
    "check_compute_optimal",
    "check_compute_optimal_hidden",
    "check_dedupe",
    "check_dedupe_hidden",
    "check_next_token_loss",
    "check_next_token_loss_hidden",
    "check_cosine_similarity",
    "check_encode_decode",
    "check_encode_decode_hidden",
    "check_fit_power_law",
    "check_fit_power_law_hidden",
    "check_forward_flops",
    "check_forward_flops_hidden",
    "check_get_pair_counts",
    "check_matmul_flops",
    "check_merge",
    "check_nearest_neighbors",
    "check_sample_next_token",
    "check_sample_next_token_hidden",
    "check_scaled_dot_product_attention",
    "check_scaled_dot_product_attention_hidden",
    "check_train_bpe",
    "check_train_bpe_hidden",
    "check_generate",
    "check_generate_hidden",
    "check_softmax_with_temperature",
    "check_softmax_with_temperature_hidden",
    "check_strawberry_prediction",
    "learner_or_reference",
]


def learner_or_reference(learner_fn: Callable, reference_fn: Callable, probe: Callable[[Callable], object]):
    """The learner's function if it is implemented, else the course's reference, saying so visibly
    (as course_lib.exercises.use does for the exercises declared there).

    `probe(fn)` calls fn once on a small valid input; NotImplementedError there means the exercise
    was skipped. Cells that plug an exercise into a real run use this so the notebook still teaches.
    """
    return Exercise(getattr(learner_fn, "__name__", "this function"), reference_fn, probe, {}, ()).use(learner_fn)
