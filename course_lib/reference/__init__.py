"""The course's answers to every exercise, under the names notebooks already handed out import.

Each is declared, with its checks, in course_lib.exercises; this package only re-exports them.
"""
from course_lib.exercises.compute import (
    fit_power_law,
    forward_flops,
    forward_flops_by_part,
    matmul_flops,
    parameter_count,
)
from course_lib.exercises.bpe import GPT2_PATTERN, decode, encode, get_pair_counts, merge, train_bpe
from course_lib.exercises.lifecycle import (
    causal_mask,
    cosine_similarity,
    nearest_neighbors,
    sample_next_token,
    sampling_probabilities,
    scaled_dot_product_attention,
)
from course_lib.exercises.onramp import generate, softmax_with_temperature
from course_lib.exercises.post_training import bradley_terry_loss, dpo_loss, sequence_logprob, sft_loss
from course_lib.exercises.rl import epsilon_greedy, grpo_advantages, kl_penalty, ppo_clip_loss
from course_lib.exercises.pretraining import (
    CHINCHILLA_CONSTANTS,
    EPOCH_2024,
    HOFFMANN_2022,
    chinchilla_loss,
    compute_optimal,
    dedupe,
    next_token_loss,
)

__all__ = [
    "epsilon_greedy", "grpo_advantages", "kl_penalty", "ppo_clip_loss",
    "bradley_terry_loss", "dpo_loss", "sequence_logprob", "sft_loss",
    "CHINCHILLA_CONSTANTS", "EPOCH_2024", "HOFFMANN_2022", "chinchilla_loss", "compute_optimal", "dedupe",
    "next_token_loss",
    "GPT2_PATTERN", "causal_mask", "cosine_similarity", "decode", "encode", "fit_power_law", "forward_flops",
    "forward_flops_by_part", "generate", "get_pair_counts", "matmul_flops", "merge", "parameter_count", "nearest_neighbors", "sample_next_token", "sampling_probabilities", "scaled_dot_product_attention",
    "softmax_with_temperature", "train_bpe",
]
