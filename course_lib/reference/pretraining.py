"""Reference answers for notebook C: the pre-training loss, deduplication, and Chinchilla's law.

Chinchilla's fitted loss (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
approach 3): a model of N parameters trained on D tokens reaches about

    L(N, D) = E + A / N**alpha + B / D**beta      nats per token,

E being the loss of a perfect model (the text's own entropy), the two other terms what a finite
model and finite data cost. Training costs about C = 6 N D floating-point operations (2 per
parameter per token forward, 4 backward), so for a fixed C the choice of N fixes D.
"""
from __future__ import annotations

import math
from collections import Counter

import torch
import torch.nn.functional as F

from course_lib.validation import is_number

# The two published fits of the same law. Epoch AI's replication (Besiroglu et al. 2024,
# "Chinchilla Scaling: A replication attempt") refitted approach 3 on the paper's own data points.
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
EPOCH_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
CHINCHILLA_CONSTANTS = {"Hoffmann et al. 2022": HOFFMANN_2022, "Epoch AI 2024 refit": EPOCH_2024}

# The default threshold of dedupe: documents sharing at least 80% of their word 5-grams count as
# near-duplicates (two copies of a page differing by a date, a name, a few edited lines).
NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_WORDS = 5


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, in nats, of the true next token over every position.

    logits: (..., vocab), the model's scores for the next token at each position;
    targets: (...), the token that really came next. -log softmax(logits)[target], averaged.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def normalize(text: str) -> str:
    """Lower case, runs of whitespace made one space: the form in which two copies count as the same."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """The set of runs of n consecutive words of the normalised text (the whole text if shorter)."""
    words = normalize(text).split()
    if len(words) <= n:
        return {tuple(words)}
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """|a and b| / |a or b|: 1 for identical sets, 0 for disjoint ones."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def dedupe(documents: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[str]:
    """The documents without their duplicates, in their original order, the first copy kept.

    A document is dropped if its normalised text equals an earlier kept one's (an exact duplicate),
    or if the Jaccard similarity of its word 5-gram sets with an earlier kept one is at least
    `threshold` (a near-duplicate).
    """
    if not is_number(threshold) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
    kept: list[str] = []
    kept_shingles: list[set] = []
    seen: set[str] = set()
    # Instead of comparing with every kept document, look only at those sharing a shingle: an
    # index from shingle to kept documents gives each candidate's overlap in one pass.
    index: dict[tuple, list[int]] = {}
    for document in documents:
        if not isinstance(document, str):
            raise ValueError(f"documents must be strings, got {type(document).__name__}")
        key = normalize(document)
        if key in seen:
            continue
        own = shingles(document)
        overlap = Counter(j for s in own for j in index.get(s, ()))
        if any(common / (len(own) + len(kept_shingles[j]) - common) >= threshold
               for j, common in overlap.items()):
            continue
        seen.add(key)
        for s in own:
            index.setdefault(s, []).append(len(kept))
        kept.append(document)
        kept_shingles.append(own)
    return kept


def _checked_constants(constants: dict) -> dict:
    missing = {"E", "A", "B", "alpha", "beta"} - set(constants)
    if missing:
        raise ValueError(f"constants need E, A, B, alpha and beta; missing {sorted(missing)}")
    return constants


def chinchilla_loss(N, D, constants: dict = HOFFMANN_2022):
    """L(N, D) = E + A / N**alpha + B / D**beta; N parameters, D training tokens (numbers or arrays)."""
    c = _checked_constants(constants)
    for name, value in (("N", N), ("D", D)):
        if is_number(value) and value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    return c["E"] + c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]


def compute_optimal(C, constants: dict = HOFFMANN_2022) -> tuple[float, float]:
    """(N, D) that minimise chinchilla_loss under the budget C = 6 N D.

    Put D = C / (6N) into L and set dL/dN = 0:  alpha A / N**alpha = beta B / D**beta, which gives
    N = G * (C/6)**(beta / (alpha + beta)) with G = (alpha A / (beta B))**(1 / (alpha + beta)).
    """
    if not is_number(C) or not math.isfinite(C) or C <= 0:
        raise ValueError(f"the compute budget C must be a number > 0 (FLOPs), got {C!r}")
    c = _checked_constants(constants)
    a, b = c["alpha"], c["beta"]
    g = (a * c["A"] / (b * c["B"])) ** (1 / (a + b))
    n = g * (C / 6) ** (b / (a + b))
    return n, C / (6 * n)

