"""Checks for notebook C's exercises: the next-token loss, deduplicating documents, Chinchilla's
loss law and the compute-optimal model size.

When an answer is wrong, the checks compute what the usual mistakes would have given (a sum
instead of a mean, bits instead of nats, comparing with dropped documents, alpha and beta swapped,
the 6 of C = 6 N D forgotten, ...) and name the one that matches, so the hint points at the line
to fix.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.checks.common import call, fail, refuses
from course_lib.reference.pretraining import (
    EPOCH_2024,
    HOFFMANN_2022,
    NEAR_DUPLICATE_THRESHOLD,
    SHINGLE_WORDS,
    chinchilla_loss,
    compute_optimal,
    dedupe,
    normalize,
)
from course_lib.validation import is_number

# Chinchilla itself (Hoffmann et al. 2022): 70 billion parameters trained on 1.4 trillion tokens.
# Its fitted law puts that model at about 1.937 nats per token (1.9366 with HOFFMANN_2022).
CHINCHILLA_N, CHINCHILLA_D = 70e9, 1.4e12
# The budget the paper plans with (Gopher's): 5.76e23 FLOPs. The rounded published constants put
# its optimum at N ≈ 32.2e9, D ≈ 2.98e12; Epoch AI's refit at N ≈ 72.2e9, D ≈ 1.33e12.
CHINCHILLA_BUDGET = 5.76e23

_CONSTANT_SETS = (("Hoffmann et al. 2022", HOFFMANN_2022), ("Epoch AI 2024", EPOCH_2024))


def _run(fn, what: str, *args, hint: str = "", hints: tuple[tuple[type, str], ...] = (), **kwargs):
    """fn(*args, **kwargs); an unexpected error becomes a failure whose hint depends on the error's type."""
    try:
        return call(fn, *args, **kwargs)
    except AssertionError:
        raise
    except Exception as error:
        chosen = next((text for kind, text in hints if isinstance(error, kind)), hint)
        fail(f"{what}: your function raised an error", "a result", f"{type(error).__name__}: {error}", chosen)


def _named(got, expected, mistakes: list[tuple[object, str]], same) -> str:
    """The hints of the mistakes whose result is `got` (two can coincide; both are named)."""
    hints = []
    for result, hint in mistakes:
        if same(got, result) and not same(expected, result) and hint not in hints:
            hints.append(hint)
    return "\n   or: ".join(hints)


# ---- the next-token loss -------------------------------------------------------------------

_NOT_A_TENSOR = ("return the loss as a torch tensor, not a Python number (no .item() or float()): "
                 "training calls loss.backward() on it")
_NO_GRADIENT = ("build the loss from `logits` with torch operations only: .item(), .detach(), .numpy(), "
                "torch.tensor(...) or torch.no_grad() cut the graph that loss.backward() follows")
_UNSTABLE = ("exp() of a logit as large as 1000 overflows to inf (and log(softmax) gives log(0) = -inf for a "
             "token with a tiny probability): use F.log_softmax or F.cross_entropy, which subtract the largest "
             "logit first (the log-sum-exp trick)")
_EMPTY_MEAN = ("NaN on ordinary logits: a mean over no positions is NaN, and this function does NOT shift "
               "(logits[..., i, :] already scores targets[..., i]; with one position a shifted slice is empty)")
_RESHAPE = ("flatten every leading dimension with .reshape (not .view, which fails on a slice such as "
            "logits[:, :-1]): F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))")


def _loss_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> list[tuple[float, str]]:
    """What the usual mistakes give on these inputs, each with the hint that names it."""
    vocab = logits.shape[-1]
    log_p = logits.double().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)  # shape of targets
    p = log_p.exp()
    mean = -log_p.mean().item()
    average = ("average over every position: F.cross_entropy's default reduction='mean', or "
               "-log_probs.mean() over all of them")
    mistakes = [
        (-log_p.sum().item(), f"that is the sum over the {log_p.numel()} positions: {average}"),
        (mean / math.log(2), "that is in bits (log base 2): the loss is in nats, the natural log "
                             "(torch.log, F.log_softmax, F.cross_entropy)"),
        (-mean, "the minus sign is missing: the loss is -log p(target), a positive number that falls as the "
                "model gets better"),
        (-p.mean().item(), "that is (minus) the probability of the target, softmax without the log: the loss "
                           "is -log softmax(logits)[target], use F.log_softmax"),
        (p.mean().item(), "that is the probability of the target, softmax without the log: the loss is "
                          "-log softmax(logits)[target], use F.log_softmax"),
        ((1 - p).mean().item(), "that is 1 - p(target), softmax without the log: the loss is "
                                "-log softmax(logits)[target]"),
        (mean / vocab, "that also averages over the vocabulary: pick the target's log-probability at each "
                       "position (F.cross_entropy does, or .gather(-1, targets[..., None])), then average over "
                       "the positions only"),
    ]
    if log_p.dim() >= 2:
        mistakes += [
            (-log_p.sum().item() / log_p.shape[0],
             f"that averages over the batch only and sums over time: {average}, batch × time"),
            (-log_p.mean(-1).sum().item(),
             f"that averages over time and sums over the batch: {average}, batch × time"),
        ]
    if targets.shape[-1] > 1:
        shift = ("you shifted the targets: this function does NOT shift, logits[..., i, :] already scores "
                 "targets[..., i] (the caller passes logits[:, :-1] and tokens[:, 1:])")
        for a, b in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            shifted = F.cross_entropy(logits[..., a, :].double().reshape(-1, vocab), targets[..., b].reshape(-1))
            mistakes.append((shifted.item(), shift))
    return mistakes


def _loss_close(a: float, b: float, tolerance: float = 1e-5) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tolerance * (1 + abs(b))


def _compare_loss(fn, what: str, logits: torch.Tensor, targets: torch.Tensor, *, expected_value=None,
                  gradient: bool = False, hint: str = "") -> None:
    """fn on copies of logits and targets against the reference: type, shape, finiteness, value, gradient."""
    reference_value = next_token_loss_value(logits, targets) if expected_value is None else expected_value
    # Copies with the same strides: a slice such as logits[:, :-1] stays a (non-contiguous) slice.
    given = torch.empty_strided(logits.size(), logits.stride()).copy_(logits.detach())
    given_targets = torch.empty_strided(targets.size(), targets.stride(), dtype=targets.dtype).copy_(targets)
    if gradient:
        given.requires_grad_(True)
    shape_errors = hint or _RESHAPE
    out = _run(fn, what, given, given_targets, hint=hint,
               hints=((RuntimeError, shape_errors), (IndexError, shape_errors)))
    if not torch.is_tensor(out):
        fail(f"{what}: the loss should be a torch tensor", "a 0-dimensional torch.Tensor",
             f"{type(out).__name__}: {out!r}"[:120], _NOT_A_TENSOR)
    if out.dim() != 0:
        if tuple(out.shape) == tuple(targets.shape):
            shape_hint = "that is the loss at each position: average them all into one number, .mean()"
        elif targets.dim() >= 2 and tuple(out.shape) == (targets.shape[0],):
            shape_hint = "that is one loss per sequence: average over the batch as well, every position"
        else:
            shape_hint = "one number, the mean over every position (F.cross_entropy returns it)"
        fail(f"{what}: the loss should be a single number, a 0-dimensional tensor", "shape ()",
             f"shape {tuple(out.shape)}", shape_hint)
    got = out.detach().double().item()
    if not math.isfinite(got):
        fail(f"{what}: the loss is not a finite number", round(reference_value, 5), got,
             _UNSTABLE if logits.abs().max() > 80 else _EMPTY_MEAN)
    if not _loss_close(got, reference_value):
        mistake = _named(got, reference_value, _loss_mistakes(logits, targets), _loss_close)
        fail(what, round(reference_value, 6), round(got, 6),
             mistake or hint or "the mean over every position of -log softmax(logits)[target]: "
                                "F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))")
    if gradient:
        if not out.requires_grad:
            fail(f"{what}: the loss should carry a gradient back to the logits", "loss.requires_grad == True",
                 "False", _NO_GRADIENT)
        try:
            out.backward()
        except Exception as error:
            fail(f"{what}: loss.backward() failed", "a gradient for the logits", f"{type(error).__name__}: {error}",
                 _NO_GRADIENT)
        expected_grad = _reference_gradient(logits, targets)
        if given.grad is None or not torch.allclose(given.grad.double(), expected_grad, atol=1e-6, rtol=1e-4):
            fail(f"{what}: the gradient of the loss with respect to the logits",
                 "(softmax(logits) - one_hot(targets)) / number of positions",
                 "no gradient" if given.grad is None else "different values", _NO_GRADIENT)


def next_token_loss_value(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The reference loss as a Python float, computed in float64."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.detach().double().reshape(-1, vocab), targets.reshape(-1)).item()


def _reference_gradient(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    x = logits.detach().double().clone().requires_grad_(True)
    F.cross_entropy(x.reshape(-1, x.shape[-1]), targets.reshape(-1)).backward()
    return x.grad


def _random_case(seed: int, *shape: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=generator) * scale
    targets = torch.randint(shape[-1], shape[:-1], generator=generator)
    return logits, targets


# Huge logits: each position's loss is exact in float64 (0, log(1 + e^-1) + 1, and 2000), but exp(1000)
# is inf and softmax gives exactly 0 for the logit -1000.
_HUGE_LOGITS = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0], [-1000.0, -1000.0, 1000.0]])
_HUGE_TARGETS = torch.tensor([0, 2, 0])


def check_next_token_loss(fn) -> None:
    """Uniform logits (log V), a hand-computable position, a batch, huge logits, a scalar with a gradient."""
    _compare_loss(fn, "uniform logits (all 0), shape (2, 3, 10): 6 positions over a vocabulary of 10, the loss "
                      "is log 10 ≈ 2.3026", torch.zeros(2, 3, 10), torch.tensor([[3, 0, 9], [5, 5, 1]]),
                  expected_value=math.log(10))
    logits, targets = _random_case(0, 2, 5, 7)
    _compare_loss(fn, "a batch of 2 sequences of 5 positions over a vocabulary of 7, shape (2, 5, 7)",
                  logits, targets)
    _compare_loss(fn, "one position, shape (1, 3), with probabilities 1/8, 2/8, 5/8 (logits = their logs) and "
                      "target 2: the loss is -log(5/8) ≈ 0.4700",
                  torch.tensor([[1 / 8, 2 / 8, 5 / 8]]).log(), torch.tensor([2]), expected_value=-math.log(5 / 8))
    _compare_loss(fn, "huge logits (±1000) at 3 positions", _HUGE_LOGITS, _HUGE_TARGETS, hint=_UNSTABLE)
    _compare_loss(fn, "a batch of shape (2, 5, 7) with logits.requires_grad = True", logits, targets, gradient=True)
    print("✅ next_token_loss passes the visible tests.")


def check_next_token_loss_hidden(fn) -> None:
    """One sequence (time, vocab), a vocabulary of 2, four dimensions, a slice, large logits, random cases."""
    cases = [
        ("one sequence of 9 positions, shape (time, vocab) = (9, 5)", _random_case(1, 9, 5)),
        ("a vocabulary of 2, shape (3, 4, 2)", _random_case(2, 3, 4, 2)),
        ("four dimensions, shape (2, 3, 4, 11)", _random_case(3, 2, 3, 4, 11)),
        ("large logits (scale 50), shape (2, 16, 40)", _random_case(4, 2, 16, 40, scale=50.0)),
    ]
    for what, (logits, targets) in cases:
        _compare_loss(fn, what, logits, targets)
    logits, tokens = _random_case(5, 3, 9, 13)
    _compare_loss(fn, "the slices a caller passes, logits[:, :-1] and targets[:, 1:] (not contiguous)",
                  logits[:, :-1], tokens[:, 1:], hint=_RESHAPE)
    for seed in range(6, 10):
        generator = random.Random(seed)
        shape = (generator.randint(1, 4), generator.randint(1, 12), generator.randint(2, 50))
        logits, targets = _random_case(seed, *shape, scale=generator.choice((0.5, 3.0, 20.0)))
        _compare_loss(fn, f"random logits of shape {shape} (seed {seed})", logits, targets)
    logits, targets = _random_case(10, 4, 6, 9)
    _compare_loss(fn, "shape (4, 6, 9) with logits.requires_grad = True", logits, targets, gradient=True)
    print("✅ next_token_loss passes the hidden tests too.")


# ---- deduplication -------------------------------------------------------------------------

_RIVER = ("The river town woke slowly each morning as fishermen pushed their boats into the grey water and the "
          "baker opened his shutters to let the smell of fresh bread drift across the square where children "
          "chased pigeons between the market stalls while their parents argued about the price of apples and the "
          "weather that had been far too dry for most of the long summer this year")
_CPU = ("Modern processors execute several instructions at once by splitting each one into small stages that "
        "overlap in a pipeline so that while one instruction is being decoded another is fetched from memory and "
        "a third is already writing its result back to a register which is why branch mispredictions are so "
        "expensive because the whole pipeline must be flushed and refilled")
_BREAD = ("To bake a simple loaf you need flour water salt and yeast mixed into a rough dough that rests for an "
          "hour before being folded several times then shaped into a ball and left to rise again until it has "
          "nearly doubled in size after which it goes into a very hot oven for about forty minutes")


def _edited(text: str, **replacements: str) -> str:
    return " ".join(replacements.get(word, word) for word in text.split())


# Jaccard similarities of word 5-gram sets with _RIVER (67 words, 63 shingles): one word changed
# 58/68 ≈ 0.853, two words changed far apart 53/73 ≈ 0.726, three 48/78 ≈ 0.615, its first 30 words
# 26/63 ≈ 0.413, its words reversed 0.
_RIVER_1 = _edited(_RIVER, baker="butcher")
_RIVER_2 = _edited(_RIVER_1, apples="pears")  # 0.853 with _RIVER_1, 0.726 with _RIVER
_RIVER_3 = _edited(_RIVER, fishermen="sailors", pigeons="seagulls", apples="pears")
_RIVER_MESSY = "  " + _RIVER.upper().replace(" THE ", "  THE\n\t", 3) + "\n"
_RIVER_START = " ".join(_RIVER.split()[:30])
_RIVER_REVERSED = " ".join(reversed(_RIVER.split()))
# 7 words, 3 shingles each, 2 shared: a Jaccard similarity of exactly 2/4 = 0.5.
_NOTE = "please remember to water the plants today"
_NOTE_2 = "please remember to water the plants tomorrow"

_NOT_KEPT_ONLY = ("compare with kept documents only: a document dropped as a near-duplicate must not knock out "
                  "later ones (keep a list of the kept documents' shingle sets and compare with those)")
_KEEP_FIRST = "keep the first copy, where it stands, and drop the later ones"
_NORMALISE = ("normalise before comparing: lower-case and collapse runs of whitespace, "
              "' '.join(text.lower().split()), for the exact check and for the shingles")
_JACCARD = ("Jaccard is intersection over union of the SETS of 5-word shingles: len(a & b) / len(a | b), "
            "not over the smaller set")
_WORD_SHINGLES = ("shingles are runs of 5 consecutive words (word 5-grams), not single words: Jaccard is "
                  "intersection over union of the SETS of 5-word shingles")
_SETS = ("Jaccard is intersection over union of the SETS of 5-word shingles: a shingle repeated in a document "
         "counts once, set(...)")
_AT_LEAST = "a near-duplicate has a similarity of AT LEAST the threshold: >= threshold, not >"
_USE_THRESHOLD = "use the `threshold` argument instead of a fixed 0.8"
_NEAR = ("drop near-duplicates too: a document whose Jaccard similarity (of 5-word shingle sets) with an "
         "earlier kept document is >= threshold")
_ORIGINAL_TEXT = "return the documents as they were given; normalise only to compare them"
_SHORT = ("a document shorter than 5 words has no run of 5 words: its one shingle is the whole tuple of its "
          "words, so two different short documents share nothing")
_REFUSE_THRESHOLD = "check that threshold is a number with 0 < threshold <= 1 and raise ValueError with a message"


def _dedupe_with(documents: list[str], threshold: float, mistake: str) -> list[str]:
    """dedupe as it comes out with one usual mistake, to name it when a learner's result matches."""
    if mistake == "keep the last copy":
        return list(reversed(_dedupe_with(list(reversed(documents)), threshold, "")))
    if mistake == "last copy's text":
        last = {normalize(d): d for d in documents}
        return [last[normalize(d)] for d in dedupe(documents, threshold)]
    limit = NEAR_DUPLICATE_THRESHOLD if mistake == "fixed threshold" else threshold
    norm = (lambda text: text) if mistake == "no normalisation" else normalize

    def units(text: str):
        words = norm(text).split()
        if mistake == "words":
            return set(words)
        grams = [tuple(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)]
        if mistake == "lists":
            return grams or [tuple(words)]
        if mistake == "empty short documents":
            return set(grams)
        return set(grams) or {tuple(words)}

    def similarity(new, old) -> float:
        if mistake == "lists":
            common = sum(s in old for s in new)
            union = len(new) + len(old) - common
        else:
            common, union = len(set(new) & set(old)), len(set(new) | set(old))
        below = {"smaller set": min(len(new), len(old)), "own set": len(new)}.get(mistake, union)
        return 1.0 if below == 0 else common / below

    kept, pool, seen = [], [], set()
    for document in documents:
        key, own = norm(document), units(document)
        duplicate = key in seen or (mistake != "exact only" and any(
            similarity(own, other) > limit if mistake == "strictly above" else similarity(own, other) >= limit
            for other in pool))
        if mistake == "compare with all" or not duplicate:
            seen.add(key)
            pool.append(own)
        if not duplicate:
            kept.append(key if mistake == "normalised output" else document)
    return kept


_DEDUPE_MISTAKES = [
    ("compare with all", _NOT_KEPT_ONLY), ("keep the last copy", _KEEP_FIRST), ("last copy's text", _KEEP_FIRST),
    ("no normalisation", _NORMALISE), ("smaller set", _JACCARD), ("own set", _JACCARD), ("words", _WORD_SHINGLES),
    ("lists", _SETS), ("strictly above", _AT_LEAST), ("fixed threshold", _USE_THRESHOLD), ("exact only", _NEAR),
    ("normalised output", _ORIGINAL_TEXT), ("empty short documents", _SHORT),
]


def _labels(result: list, documents: list[str], names: list[str]) -> list[str]:
    """Each returned document by its name in the case (the first unused input equal to it)."""
    used, labels = set(), []
    for item in result:
        index = next((i for i, d in enumerate(documents) if i not in used and d == item), None)
        if index is None:
            text = repr(item)
            labels.append(f"{text[:40]}...' (not one of the documents given)" if len(text) > 44 else
                          f"{text} (not one of the documents given)")
        else:
            used.add(index)
            labels.append(names[index])
    return labels


def _compare_dedupe(fn, what: str, named: list[tuple[str, str]], threshold=None, hint: str = "",
                    ruled_out: set | None = None) -> None:
    """fn on the named documents against the reference. `ruled_out` collects the mistakes that earlier
    cases of the same check showed the learner does not make, so that a later hint names only the others."""
    names, documents = [name for name, _ in named], [text for _, text in named]
    given = list(documents)
    args = (given,) if threshold is None else (given, threshold)
    out = _run(fn, what, *args, hint=hint)
    if given != documents:
        fail(f"{what}: your function changed the list it was given", "the input list left as it was",
             f"a list of {len(given)} documents instead of {len(documents)}",
             "build a new list of kept documents; do not remove items from the list you are looping over")
    if not isinstance(out, list):
        fail(f"{what}: the result should be a list of documents", "list", type(out).__name__,
             "return a list (a set or a dict's keys lose the original order)")
    limit = NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold
    expected = dedupe(documents, limit)
    ruled_out = set() if ruled_out is None else ruled_out
    candidates = [(mistake, _dedupe_with(documents, limit, mistake), text)
                  for mistake, text in _DEDUPE_MISTAKES if mistake not in ruled_out]
    if out == expected:
        ruled_out.update(mistake for mistake, result, _ in candidates if result != expected)
        return
    mistakes = [(result, text) for _, result, text in candidates]
    order = ("keep the documents in their original order"
             if all(isinstance(d, str) for d in out) and sorted(out) == sorted(expected) else "")
    fail(what, _labels(expected, documents, names), _labels(out, documents, names),
         _named(out, expected, mistakes, lambda a, b: a == b) or order or hint or
         "keep a document unless its normalised text equals an earlier kept one's, or the Jaccard similarity of "
         "their 5-word shingle sets is >= threshold")


def check_dedupe(fn) -> None:
    """Exact and normalised copies, near-duplicates on each side of the threshold, short documents,
    comparing with kept documents only, order, the threshold argument, and refusing bad thresholds."""
    ruled_out: set[str] = set()  # the mistakes that cases passed so far rule out

    def compare(*args, **kwargs) -> None:
        _compare_dedupe(fn, *args, ruled_out=ruled_out, **kwargs)

    river, cpu, bread = ("river town", _RIVER), ("processors", _CPU), ("bread", _BREAD)
    one_edit = ("river town with 1 word changed (similarity 0.853)", _RIVER_1)
    three_edits = ("river town with 3 words changed (similarity 0.615)", _RIVER_3)
    compare("an empty list", [])
    compare("three different documents", [river, cpu, bread])
    compare("an exact copy", [river, cpu, ("river town again", _RIVER), bread])
    compare("a copy in capitals with extra spaces and line breaks: the same text once normalised",
            [cpu, ("RIVER TOWN in capitals with extra spaces", _RIVER_MESSY), bread, river])
    compare("short documents (fewer than 5 words: each is one shingle, its whole word tuple)",
            [("'Good morning'", "Good morning"), ("'good   MORNING'", "good   MORNING"),
             ("'Good evening'", "Good evening"), ("'a short note'", "a short note"),
             ("'another short note'", "another short note")], hint=_SHORT)
    compare("one word changed in a 67-word document: Jaccard 58/68 ≈ 0.853 >= 0.8, a near-duplicate",
            [river, cpu, one_edit])
    compare("three words changed: Jaccard 48/78 ≈ 0.615 < 0.8, a different document", [river, three_edits])
    compare("the first 30 words of a document: all its shingles are in the other, but Jaccard is 26/63 ≈ 0.413 "
            "< 0.8", [river, ("the first 30 words of river town", _RIVER_START)])
    compare("the same words in reverse order: Jaccard of the 5-word shingles is 0",
            [river, ("river town's words reversed", _RIVER_REVERSED)])
    compare("a chain: B is a near-duplicate of A (0.853) and C of B (0.853), but C is not one of A (0.726); "
            "B is dropped, so C stays",
            [("A: river town", _RIVER), ("B: A with 1 word changed", _RIVER_1),
             ("C: B with 1 more word changed", _RIVER_2)])
    compare("threshold=0.95: the one-word change (0.853) is kept", [river, one_edit], 0.95)
    compare("threshold=0.5: the three-word change (0.615) is dropped", [river, three_edits], 0.5)
    compare("threshold=0.5 and a similarity of exactly 2/4 = 0.5",
            [("'...plants today'", _NOTE), ("'...plants tomorrow'", _NOTE_2)], 0.5)
    for threshold in (0, 1.5, "high"):
        refuses(fn, f"dedupe(documents, threshold={threshold!r})", _REFUSE_THRESHOLD, [_RIVER, _CPU], threshold)
    print("✅ dedupe passes the visible tests.")


def _random_collection(seed: int, count: int = 40) -> list[tuple[str, str]]:
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


def check_dedupe_hidden(fn) -> None:
    """A 40-document collection at several thresholds and its default, repeated shingles, empty documents."""
    ruled_out: set[str] = set()  # the mistakes that cases passed so far rule out

    def compare(*args, **kwargs) -> None:
        _compare_dedupe(fn, *args, ruled_out=ruled_out, **kwargs)

    collection = _random_collection(2024)
    compare("40 random documents with copies and near-duplicates mixed in (seed 2024), default threshold",
            collection)
    for threshold in (0.6, 0.9, 1.0):
        compare(f"the same 40 documents at threshold={threshold}", collection, threshold,
                hint="threshold=1 is allowed: 0 < threshold <= 1" if threshold == 1.0 else "")
    compare("60 other random documents (seed 7) at threshold=0.7", _random_collection(7, 60), 0.7)
    compare("repeated words: both documents have the single shingle ('la',) * 5",
            [("'la' 10 times", " ".join(["la"] * 10)), ("'La' 7 times", " ".join(["La"] * 7))])
    compare("empty and blank documents (both normalise to '')",
            [("''", ""), ("'word'", "word"), ("'   '", "   "), ("'Word'", "Word")], hint=_SHORT)
    for threshold in (-0.2, float("nan")):
        refuses(fn, f"dedupe(documents, threshold={threshold!r})", _REFUSE_THRESHOLD, [_RIVER, _CPU], threshold)
    print("✅ dedupe passes the hidden tests too.")


# ---- Chinchilla's loss law -----------------------------------------------------------------

_KEYS = ("the constants dict has the keys 'E', 'A', 'B', 'alpha' and 'beta' (case matters): "
         "constants['alpha'], constants['beta'], ...")
_ARRAYS = ("use ** and / (not math.pow or math functions), which work elementwise on numpy arrays; and a check "
           "such as `if N <= 0` is ambiguous on an array: check plain numbers only, or use np.any(np.asarray(N) <= 0)")
_FORMULA = "L = E + A / N**alpha + B / D**beta"


def _chinchilla_mistakes(N, D, c: dict) -> list[tuple[object, str]]:
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    mistakes = [
        (E + A / N**beta + B / D**alpha, f"alpha and beta are swapped: alpha goes with N, beta with D, {_FORMULA}"),
        (E + A * N**alpha + B * D**beta, f"divide, do not multiply: {_FORMULA} (a bigger model and more data "
                                          "give a LOWER loss)"),
        (A / N**alpha + B / D**beta, f"forgot E, the loss even a perfect model keeps: {_FORMULA}"),
        (E + A / D**alpha + B / N**beta, f"N and D are swapped: A / N**alpha is the model-size term, B / D**beta "
                                          f"the data term"),
        (E + B / N**alpha + A / D**beta, f"A and B are swapped: {_FORMULA}"),
        (E + (A / N)**alpha + (B / D)**beta, f"(A / N)**alpha is not A / N**alpha: {_FORMULA}"),
    ]
    if c is not HOFFMANN_2022:
        mistakes.append((chinchilla_loss(N, D, HOFFMANN_2022),
                         "use the `constants` passed in, not a fixed set such as HOFFMANN_2022"))
    return mistakes


def _same_values(a, b, rel: float = 1e-9) -> bool:
    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rel, atol=0))


def _show(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{float(values):.10g}" if values.ndim == 0 else "[" + ", ".join(f"{v:.10g}" for v in values.flat) + "]"


def _compare_chinchilla(fn, what: str, N, D, constants: dict, label: str) -> None:
    what = f"{what}, {label}"
    arrays = isinstance(N, np.ndarray) or isinstance(D, np.ndarray)
    out = _run(fn, what, N.copy() if isinstance(N, np.ndarray) else N, D.copy() if isinstance(D, np.ndarray) else D,
               dict(constants), hint=_ARRAYS if arrays else _FORMULA,
               hints=((KeyError, _KEYS),) + (((TypeError, _ARRAYS), (ValueError, _ARRAYS)) if arrays else ()))
    expected = chinchilla_loss(N, D, constants)
    if arrays:
        if np.shape(out) != np.shape(expected):
            fail(f"{what}: one loss per element", f"an array of shape {np.shape(expected)}",
                 f"{type(out).__name__} of shape {np.shape(out)}", _ARRAYS)
    elif not (is_number(out) or (isinstance(out, np.ndarray) and out.ndim == 0)):
        fail(f"{what}: the loss should be a number", "a float", f"{type(out).__name__}: {out!r}"[:120], _FORMULA)
    if not _same_values(out, expected):
        hint = _named(out, expected, _chinchilla_mistakes(N, D, constants), lambda a, b: _same_values(a, b, 1e-6))
        fail(what, _show(expected), _show(out), hint or _FORMULA)


def check_chinchilla_loss(fn) -> None:
    """Chinchilla itself with both constant sets, smaller models, numpy arrays, and refusing N or D <= 0."""
    for label, constants in _CONSTANT_SETS:
        _compare_chinchilla(fn, "Chinchilla, N = 70e9 parameters and D = 1.4e12 tokens (≈ 1.937 nats per token with "
                                "Hoffmann's constants)", CHINCHILLA_N, CHINCHILLA_D, constants, label)
        _compare_chinchilla(fn, "a 100M-parameter model on 2e9 tokens", 1e8, 2e9, constants, label)
        _compare_chinchilla(fn, "SmolLM2-135M, N = 134_515_008 (an int) and D = 2e12", 134_515_008, 2e12, constants,
                            label)
    _compare_chinchilla(fn, "N a numpy array [1e8, 1e9, 1e10, 1e11], D = 1e11", np.array([1e8, 1e9, 1e10, 1e11]), 1e11,
                        EPOCH_2024, "Epoch AI 2024")
    _compare_chinchilla(fn, "N and D numpy arrays of the same shape (2, 2)", np.array([[1e7, 1e8], [1e9, 1e10]]),
                        np.array([[1e9, 1e10], [1e11, 1e12]]), HOFFMANN_2022, "Hoffmann et al. 2022")
    hint = "a model has N > 0 parameters and sees D > 0 tokens: raise ValueError with a message otherwise"
    for N, D in ((0, 1e9), (-1e8, 1e9), (1e8, 0), (1e8, -5.0)):
        refuses(fn, f"chinchilla_loss(N={N!r}, D={D!r})", hint, N, D, dict(HOFFMANN_2022))
    print("✅ chinchilla_loss passes the tests.")


# ---- the compute-optimal model ---------------------------------------------------------------

_OPTIMUM = ("put D = C / (6 N) into the loss and set its derivative to 0: alpha A / N**alpha = beta B / D**beta, "
            "so N = G (C/6)**(beta/(alpha+beta)) with G = (alpha A / (beta B))**(1/(alpha+beta)), and D = C / (6 N)")


def _optimal_mistakes(C, c: dict) -> list[tuple[tuple[float, float], str]]:
    a, b, A, B = c["alpha"], c["beta"], c["A"], c["B"]
    g = (a * A / (b * B)) ** (1 / (a + b))
    x = b / (a + b)
    n, six_n = g * (C / 6) ** x, g * C ** x

    def pair(size):
        return size, C / (6 * size)

    mistakes = [
        ((C / (6 * n), n), "returned (D, N): return (N, D), the parameters first, then the tokens"),
        (pair(six_n), "used C instead of C/6: the budget buys C / 6 parameter-tokens, "
                      "N = G (C/6)**(beta/(alpha+beta))"),
        ((six_n, C / six_n), "forgot the 6: C = 6 N D, so N = G (C/6)**(beta/(alpha+beta)) and D = C / (6 N)"),
        ((n, C / n), "forgot the 6 in D: C = 6 N D, so D = C / (6 N)"),
        (pair(g * (C / 6) ** (a / (a + b))), "the exponent of N is beta/(alpha+beta) (alpha/(alpha+beta) is D's): "
                                             "N = G (C/6)**(beta/(alpha+beta))"),
        (pair((b * B / (a * A)) ** (1 / (a + b)) * (C / 6) ** x),
         "G is upside down: G = (alpha A / (beta B))**(1/(alpha+beta))"),
        (pair((C / 6) ** x), "forgot the factor G = (alpha A / (beta B))**(1/(alpha+beta))"),
        (pair(a * A / (b * B) * (C / 6) ** x), "G = (alpha A / (beta B)) to the power 1/(alpha+beta)"),
        (pair(math.sqrt(C / 120)), "that is the rule of thumb of 20 tokens per parameter: minimise this law "
                                   "with the constants given instead"),
    ]
    if c is not HOFFMANN_2022:
        mistakes.append((compute_optimal(C, HOFFMANN_2022),
                         "use the `constants` passed in, not a fixed set such as HOFFMANN_2022"))
    return mistakes


def _pair_close(a, b, rel: float = 1e-3) -> bool:
    return all(math.isclose(float(x), float(y), rel_tol=rel) for x, y in zip(a, b))


def _show_pair(pair) -> str:
    return "(N = {:.4g}, D = {:.4g})".format(*(float(v) for v in pair))


def _compare_optimal(fn, C, constants: dict, label: str, what: str = "") -> None:
    what = f"compute_optimal(C = {C:.3g}){what}, {label}"
    out = _run(fn, what, C, dict(constants), hint=_OPTIMUM, hints=((KeyError, _KEYS),))
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        fail(f"{what}: the result should be a pair", "(N, D)", repr(out)[:120], "return n, d")
    if not all(is_number(v) and math.isfinite(v) and v > 0 for v in out):
        fail(f"{what}: N and D should be positive numbers", "(float, float)",
             f"({type(out[0]).__name__}, {type(out[1]).__name__}): {out!r}"[:160],
             "return plain numbers (float(...)), not tensors or arrays")
    expected = compute_optimal(C, constants)
    hint = _named(out, expected, _optimal_mistakes(C, constants), _pair_close)
    if not math.isclose(6 * out[0] * out[1], C, rel_tol=1e-6):
        fail(f"{what}: the model and data must spend the budget exactly, 6 N D = C",
             f"6 N D = {C:.6g}", f"6 N D = {6 * out[0] * out[1]:.6g} with {_show_pair(out)}",
             hint or "choose N, then D = C / (6 N)")
    if not _pair_close(out, expected):
        if not hint:
            loss = chinchilla_loss(out[0], out[1], constants)
            if chinchilla_loss(out[0] / 1.1, out[1] * 1.1, constants) < loss:
                hint = "a 10% smaller model on 10% more tokens reaches a lower loss: your N is too large. "
            elif chinchilla_loss(out[0] * 1.1, out[1] / 1.1, constants) < loss:
                hint = "a 10% larger model on 10% fewer tokens reaches a lower loss: your N is too small. "
            hint += _OPTIMUM
        fail(what, _show_pair(expected), _show_pair(out), hint)
    loss = chinchilla_loss(out[0], out[1], constants)
    for n, d, change in ((out[0] * 1.1, out[1] / 1.1, "larger"), (out[0] / 1.1, out[1] * 1.1, "smaller")):
        if chinchilla_loss(n, d, constants) < loss:
            fail(f"{what}: the loss should be lowest at your (N, D)", f"L(N, D) <= L at a 10% {change} model",
                 f"{loss:.6f} > {chinchilla_loss(n, d, constants):.6f}", _OPTIMUM)


def check_compute_optimal(fn) -> None:
    """Chinchilla's budget with both constant sets, a small budget, and refusing C <= 0."""
    _compare_optimal(fn, CHINCHILLA_BUDGET, HOFFMANN_2022, "Hoffmann et al. 2022",
                     " (Chinchilla's budget: the law says N ≈ 32.2e9, D ≈ 2.98e12)")
    _compare_optimal(fn, CHINCHILLA_BUDGET, EPOCH_2024, "Epoch AI 2024",
                     " (Chinchilla's budget: the refit says N ≈ 72.2e9, D ≈ 1.33e12)")
    _compare_optimal(fn, 1e21, HOFFMANN_2022, "Hoffmann et al. 2022")
    hint = "a compute budget is C > 0 FLOPs: raise ValueError with a message otherwise"
    for C in (0, -1e20):
        refuses(fn, f"compute_optimal(C={C!r})", hint, C, dict(HOFFMANN_2022))
    print("✅ compute_optimal passes the visible tests.")


def check_compute_optimal_hidden(fn) -> None:
    """Budgets from 1e18 to 1e26 FLOPs with both constant sets, C as an int, and more refusals."""
    for label, constants in _CONSTANT_SETS:
        for exponent in range(18, 27, 2):
            _compare_optimal(fn, 10.0**exponent, constants, label)
        _compare_optimal(fn, 6 * 10**22, constants, label, " given as a Python int")
    refuses(fn, "compute_optimal(C=-5.0)", "raise ValueError when C <= 0", -5.0, dict(EPOCH_2024))
    print("✅ compute_optimal passes the hidden tests too.")
