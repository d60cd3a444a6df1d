"""Notebook C's exercises (pre-training): next_token_loss, dedupe, chinchilla_loss and compute_optimal.

Chinchilla's fitted loss (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
approach 3): a model of N parameters trained on D tokens reaches about

    L(N, D) = E + A / N**alpha + B / D**beta      nats per token,

E being the loss of a perfect model (the text's own entropy), the two other terms what a finite
model and finite data cost. Training costs about C = 6 N D floating-point operations (2 per
parameter per token forward, 4 backward), so for a fixed C the choice of N fixes D.

When an answer is wrong, the cases compute what the usual mistakes would have given (a sum instead
of a mean, bits instead of nats, comparing with dropped documents, alpha and beta swapped, the 6 of
C = 6 N D forgotten, ...) and name the one that matches, so the hint points at the line to fix.
What makes a learner's Chinchilla law or optimum right is written once (loss_law_problem,
split_problem): the cases and ChinchillaExplorer, which plots a learner's functions, both ask it.
"""
from __future__ import annotations

import functools
import math
import operator
import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.exercises.engine import Exercise, Hint, Trial, matching
from course_lib.validation import as_number, is_number


# --------------------------------------------------------------------------------------------
# What the cases below share
# --------------------------------------------------------------------------------------------
# copied() hands the learner contiguous clones, but a slice such as logits[:, :-1] is not
# contiguous, and .view fails on it: a case about slices needs the caller's memory layout.
def keeping_strides(fn: Callable, *like: torch.Tensor) -> Callable:
    """fn, called with each tensor argument laid out in memory as the matching `like` tensor."""
    @functools.wraps(fn)
    def with_strides(*args):
        return fn(*(a if a.stride() == b.stride() else
                    torch.empty_strided(b.size(), b.stride(), dtype=b.dtype).copy_(a) for a, b in zip(args, like)))
    return with_strides


# --------------------------------------------------------------------------------------------
# next_token_loss
# --------------------------------------------------------------------------------------------
def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, in nats, of the true next token over every position.

    logits: (..., vocab), the model's scores for the next token at each position;
    targets: (...), the token that really came next. -log softmax(logits)[target], averaged.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def next_token_loss_value(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The loss as a Python float, computed in float64."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.detach().double().reshape(-1, vocab), targets.reshape(-1)).item()


def loss_close(a: float, b: float, tolerance: float = 1e-5) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tolerance * (1 + abs(b))


def loss_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> list[tuple[str, float]]:
    """What the usual mistakes give on these inputs, by key."""
    vocab = logits.shape[-1]
    log_p = logits.double().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)  # shape of targets
    p = log_p.exp()
    mean = -log_p.mean().item()
    mistakes = [
        ("summed", -log_p.sum().item()),
        ("bits", mean / math.log(2)),
        ("no_minus", -mean),
        ("minus_probability", -p.mean().item()),
        ("probability", p.mean().item()),
        ("one_minus_probability", (1 - p).mean().item()),
        ("vocabulary_mean", mean / vocab),
    ]
    if log_p.dim() >= 2:
        mistakes += [("batch_mean_only", -log_p.sum().item() / log_p.shape[0]),
                     ("time_mean_only", -log_p.mean(-1).sum().item())]
    if targets.shape[-1] > 1:
        for a, b in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            shifted = F.cross_entropy(logits[..., a, :].double().reshape(-1, vocab), targets[..., b].reshape(-1))
            mistakes.append(("shifted", shifted.item()))
    return mistakes


@dataclass(frozen=True)
class LossCase:
    """The learner's loss on these logits and targets against the answer in float64: a 0-dimensional
    tensor, finite, within 1e-5 (relative to 1 + the loss) and, with `gradient`, the right gradient.
    The learner's function sees the logits laid out as given: a slice stays a slice."""
    what: str
    logits: torch.Tensor
    targets: torch.Tensor
    expected: float | None = None  # the loss worked out by hand, as the description quotes it
    gradient: bool = False
    likely: str | None = None  # the mistake this case is built to catch, for an error or an unnamed value

    def __call__(self, t: Trial) -> None:
        expected = next_token_loss_value(self.logits, self.targets) if self.expected is None else self.expected
        shape_error = self.likely or "reshape"
        out = t.call(self.logits.detach().clone().requires_grad_(self.gradient), self.targets,
                     what=self.what, fn=keeping_strides(t.fn, self.logits, self.targets),
                     raised={RuntimeError: shape_error, IndexError: shape_error, Exception: self.likely or "raised"})
        if not torch.is_tensor(out):
            t.fail("not_a_tensor", f"{self.what}: the loss should be a torch tensor", "a 0-dimensional torch.Tensor",
                   f"{type(out).__name__}: {out!r}"[:120])
        if out.dim() != 0:
            t.fail(self.shape_mistake(out), f"{self.what}: the loss should be a single number, a 0-dimensional "
                   "tensor", "shape ()", f"shape {tuple(out.shape)}")
        got = out.detach().double().item()
        if not math.isfinite(got):
            t.fail("unstable" if self.logits.abs().max() > 80 else "empty_mean",
                   f"{self.what}: the loss is not a finite number", round(expected, 5), got)
        if not loss_close(got, expected):
            keys = matching(got, expected, loss_mistakes(self.logits, self.targets), loss_close) or [
                self.likely or "values"]
            t.fail(keys, self.what, round(expected, 6), round(got, 6))
        if self.gradient:
            t.gradients(out, (self.logits, self.targets), (0,), self.what)

    def shape_mistake(self, out: torch.Tensor) -> str:
        if tuple(out.shape) == tuple(self.targets.shape):
            return "per_position"
        if self.targets.dim() >= 2 and tuple(out.shape) == (self.targets.shape[0],):
            return "per_sequence"
        return "shape"


def random_logits(seed: int, *shape: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=generator) * scale
    targets = torch.randint(shape[-1], shape[:-1], generator=generator)
    return logits, targets


def random_loss_case(seed: int) -> LossCase:
    """Logits of a random shape and scale, both drawn from `seed`."""
    draw = random.Random(seed)
    shape = (draw.randint(1, 4), draw.randint(1, 12), draw.randint(2, 50))
    return LossCase(f"random logits of shape {shape} (seed {seed})",
                    *random_logits(seed, *shape, scale=draw.choice((0.5, 3.0, 20.0))))


# Huge logits: each position's loss is exact in float64 (0, log(1 + e^-1) + 1, and 2000), but exp(1000)
# is inf and softmax gives exactly 0 for the logit -1000.
HUGE_LOGITS = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0], [-1000.0, -1000.0, 1000.0]])
HUGE_TARGETS = torch.tensor([0, 2, 0])
_sliced_logits, _sliced_tokens = random_logits(5, 3, 9, 13)

NOT_A_TENSOR = ("return the loss as a torch tensor, not a Python number (no .item() or float()): "
                "training calls loss.backward() on it")
GRAPH_CUT = ("build the loss from `logits` with torch operations only: .item(), .detach(), .numpy(), "
             "torch.tensor(...) or torch.no_grad() cut the graph that loss.backward() follows")
UNSTABLE = ("exp() of a logit as large as 1000 overflows to inf (and log(softmax) gives log(0) = -inf for a "
            "token with a tiny probability): use torch.log_softmax(logits, dim=-1), which subtracts the largest "
            "logit first (the log-sum-exp trick)")
_AVERAGE = ("average over every position: -picked.mean(), "
            "the target's log-probability at each position averaged over all of them")

NEXT_TOKEN_LOSS = Exercise(
    name="next_token_loss",
    answer=next_token_loss,
    probe=lambda f: f(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)),
    mistakes={
        "not_a_tensor": NOT_A_TENSOR,
        "per_position": "that is the loss at each position: average them all into one number, .mean()",
        "per_sequence": "that is one loss per sequence: average over the batch as well, every position",
        "shape": "one number, the mean over every position: .mean() of the picked log-probabilities",
        "unstable": UNSTABLE,
        "empty_mean": "NaN on ordinary logits: a mean over no positions is NaN, and this function does NOT shift "
                      "(logits[..., i, :] already scores targets[..., i]; with one position a shifted slice is "
                      "empty)",
        "reshape": "flatten every leading dimension with .reshape (not .view, which fails on a slice such as "
                   "logits[:, :-1]), or gather along the last dimension: "
                   "log_probs.gather(-1, targets[..., None])",
        "summed": f"that is the sum over the positions: {_AVERAGE}",
        "bits": "that is in bits (log base 2): the loss is in nats, the natural log "
                "(torch.log, torch.log_softmax)",
        "no_minus": "the minus sign is missing: the loss is -log p(target), a positive number that falls as the "
                    "model gets better",
        "minus_probability": "that is (minus) the probability of the target, softmax without the log: the loss "
                             "is -log softmax(logits)[target], use torch.log_softmax",
        "probability": "that is the probability of the target, softmax without the log: the loss is "
                       "-log softmax(logits)[target], use torch.log_softmax",
        "one_minus_probability": "that is 1 - p(target), softmax without the log: the loss is "
                                 "-log softmax(logits)[target]",
        "vocabulary_mean": "that also averages over the vocabulary: pick the target's log-probability at each "
                           "position (.gather(-1, targets[..., None])), then average "
                           "over the positions only",
        "batch_mean_only": f"that averages over the batch only and sums over time: {_AVERAGE}, batch × time",
        "time_mean_only": f"that averages over time and sums over the batch: {_AVERAGE}, batch × time",
        "shifted": "you shifted the targets: this function does NOT shift, logits[..., i, :] already scores "
                   "targets[..., i] (the caller passes logits[:, :-1] and tokens[:, 1:])",
        "values": "the mean over every position of -log softmax(logits)[target]: "
                  "torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]), negated and averaged",
        "no_gradient": GRAPH_CUT,
        "gradient": GRAPH_CUT,
    },
    visible=(
        LossCase("uniform logits (all 0), shape (2, 3, 10): 6 positions over a vocabulary of 10, the loss is "
                 "log 10 ≈ 2.3026", torch.zeros(2, 3, 10), torch.tensor([[3, 0, 9], [5, 5, 1]]),
                 expected=math.log(10)),
        LossCase("a batch of 2 sequences of 5 positions over a vocabulary of 7, shape (2, 5, 7)",
                 *random_logits(0, 2, 5, 7)),
        LossCase("one position, shape (1, 3), with probabilities 1/8, 2/8, 5/8 (logits = their logs) and "
                 "target 2: the loss is -log(5/8) ≈ 0.4700", torch.tensor([[1 / 8, 2 / 8, 5 / 8]]).log(),
                 torch.tensor([2]), expected=-math.log(5 / 8)),
        LossCase("huge logits (±1000) at 3 positions", HUGE_LOGITS, HUGE_TARGETS, likely="unstable"),
        LossCase("a batch of shape (2, 5, 7) with logits.requires_grad = True", *random_logits(0, 2, 5, 7),
                 gradient=True),
    ),
    hidden=(
        LossCase("one sequence of 9 positions, shape (time, vocab) = (9, 5)", *random_logits(1, 9, 5)),
        LossCase("a vocabulary of 2, shape (3, 4, 2)", *random_logits(2, 3, 4, 2)),
        LossCase("four dimensions, shape (2, 3, 4, 11)", *random_logits(3, 2, 3, 4, 11)),
        LossCase("large logits (scale 50), shape (2, 16, 40)", *random_logits(4, 2, 16, 40, scale=50.0)),
        LossCase("the slices a caller passes, logits[:, :-1] and targets[:, 1:] (not contiguous)",
                 _sliced_logits[:, :-1], _sliced_tokens[:, 1:], likely="reshape"),
        *(random_loss_case(seed) for seed in range(6, 10)),
        LossCase("shape (4, 6, 9) with logits.requires_grad = True", *random_logits(10, 4, 6, 9), gradient=True),
    ),
    hints=(
        Hint("Three steps: turn each position's scores into log-probabilities with "
             "`torch.log_softmax(logits, dim=-1)` (natural log, so nats, and stable even for logits of 1000), "
             "pick the log-probability of the true token at each position, and average. Stay in torch all the "
             "way: no `.item()` or `float()`, because the trainer calls `.backward()` on your result.",
             fits=("not_a_tensor", "unstable", "bits", "probability", "minus_probability", "one_minus_probability",
                   "no_gradient", "gradient")),
        Hint("To pick one entry per position, use `gather` along the last dimension. It wants an index with as "
             "many dimensions as the log-probabilities, so give the targets a last dimension of size 1 and drop "
             "it afterwards: `log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)` has the shape of "
             "`targets`. Do not shift anything: position `i` of the logits already goes with position `i` of "
             "the targets.",
             fits=("vocabulary_mean", "shifted", "empty_mean", "reshape")),
        Hint("The loss is minus the mean of those picked log-probabilities: one `.mean()` over every position "
             "at once (batch and time together; not `.sum()`, not a mean per row), with a minus sign in front "
             "so that the loss is positive. The result is a single number, a 0-dimensional tensor.",
             fits=("summed", "no_minus", "per_position", "per_sequence", "batch_mean_only", "time_mean_only",
                   "shape", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# dedupe
# --------------------------------------------------------------------------------------------
# The default threshold of dedupe: documents sharing at least 80% of their word 5-grams count as
# near-duplicates (two copies of a page differing by a date, a name, a few edited lines).
NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_WORDS = 5


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


def dedupe_with(documents: list[str], threshold: float, variant: str) -> list[str]:
    """dedupe as it comes out with one usual mistake (a variant of DEDUPE_VARIANTS), or none ("")."""
    if variant == "keep the last copy":
        return list(reversed(dedupe_with(list(reversed(documents)), threshold, "")))
    if variant == "last copy's text":
        last = {normalize(d): d for d in documents}
        return [last[normalize(d)] for d in dedupe(documents, threshold)]
    limit = NEAR_DUPLICATE_THRESHOLD if variant == "fixed threshold" else threshold
    norm = (lambda text: text) if variant == "no normalisation" else normalize

    def units(text: str):
        words = norm(text).split()
        if variant == "words":
            return set(words)
        grams = [tuple(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)]
        if variant == "lists":
            return grams or [tuple(words)]
        if variant == "empty short documents":
            return set(grams)
        return set(grams) or {tuple(words)}

    def similarity(new, old) -> float:
        if variant == "lists":
            common = sum(s in old for s in new)
            union = len(new) + len(old) - common
        else:
            common, union = len(set(new) & set(old)), len(set(new) | set(old))
        below = {"smaller set": min(len(new), len(old)), "own set": len(new)}.get(variant, union)
        return 1.0 if below == 0 else common / below

    kept, pool, seen = [], [], set()
    for document in documents:
        key, own = norm(document), units(document)
        duplicate = key in seen or (variant != "exact only" and any(
            similarity(own, other) > limit if variant == "strictly above" else similarity(own, other) >= limit
            for other in pool))
        if variant == "compare with all" or not duplicate:
            seen.add(key)
            pool.append(own)
        if not duplicate:
            kept.append(key if variant == "normalised output" else document)
    return kept


# The usual mistakes, each as a variant of dedupe_with and the key of its hint (two variants can share one).
DEDUPE_VARIANTS = [
    ("compare with all", "compared_with_dropped"), ("keep the last copy", "kept_last_copy"),
    ("last copy's text", "kept_last_copy"), ("no normalisation", "not_normalised"), ("smaller set", "not_jaccard"),
    ("own set", "not_jaccard"), ("words", "single_words"), ("lists", "not_sets"), ("strictly above", "strictly_above"),
    ("fixed threshold", "fixed_threshold"), ("exact only", "exact_only"), ("normalised output", "normalised_output"),
    ("empty short documents", "short_documents"),
]


def labels(result: list, documents: list[str], names: list[str]) -> list[str]:
    """Each returned document by its name in the case (the first unused input equal to it)."""
    used, named = set(), []
    for item in result:
        index = next((i for i, d in enumerate(documents) if i not in used and d == item), None)
        if index is None:
            text = repr(item)
            named.append(f"{text[:40]}...' (not one of the documents given)" if len(text) > 44 else
                         f"{text} (not one of the documents given)")
        else:
            used.add(index)
            named.append(names[index])
    return named


@dataclass(frozen=True)
class DedupeCase:
    """The learner's dedupe on these named documents against the answer; a wrong result is matched
    against what the usual mistakes give, leaving out those that earlier cases ruled out."""
    what: str
    named: list[tuple[str, str]]
    threshold: float | None = None  # None: the default
    likely: str | None = None  # the mistake this case is built to catch, for an error or an unnamed result

    def compare(self, t: Trial, ruled_out: set[str]) -> None:
        names, documents = [name for name, _ in self.named], [text for _, text in self.named]
        args = (documents,) if self.threshold is None else (documents, self.threshold)
        out = t.call(*args, what=self.what, raised=self.likely or "raised")
        if not isinstance(out, list):
            t.fail("not_a_list", f"{self.what}: the result should be a list of documents", "list", type(out).__name__)
        limit = NEAR_DUPLICATE_THRESHOLD if self.threshold is None else self.threshold
        expected = dedupe(documents, limit)
        candidates = [(variant, key, dedupe_with(documents, limit, variant))
                      for variant, key in DEDUPE_VARIANTS if variant not in ruled_out]
        if out == expected:
            ruled_out.update(variant for variant, _, result in candidates if result != expected)
            return
        in_another_order = all(isinstance(d, str) for d in out) and sorted(out) == sorted(expected)
        keys = (matching(out, expected, [(key, result) for _, key, result in candidates], operator.eq)
                or ["order" if in_another_order else self.likely or "values"])
        t.fail(keys, self.what, labels(expected, documents, names), labels(out, documents, names))


def in_turn(*cases: DedupeCase) -> Callable[[Trial], None]:
    """The cases one after the other: a learner's result that is right rules out the mistakes that
    would have got it wrong, so that a later hint names only the others."""
    def compare_in_turn(t: Trial) -> None:
        ruled_out: set[str] = set()
        for case in cases:
            case.compare(t, ruled_out)
    return compare_in_turn


def refuses_bad_thresholds(*thresholds) -> Callable[[Trial], None]:
    def refuses_thresholds(t: Trial) -> None:
        for threshold in thresholds:
            t.refuses(f"dedupe(documents, threshold={threshold!r})", [RIVER, CPU], threshold)
    return refuses_thresholds


RIVER = ("The river town woke slowly each morning as fishermen pushed their boats into the grey water and the "
         "baker opened his shutters to let the smell of fresh bread drift across the square where children "
         "chased pigeons between the market stalls while their parents argued about the price of apples and the "
         "weather that had been far too dry for most of the long summer this year")
CPU = ("Modern processors execute several instructions at once by splitting each one into small stages that "
       "overlap in a pipeline so that while one instruction is being decoded another is fetched from memory and "
       "a third is already writing its result back to a register which is why branch mispredictions are so "
       "expensive because the whole pipeline must be flushed and refilled")
BREAD = ("To bake a simple loaf you need flour water salt and yeast mixed into a rough dough that rests for an "
         "hour before being folded several times then shaped into a ball and left to rise again until it has "
         "nearly doubled in size after which it goes into a very hot oven for about forty minutes")


def edited(text: str, **replacements: str) -> str:
    return " ".join(replacements.get(word, word) for word in text.split())


# Jaccard similarities of word 5-gram sets with RIVER (67 words, 63 shingles): one word changed
# 58/68 ≈ 0.853, two words changed far apart 53/73 ≈ 0.726, three 48/78 ≈ 0.615, its first 30 words
# 26/63 ≈ 0.413, its words reversed 0.
RIVER_1 = edited(RIVER, baker="butcher")
RIVER_2 = edited(RIVER_1, apples="pears")  # 0.853 with RIVER_1, 0.726 with RIVER
RIVER_3 = edited(RIVER, fishermen="sailors", pigeons="seagulls", apples="pears")
RIVER_MESSY = "  " + RIVER.upper().replace(" THE ", "  THE\n\t", 3) + "\n"
RIVER_START = " ".join(RIVER.split()[:30])
RIVER_REVERSED = " ".join(reversed(RIVER.split()))
# 7 words, 3 shingles each, 2 shared: a Jaccard similarity of exactly 2/4 = 0.5.
NOTE = "please remember to water the plants today"
NOTE_2 = "please remember to water the plants tomorrow"


def random_collection(seed: int, count: int = 40) -> list[tuple[str, str]]:
    """`count` documents of random words with exact copies, re-cased copies, near-duplicates (1 word
    changed) and further-off edits (4 to 8 words changed) mixed in, each named by how it was made."""
    rng = random.Random(seed)
    vocabulary = [f"{consonant}{vowel}{end}" for consonant in "bdfgklmnprstvz" for vowel in "aeiou"
                  for end in ("", "n", "st")]
    originals = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(40, 90))) for _ in range(count // 2)]
    named = [(f"original {i}", text) for i, text in enumerate(originals)]
    while len(named) < count:
        source_name, source = rng.choice(named)
        words = source.split()
        kind = rng.choice(("exact copy", "re-cased copy", "1 word changed", "2 words changed", "some words changed"))
        if kind == "exact copy":
            text = source
        elif kind == "re-cased copy":
            text = "  ".join(word.upper() if rng.random() < 0.3 else word for word in words)
        else:
            changes = {"1 word changed": 1, "2 words changed": 2}.get(kind, rng.randint(4, 8))
            for position in rng.sample(range(len(words)), changes):
                words[position] = rng.choice(vocabulary)
            text = " ".join(words)
        named.append((f"{source_name}, {kind}", text))
    rng.shuffle(named)
    return [(f"#{i} ({name})", text) for i, (name, text) in enumerate(named)]


_river, _cpu, _bread = ("river town", RIVER), ("processors", CPU), ("bread", BREAD)
_one_edit = ("river town with 1 word changed (similarity 0.853)", RIVER_1)
_three_edits = ("river town with 3 words changed (similarity 0.615)", RIVER_3)
_collection = random_collection(2024)

DEDUPE = Exercise(
    name="dedupe",
    answer=dedupe,
    probe=lambda f: f(["a b c", "A  b c"]),
    mistakes={
        "changed_input": "build a new list of kept documents; do not remove items from the list you are looping "
                         "over",
        "not_a_list": "return a list (a set or a dict's keys lose the original order)",
        "order": "keep the documents in their original order",
        "compared_with_dropped": "compare with kept documents only: a document dropped as a near-duplicate must "
                                 "not knock out later ones (keep a list of the kept documents' shingle sets and "
                                 "compare with those)",
        "kept_last_copy": "keep the first copy, where it stands, and drop the later ones",
        "not_normalised": "normalise before comparing: lower-case and collapse runs of whitespace, "
                          "' '.join(text.lower().split()), for the exact check and for the shingles",
        "not_jaccard": "Jaccard is intersection over union of the SETS of 5-word shingles: len(a & b) / len(a | b), "
                       "not over the smaller set",
        "single_words": "shingles are runs of 5 consecutive words (word 5-grams), not single words: Jaccard is "
                        "intersection over union of the SETS of 5-word shingles",
        "not_sets": "Jaccard is intersection over union of the SETS of 5-word shingles: a shingle repeated in a "
                    "document counts once, set(...)",
        "strictly_above": "a near-duplicate has a similarity of AT LEAST the threshold: >= threshold, not >",
        "fixed_threshold": "use the `threshold` argument instead of a fixed 0.8",
        "exact_only": "drop near-duplicates too: a document whose Jaccard similarity (of 5-word shingle sets) with "
                      "an earlier kept document is >= threshold",
        "normalised_output": "return the documents as they were given; normalise only to compare them",
        "short_documents": "a document shorter than 5 words has no run of 5 words: its one shingle is the whole "
                           "tuple of its words, so two different short documents share nothing",
        "threshold_one": "threshold=1 is allowed: 0 < threshold <= 1",
        "values": "keep a document unless its normalised text equals an earlier kept one's, or the Jaccard "
                  "similarity of their 5-word shingle sets is >= threshold",
        "no_refusal": "check that threshold is a number with 0 < threshold <= 1 and raise ValueError with a message",
    },
    visible=(
        in_turn(
            DedupeCase("an empty list", []),
            DedupeCase("three different documents", [_river, _cpu, _bread]),
            DedupeCase("an exact copy", [_river, _cpu, ("river town again", RIVER), _bread]),
            DedupeCase("a copy in capitals with extra spaces and line breaks: the same text once normalised",
                       [_cpu, ("RIVER TOWN in capitals with extra spaces", RIVER_MESSY), _bread, _river]),
            DedupeCase("short documents (fewer than 5 words: each is one shingle, its whole word tuple)",
                       [("'Good morning'", "Good morning"), ("'good   MORNING'", "good   MORNING"),
                        ("'Good evening'", "Good evening"), ("'a short note'", "a short note"),
                        ("'another short note'", "another short note")], likely="short_documents"),
            DedupeCase("one word changed in a 67-word document: Jaccard 58/68 ≈ 0.853 >= 0.8, a near-duplicate",
                       [_river, _cpu, _one_edit]),
            DedupeCase("three words changed: Jaccard 48/78 ≈ 0.615 < 0.8, a different document",
                       [_river, _three_edits]),
            DedupeCase("the first 30 words of a document: all its shingles are in the other, but Jaccard is "
                       "26/63 ≈ 0.413 < 0.8", [_river, ("the first 30 words of river town", RIVER_START)]),
            DedupeCase("the same words in reverse order: Jaccard of the 5-word shingles is 0",
                       [_river, ("river town's words reversed", RIVER_REVERSED)]),
            DedupeCase("a chain: B is a near-duplicate of A (0.853) and C of B (0.853), but C is not one of A "
                       "(0.726); B is dropped, so C stays",
                       [("A: river town", RIVER), ("B: A with 1 word changed", RIVER_1),
                        ("C: B with 1 more word changed", RIVER_2)]),
            DedupeCase("threshold=0.95: the one-word change (0.853) is kept", [_river, _one_edit], 0.95),
            DedupeCase("threshold=0.5: the three-word change (0.615) is dropped", [_river, _three_edits], 0.5),
            DedupeCase("threshold=0.5 and a similarity of exactly 2/4 = 0.5",
                       [("'...plants today'", NOTE), ("'...plants tomorrow'", NOTE_2)], 0.5),
        ),
        refuses_bad_thresholds(0, 1.5, "high"),
    ),
    hidden=(
        in_turn(
            DedupeCase("40 random documents with copies and near-duplicates mixed in (seed 2024), default "
                       "threshold", _collection),
            *(DedupeCase(f"the same 40 documents at threshold={threshold}", _collection, threshold,
                         likely="threshold_one" if threshold == 1.0 else None) for threshold in (0.6, 0.9, 1.0)),
            DedupeCase("60 other random documents (seed 7) at threshold=0.7", random_collection(7, 60), 0.7),
            DedupeCase("repeated words: both documents have the single shingle ('la',) * 5",
                       [("'la' 10 times", " ".join(["la"] * 10)), ("'La' 7 times", " ".join(["La"] * 7))]),
            DedupeCase("empty and blank documents (both normalise to '')",
                       [("''", ""), ("'word'", "word"), ("'   '", "   "), ("'Word'", "Word")],
                       likely="short_documents"),
        ),
        refuses_bad_thresholds(-0.2, float("nan")),
    ),
    hints=(
        Hint("Walk through `documents` once, in order, building a new list `kept` (leave the input list "
             "alone), and a `set` of the normalised texts kept so far, `\" \".join(text.lower().split())`. A "
             "document whose normalised text is already in that set is an exact duplicate: skip it; otherwise "
             "append the document as it was given. Before the loop, `raise ValueError` unless `threshold` is a "
             "number with `0 < threshold <= 1`.",
             fits=("changed_input", "not_a_list", "order", "kept_last_copy", "not_normalised", "normalised_output",
                   "no_refusal", "threshold_one")),
        Hint("Shingles: split the normalised text into words and take every run of 5 words in a row as a tuple, "
             "`tuple(words[i:i + 5])`, collected in a `set` (a repeated shingle counts once). A text of 5 words "
             "or fewer is one shingle, `tuple(words)`. The Jaccard similarity of two such sets is "
             "`len(a & b) / len(a | b)`.",
             fits=("single_words", "not_sets", "not_jaccard", "short_documents")),
        Hint("Keep a second list with the shingle set of each document you KEEP, and append to it only when "
             "you keep one. Drop a new document if `len(own & other) / len(own | other) >= threshold` for any "
             "`other` in that list (at least the `threshold` passed in): a document dropped as a near-duplicate "
             "never joins the list, so it cannot knock out later ones.",
             fits=("compared_with_dropped", "strictly_above", "fixed_threshold", "exact_only", "values")),
    ),
)


# --------------------------------------------------------------------------------------------
# chinchilla_loss
# --------------------------------------------------------------------------------------------
# The two published fits of the same law. Epoch AI's replication (Besiroglu et al. 2024,
# "Chinchilla Scaling: A replication attempt") refitted approach 3 on the paper's own data points.
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
EPOCH_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
CHINCHILLA_CONSTANTS = {"Hoffmann et al. 2022": HOFFMANN_2022, "Epoch AI 2024 refit": EPOCH_2024}

# Chinchilla itself (Hoffmann et al. 2022): 70 billion parameters trained on 1.4 trillion tokens.
# Its fitted law puts that model at about 1.937 nats per token (1.9366 with HOFFMANN_2022).
CHINCHILLA_N, CHINCHILLA_D = 70e9, 1.4e12
# The budget the paper plans with (Gopher's): 5.76e23 FLOPs. The rounded published constants put
# its optimum at N ≈ 32.2e9, D ≈ 2.98e12; Epoch AI's refit at N ≈ 72.2e9, D ≈ 1.33e12.
CHINCHILLA_BUDGET = 5.76e23


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


def loss_law_problem(got, N, D, constants: dict, rtol: float) -> tuple[str, str]:
    """What is wrong with `got` as chinchilla_loss(N, D, constants), values within `rtol` of the law:
    ("", "") if nothing, else a key ("not_numbers", "shape", "not_finite", "values") and the problem in
    words. ChinchillaExplorer shows the words; the cases name the mistake."""
    expected = np.asarray(chinchilla_loss(N, D, constants), dtype=float)
    try:
        values = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=float)
    except (TypeError, ValueError):
        return "not_numbers", f"returned a {type(got).__name__}, not numbers"
    if values.shape != expected.shape:
        return "shape", f"returned shape {values.shape} for N and D of shape {expected.shape}"
    n, d = (np.broadcast_to(np.asarray(x, dtype=float), expected.shape).ravel() for x in (N, D))
    values, expected = values.ravel(), expected.ravel()
    if not np.isfinite(values).all():
        i = int(np.argmin(np.isfinite(values)))
        return "not_finite", f"returned {values[i]} at N = {n[i]:.3g}, D = {d[i]:.3g}"
    wrong = np.abs(values - expected) > rtol * np.abs(expected)
    if wrong.any():
        i = int(np.argmax(wrong))
        return "values", (f"gives L(N = {n[i]:.3g}, D = {d[i]:.3g}) = {values[i]:.4g}, but the law gives "
                          f"{expected[i]:.4g} (check each term's exponent and sign)")
    return "", ""


def chinchilla_mistakes(N, D, c: dict) -> list[tuple[str, object]]:
    """What the usual mistakes give on these inputs, by key."""
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    mistakes = [
        ("swapped_exponents", E + A / N**beta + B / D**alpha),
        ("multiplied", E + A * N**alpha + B * D**beta),
        ("no_E", A / N**alpha + B / D**beta),
        ("swapped_N_D", E + A / D**alpha + B / N**beta),
        ("swapped_A_B", E + B / N**alpha + A / D**beta),
        ("power_of_ratio", E + (A / N)**alpha + (B / D)**beta),
    ]
    if c is not HOFFMANN_2022:
        mistakes.append(("fixed_constants", chinchilla_loss(N, D, HOFFMANN_2022)))
    return mistakes


def same_values(a, b, rel: float) -> bool:
    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rel, atol=0))


def shown(values) -> str:
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return repr(values)[:120]
    return f"{float(values):.10g}" if values.ndim == 0 else "[" + ", ".join(f"{v:.10g}" for v in values.flat) + "]"


# The law's value must match to this relative tolerance: the same arithmetic in another order.
LOSS_LAW_RTOL = 1e-9


@dataclass(frozen=True)
class LossLawCase:
    """The learner's chinchilla_loss(N, D, constants) against the law: one number for numbers, one
    loss per element for numpy arrays; a wrong value is matched against the usual mistakes."""
    what: str
    N: float | np.ndarray
    D: float | np.ndarray
    constants: dict
    label: str

    def __call__(self, t: Trial) -> None:
        what, N, D = f"{self.what}, {self.label}", self.N, self.D
        arrays = isinstance(N, np.ndarray) or isinstance(D, np.ndarray)
        errors = {KeyError: "keys", **({TypeError: "arrays", ValueError: "arrays"} if arrays else {})}
        # Copies of the arrays: the engine hands non-container objects such as arrays over as they are.
        out = t.call(N.copy() if isinstance(N, np.ndarray) else N, D.copy() if isinstance(D, np.ndarray) else D,
                     dict(self.constants), what=what, raised={**errors, Exception: "arrays" if arrays else "raised"})
        expected = chinchilla_loss(N, D, self.constants)
        if arrays and np.shape(out) != np.shape(expected):
            t.fail("arrays", f"{what}: one loss per element", f"an array of shape {np.shape(expected)}",
                   f"{type(out).__name__} of shape {np.shape(out)}")
        if not arrays and not (is_number(out) or (isinstance(out, np.ndarray) and out.ndim == 0)):
            t.fail("not_a_number", f"{what}: the loss should be a number", "a float",
                   f"{type(out).__name__}: {out!r}"[:120])
        if loss_law_problem(out, N, D, self.constants, LOSS_LAW_RTOL)[0]:
            keys = matching(out, expected, chinchilla_mistakes(N, D, self.constants),
                            lambda a, b: same_values(a, b, 1e-6)) or ["values"]
            t.fail(keys, what, shown(expected), shown(out))


def refuses_empty_models(t: Trial) -> None:
    for N, D in ((0, 1e9), (-1e8, 1e9), (1e8, 0), (1e8, -5.0)):
        t.refuses(f"chinchilla_loss(N={N!r}, D={D!r})", N, D, dict(HOFFMANN_2022))


_CONSTANT_SETS = (("Hoffmann et al. 2022", HOFFMANN_2022), ("Epoch AI 2024", EPOCH_2024))
_FORMULA = "L = E + A / N**alpha + B / D**beta"
_KEYS = ("the constants dict has the keys 'E', 'A', 'B', 'alpha' and 'beta' (case matters): "
         "constants['alpha'], constants['beta'], ...")
_FIXED_CONSTANTS = "use the `constants` passed in, not a fixed set such as HOFFMANN_2022"

CHINCHILLA_LOSS = Exercise(
    name="chinchilla_loss",
    answer=chinchilla_loss,
    probe=lambda f: f(1e8, 2e9, dict(HOFFMANN_2022)),
    mistakes={
        "raised": _FORMULA,
        "keys": _KEYS,
        "arrays": "use ** and / (not math.pow or math functions), which work elementwise on numpy arrays; and a "
                  "check such as `if N <= 0` is ambiguous on an array: check plain numbers only, or use "
                  "np.any(np.asarray(N) <= 0)",
        "not_a_number": _FORMULA,
        "swapped_exponents": f"alpha and beta are swapped: alpha goes with N, beta with D, {_FORMULA}",
        "multiplied": f"divide, do not multiply: {_FORMULA} (a bigger model and more data give a LOWER loss)",
        "no_E": f"forgot E, the loss even a perfect model keeps: {_FORMULA}",
        "swapped_N_D": "N and D are swapped: A / N**alpha is the model-size term, B / D**beta the data term",
        "swapped_A_B": f"A and B are swapped: {_FORMULA}",
        "power_of_ratio": f"(A / N)**alpha is not A / N**alpha: {_FORMULA}",
        "fixed_constants": _FIXED_CONSTANTS,
        "values": _FORMULA,
        "no_refusal": "a model has N > 0 parameters and sees D > 0 tokens: raise ValueError with a message "
                      "otherwise",
    },
    visible=(
        *(case for label, constants in _CONSTANT_SETS for case in (
            LossLawCase("Chinchilla, N = 70e9 parameters and D = 1.4e12 tokens (≈ 1.937 nats per token with "
                        "Hoffmann's constants)", CHINCHILLA_N, CHINCHILLA_D, constants, label),
            LossLawCase("a 100M-parameter model on 2e9 tokens", 1e8, 2e9, constants, label),
            LossLawCase("SmolLM2-135M, N = 134_515_008 (an int) and D = 2e12", 134_515_008, 2e12, constants, label),
        )),
        LossLawCase("N a numpy array [1e8, 1e9, 1e10, 1e11], D = 1e11", np.array([1e8, 1e9, 1e10, 1e11]), 1e11,
                    EPOCH_2024, "Epoch AI 2024"),
        LossLawCase("N and D numpy arrays of the same shape (2, 2)", np.array([[1e7, 1e8], [1e9, 1e10]]),
                    np.array([[1e9, 1e10], [1e11, 1e12]]), HOFFMANN_2022, "Hoffmann et al. 2022"),
        refuses_empty_models,
    ),
    passed=lambda t: "✅ chinchilla_loss passes the tests.",
    hints=(
        Hint("Read the five constants from the dict you are given, by their exact keys: `constants[\"E\"]`, "
             "`constants[\"A\"]`, `constants[\"B\"]`, `constants[\"alpha\"]`, `constants[\"beta\"]`. Then the "
             "function is the law written as one line of Python arithmetic.",
             fits=("keys", "fixed_constants", "raised", "not_a_number")),
        Hint("Each term divides a constant by a power: `A / N ** alpha` is the model-size term (A and alpha go "
             "with N), `B / D ** beta` the data term (B and beta go with D), and `E` is added on top. "
             "`A / N ** alpha` is not `(A / N) ** alpha`: `**` binds tighter than `/`, which is what you want "
             "here.",
             fits=("swapped_exponents", "multiplied", "no_E", "swapped_N_D", "swapped_A_B", "power_of_ratio",
                   "values")),
        Hint("For numpy arrays, use only `+`, `/` and `**` (not `math.pow` or other `math` functions): they work "
             "element by element. Refuse a size <= 0 only when `N` or `D` is a plain number, e.g. "
             "`if np.isscalar(N) and N <= 0: raise ValueError(...)`: on an array, `N <= 0` is itself an array, "
             "and `if` cannot decide on it.",
             fits=("arrays", "no_refusal")),
    ),
)


# --------------------------------------------------------------------------------------------
# compute_optimal
# --------------------------------------------------------------------------------------------
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


def human(x: float) -> str:
    """A count in short form: 63.2B, 1.4T, 850M, 12.5K; beyond trillions stays in T (2,500T)."""
    for unit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if x >= unit:
            value = x / unit
            return f"{value:,.0f}{suffix}" if value >= 100 else f"{value:.3g}{suffix}"
    return f"{x:.3g}"


def split_problem(result, C: float, constants: dict, budget_rtol: float, rtol: float) -> tuple[str, str]:
    """What is wrong with `result` as the compute-optimal (N, D) for the budget C: ("", "") if nothing,
    else a key ("not_a_pair", "not_numbers", "off_budget", "not_optimal") and the problem in words.
    Right is a pair of positive numbers with 6 N D within `budget_rtol` of C, N and D within `rtol` of
    the law's optimum. ChinchillaExplorer shows the words; the cases name the mistake."""
    try:
        n, d = result
    except (TypeError, ValueError):
        return "not_a_pair", f"returned {repr(result):.80}, not a pair (N, D)"
    values = {}
    for what, value in (("N", n), ("D", d)):
        values[what] = as_number(value)
        if values[what] is None:
            return "not_numbers", f"returned a {type(value).__name__} as {what}, not a number"
        if not math.isfinite(values[what]) or values[what] <= 0:
            return "not_numbers", f"returned {what} = {values[what]}: it must be a positive number"
    n, d = values["N"], values["D"]
    if not math.isclose(6 * n * d, C, rel_tol=budget_rtol):
        return "off_budget", (f"returned N = {n:.3g}, D = {d:.3g}, so 6·N·D = {6 * n * d:.3g} FLOPs, "
                              f"not the budget C = {C:.3g}")
    n_best, d_best = compute_optimal(C, constants)
    if not (math.isclose(n, n_best, rel_tol=rtol) and math.isclose(d, d_best, rel_tol=rtol)):
        excess = chinchilla_loss(n, d, constants) - chinchilla_loss(n_best, d_best, constants)
        return "not_optimal", (f"returned N = {human(n)}, D = {human(d)}, which is not the minimum: the loss is "
                               f"{excess:.3g} nats lower at N = {human(n_best)}, D = {human(d_best)}")
    return "", ""


def optimal_mistakes(C, c: dict) -> list[tuple[str, tuple[float, float]]]:
    """What the usual mistakes give for this budget, by key."""
    a, b, A, B = c["alpha"], c["beta"], c["A"], c["B"]
    g = (a * A / (b * B)) ** (1 / (a + b))
    x = b / (a + b)
    n, six_n = g * (C / 6) ** x, g * C ** x

    def spending_the_budget(size):
        return size, C / (6 * size)

    mistakes = [
        ("swapped", (C / (6 * n), n)),
        ("C_not_C_over_6", spending_the_budget(six_n)),
        ("no_6", (six_n, C / six_n)),
        ("no_6_in_D", (n, C / n)),
        ("alpha_exponent", spending_the_budget(g * (C / 6) ** (a / (a + b)))),
        ("G_upside_down", spending_the_budget((b * B / (a * A)) ** (1 / (a + b)) * (C / 6) ** x)),
        ("no_G", spending_the_budget((C / 6) ** x)),
        ("G_not_powered", spending_the_budget(a * A / (b * B) * (C / 6) ** x)),
        ("rule_of_thumb", spending_the_budget(math.sqrt(C / 120))),
    ]
    if c is not HOFFMANN_2022:
        mistakes.append(("fixed_constants", compute_optimal(C, HOFFMANN_2022)))
    return mistakes


def pair_close(a, b, rel: float = 1e-3) -> bool:
    return all(math.isclose(float(x), float(y), rel_tol=rel) for x, y in zip(a, b))


def shown_pair(pair) -> str:
    return "(N = {:.4g}, D = {:.4g})".format(*(float(v) for v in pair))


# 6 N D must be the budget to this relative tolerance, and (N, D) the law's optimum to the second.
SPLIT_BUDGET_RTOL, SPLIT_RTOL = 1e-6, 1e-3


@dataclass(frozen=True)
class OptimalCase:
    """The learner's compute_optimal(C, constants): a tuple or list of two plain positive numbers
    that spend the budget and sit at the law's optimum; a wrong pair is matched against the usual
    mistakes, or told which way its model size is off."""
    C: float
    constants: dict
    label: str
    note: str = ""  # what the description adds after the budget

    def __call__(self, t: Trial) -> None:
        C, constants = self.C, self.constants
        what = f"compute_optimal(C = {C:.3g}){self.note}, {self.label}"
        out = t.call(C, dict(constants), what=what, raised={KeyError: "keys"})
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            t.fail("not_a_pair", f"{what}: the result should be a pair", "(N, D)", repr(out)[:120])
        key, _ = split_problem(out, C, constants, SPLIT_BUDGET_RTOL, SPLIT_RTOL)
        if key == "not_numbers" or not all(is_number(v) for v in out):
            t.fail("not_numbers", f"{what}: N and D should be positive numbers", "(float, float)",
                   f"({type(out[0]).__name__}, {type(out[1]).__name__}): {out!r}"[:160])
        if not key:
            return
        expected = compute_optimal(C, constants)
        keys = matching(out, expected, optimal_mistakes(C, constants), pair_close)
        if key == "off_budget":
            t.fail(keys or ["off_budget"], f"{what}: the model and data must spend the budget exactly, "
                   "6 N D = C", f"6 N D = {C:.6g}", f"6 N D = {6 * out[0] * out[1]:.6g} with {shown_pair(out)}")
        keys = keys or [self.which_way(out)]
        t.fail(keys, what, shown_pair(expected), shown_pair(out))

    def which_way(self, out) -> str:
        """Whether a 10% smaller or larger model (on correspondingly more or fewer tokens) does better."""
        loss = chinchilla_loss(out[0], out[1], self.constants)
        if chinchilla_loss(out[0] / 1.1, out[1] * 1.1, self.constants) < loss:
            return "too_large"
        if chinchilla_loss(out[0] * 1.1, out[1] / 1.1, self.constants) < loss:
            return "too_small"
        return "not_optimal"


def refuses_empty_budgets(*budgets, constants: dict = HOFFMANN_2022) -> Callable[[Trial], None]:
    def refuses_budgets(t: Trial) -> None:
        for C in budgets:
            t.refuses(f"compute_optimal(C={C!r})", C, dict(constants))
    return refuses_budgets


_OPTIMUM = ("put D = C / (6 N) into the loss and set its derivative to 0: alpha A / N**alpha = beta B / D**beta, "
            "so N = G (C/6)**(beta/(alpha+beta)) with G = (alpha A / (beta B))**(1/(alpha+beta)), and D = C / (6 N)")

COMPUTE_OPTIMAL = Exercise(
    name="compute_optimal",
    answer=compute_optimal,
    probe=lambda f: f(1e21, dict(HOFFMANN_2022)),
    mistakes={
        "raised": _OPTIMUM,
        "keys": _KEYS,
        "not_a_pair": "return n, d",
        "not_numbers": "return plain numbers (float(...)), not tensors or arrays",
        "off_budget": "choose N, then D = C / (6 N)",
        "swapped": "returned (D, N): return (N, D), the parameters first, then the tokens",
        "C_not_C_over_6": "used C instead of C/6: the budget buys C / 6 parameter-tokens, "
                          "N = G (C/6)**(beta/(alpha+beta))",
        "no_6": "forgot the 6: C = 6 N D, so N = G (C/6)**(beta/(alpha+beta)) and D = C / (6 N)",
        "no_6_in_D": "forgot the 6 in D: C = 6 N D, so D = C / (6 N)",
        "alpha_exponent": "the exponent of N is beta/(alpha+beta) (alpha/(alpha+beta) is D's): "
                          "N = G (C/6)**(beta/(alpha+beta))",
        "G_upside_down": "G is upside down: G = (alpha A / (beta B))**(1/(alpha+beta))",
        "no_G": "forgot the factor G = (alpha A / (beta B))**(1/(alpha+beta))",
        "G_not_powered": "G = (alpha A / (beta B)) to the power 1/(alpha+beta)",
        "rule_of_thumb": "that is the rule of thumb of 20 tokens per parameter: minimise this law with the "
                         "constants given instead",
        "fixed_constants": _FIXED_CONSTANTS,
        "too_large": f"a 10% smaller model on 10% more tokens reaches a lower loss: your N is too large. {_OPTIMUM}",
        "too_small": f"a 10% larger model on 10% fewer tokens reaches a lower loss: your N is too small. {_OPTIMUM}",
        "not_optimal": _OPTIMUM,
        "no_refusal": "a compute budget is C > 0 FLOPs: raise ValueError with a message otherwise",
    },
    visible=(
        OptimalCase(CHINCHILLA_BUDGET, HOFFMANN_2022, "Hoffmann et al. 2022",
                    " (Chinchilla's budget: the law says N ≈ 32.2e9, D ≈ 2.98e12)"),
        OptimalCase(CHINCHILLA_BUDGET, EPOCH_2024, "Epoch AI 2024",
                    " (Chinchilla's budget: the refit says N ≈ 72.2e9, D ≈ 1.33e12)"),
        OptimalCase(1e21, HOFFMANN_2022, "Hoffmann et al. 2022"),
        refuses_empty_budgets(0, -1e20),
    ),
    hidden=(
        *(case for label, constants in _CONSTANT_SETS for case in (
            *(OptimalCase(10.0**exponent, constants, label) for exponent in range(18, 27, 2)),
            OptimalCase(6 * 10**22, constants, label, " given as a Python int"),
        )),
        refuses_empty_budgets(-5.0, constants=EPOCH_2024),
    ),
    hints=(
        Hint("The notebook gives the formula; the work is writing it in Python. Read `alpha`, `beta`, `A` and "
             "`B` from the `constants` passed in, compute `N` from the budget, then `D = C / (6 * N)` so that "
             "6·N·D is exactly C, and `return N, D` (parameters first). Before that, `raise ValueError` unless "
             "`C` is a number with `math.isfinite(C)` and `C > 0`.",
             fits=("keys", "fixed_constants", "not_a_pair", "off_budget", "no_6_in_D", "swapped", "no_refusal",
                   "raised")),
        Hint("Compute the factor first: `G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))`, alpha·A on top "
             "and the whole ratio raised to the power. Keep the parentheses: without them `**` applies to the "
             "last number only.",
             fits=("G_upside_down", "no_G", "G_not_powered")),
        Hint("Then the budget enters as `(C / 6) ** (beta / (alpha + beta))`, multiplied by `G`: C divided by 6 "
             "(because C = 6 N D), and beta, not alpha, on top of the exponent. This is the law's own optimum, "
             "not the rule of thumb of 20 tokens per parameter, and plain float arithmetic gives plain numbers.",
             fits=("C_not_C_over_6", "no_6", "alpha_exponent", "rule_of_thumb", "too_large", "too_small",
                   "not_optimal", "not_numbers")),
    ),
)

EXERCISES = (NEXT_TOKEN_LOSS, DEDUPE, CHINCHILLA_LOSS, COMPUTE_OPTIMAL)
