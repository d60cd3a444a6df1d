"""Notebook C's checks pass the reference answers, and catch typical learner mistakes with a message
that names the mistake. The learner versions below are written independently of the checks' own
list of mistakes, each keyword one bug."""
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import pretraining as checks
from course_lib.reference import pretraining as reference

ALL_CHECKS = [
    (checks.check_next_token_loss, reference.next_token_loss),
    (checks.check_next_token_loss_hidden, reference.next_token_loss),
    (checks.check_dedupe, reference.dedupe),
    (checks.check_dedupe_hidden, reference.dedupe),
    (checks.check_chinchilla_loss, reference.chinchilla_loss),
    (checks.check_compute_optimal, reference.compute_optimal),
    (checks.check_compute_optimal_hidden, reference.compute_optimal),
]


def test_the_reference_passes_every_check(capsys):
    for check, answer in ALL_CHECKS:
        check(answer)
    out = capsys.readouterr().out
    assert out.count("✅") == len(ALL_CHECKS)
    for name in ("next_token_loss", "dedupe", "chinchilla_loss", "compute_optimal"):
        assert f"✅ {name} passes the" in out


def test_the_stated_values_are_the_references():
    """The numbers the checks' messages quote."""
    assert reference.chinchilla_loss(70e9, 1.4e12, reference.HOFFMANN_2022) == pytest.approx(1.9366, abs=1e-4)
    n, d = reference.compute_optimal(checks.CHINCHILLA_BUDGET, reference.HOFFMANN_2022)
    assert (n, d) == (pytest.approx(32.2e9, rel=1e-3), pytest.approx(2.98e12, rel=1e-3))
    n, d = reference.compute_optimal(checks.CHINCHILLA_BUDGET, reference.EPOCH_2024)
    assert (n, d) == (pytest.approx(72.2e9, rel=1e-3), pytest.approx(1.33e12, rel=1e-2))


# ---- next-token loss ----


def learner_loss(logits, targets, *, bug=None):
    """A learner's next_token_loss, with one chosen mistake."""
    vocab = logits.shape[-1]
    if bug == "view":
        return F.cross_entropy(logits.view(-1, vocab), targets.view(-1))
    if bug == "3-D only":
        return F.cross_entropy(logits.transpose(1, 2), targets)
    if bug == "shift":
        logits, targets = logits[..., :-1, :], targets[..., 1:]
    if bug == "manual exp":
        probabilities = logits.exp() / logits.exp().sum(-1, keepdim=True)
        log_probabilities = probabilities.log()
    elif bug == "log of softmax":
        log_probabilities = torch.softmax(logits, -1).log()
    elif bug == "log2":
        log_probabilities = logits.log_softmax(-1) / math.log(2)
    else:
        log_probabilities = logits.log_softmax(-1)
    if bug == "vocabulary mean":
        return -(log_probabilities * F.one_hot(targets, vocab)).mean()
    picked = log_probabilities.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if bug == "softmax without log":
        picked = picked.exp()
    if bug == "no minus":
        return picked.mean()
    if bug == "sum":
        return -picked.sum()
    if bug == "batch only":
        return -picked.sum(-1).mean()
    if bug == "per position":
        return -picked
    if bug == "item":
        return -picked.mean().item()
    if bug == "rebuilt tensor":
        return torch.tensor(-picked.mean().item())
    return -picked.mean()


def test_the_mistake_free_learner_loss_passes(capsys):
    checks.check_next_token_loss(learner_loss)
    checks.check_next_token_loss_hidden(learner_loss)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, message", [
    ("sum", "that is the sum over the 6 positions"),
    ("log2", "in bits"),
    ("no minus", "minus sign is missing"),
    ("shift", "you shifted the targets: this function does NOT shift"),
    ("softmax without log", "softmax without the log"),
    ("batch only", "averages over the batch only"),
    ("vocabulary mean", "averages over the vocabulary"),
    ("manual exp", "overflows"),
    ("log of softmax", "log\\(0\\) = -inf"),
    ("per position", "loss at each position"),
    ("item", "should be a torch tensor"),
    ("rebuilt tensor", "cut the graph"),
    ("3-D only", "flatten every leading dimension"),
])
def test_check_next_token_loss_names_the_mistake(bug, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_next_token_loss(functools.partial(learner_loss, bug=bug))


def test_the_hidden_loss_check_wants_reshape_for_the_slices_a_caller_passes():
    checks.check_next_token_loss(functools.partial(learner_loss, bug="view"))
    with pytest.raises(AssertionError, match=r"(?s)not contiguous.*\.reshape \(not \.view"):
        checks.check_next_token_loss_hidden(functools.partial(learner_loss, bug="view"))


def test_the_loss_check_shows_expected_and_got_values():
    with pytest.raises(AssertionError, match=r"(?s)log 10 ≈ 2\.3026.*expected: 2\.302585.*got:      13\.81551"):
        checks.check_next_token_loss(functools.partial(learner_loss, bug="sum"))


# ---- dedupe ----


def learner_dedupe(documents, threshold=0.8, *, bug=None):
    """A learner's dedupe comparing every pair directly (the reference uses an index), one chosen mistake."""
    if bug != "no validation" and (not isinstance(threshold, (int, float)) or not 0 < threshold <= 1):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    limit = 0.8 if bug == "fixed threshold" else threshold

    def norm(text):
        return text if bug == "no normalisation" else " ".join(text.lower().split())

    def grams(text):
        words = norm(text).split()
        if bug == "words":
            return set(words)
        runs = [tuple(words[i:i + 5]) for i in range(len(words) - 4)]
        if bug == "lists":
            return runs or [tuple(words)]
        if bug in ("empty short", "empty short guarded"):
            return set(runs)
        return set(runs) or {tuple(words)}

    def similarity(new, old):
        if bug == "lists":
            common = sum(1 for s in new if s in old)
            return common / (len(new) + len(old) - common)
        if bug == "empty short guarded" and not new and not old:
            return 1.0
        below = min(len(new), len(old)) if bug == "smaller set" else len(new | old)
        return len(new & old) / below

    def duplicate(document, other):
        if norm(document) == norm(other):
            return True
        if bug == "exact only":
            return False
        s = similarity(grams(document), grams(other))
        return s > limit if bug == "strictly above" else s >= limit

    if bug == "removes from the input":
        for i in range(len(documents) - 1, 0, -1):
            if any(duplicate(documents[i], other) for other in documents[:i]):
                del documents[i]
        return documents
    order = list(reversed(documents)) if bug == "keep last" else documents
    kept, seen = [], []
    for document in order:
        pool = seen if bug == "compare with all" else kept
        if not any(duplicate(document, other) for other in pool):
            kept.append(document)
        seen.append(document)
    if bug == "keep last":
        kept.reverse()
    if bug == "normalised output":
        return [norm(d) for d in kept]
    if bug == "sorted":
        return sorted(kept)
    if bug == "set":
        return set(kept)
    return kept


def test_the_mistake_free_learner_dedupe_passes(capsys):
    checks.check_dedupe(learner_dedupe)
    checks.check_dedupe_hidden(learner_dedupe)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, message", [
    ("compare with all", "compare with kept documents only"),
    ("keep last", "keep the first copy"),
    ("no normalisation", "normalise before comparing"),
    ("smaller set", "intersection over union of the SETS of 5-word shingles: len\\(a & b\\) / len\\(a \\| b\\)"),
    ("words", "runs of 5 consecutive words"),
    ("strictly above", "AT LEAST the threshold"),
    ("fixed threshold", "use the `threshold` argument"),
    ("exact only", "drop near-duplicates too"),
    ("normalised output", "return the documents as they were given"),
    ("empty short", "(?s)ZeroDivisionError.*no run of 5 words"),
    ("empty short guarded", "no run of 5 words"),
    ("sorted", "original order"),
    ("set", "should be a list"),
    ("removes from the input", "changed the list it was given"),
    ("no validation", r"threshold=0\) should be refused"),
])
def test_check_dedupe_names_the_mistake(bug, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_dedupe(functools.partial(learner_dedupe, bug=bug))


def test_the_hidden_dedupe_check_wants_sets_of_shingles():
    checks.check_dedupe(functools.partial(learner_dedupe, bug="lists"))
    with pytest.raises(AssertionError, match="a shingle repeated in a document counts once"):
        checks.check_dedupe_hidden(functools.partial(learner_dedupe, bug="lists"))


def test_the_dedupe_check_names_documents_by_what_they_are():
    with pytest.raises(AssertionError, match=r"expected: \['A: river town', 'C: B with 1 more word changed'\]\n"
                                             r"   got:      \['A: river town'\]") as failure:
        checks.check_dedupe(functools.partial(learner_dedupe, bug="compare with all"))
    # Measuring over the smaller set or over single words would also drop C, but earlier cases ruled them out.
    assert "\n   or:" not in str(failure.value)


@pytest.mark.parametrize("bug", ["strictly above", "fixed threshold"])
def test_dedupe_hints_leave_out_mistakes_that_earlier_cases_ruled_out(bug):
    with pytest.raises(AssertionError) as failure:
        checks.check_dedupe(functools.partial(learner_dedupe, bug=bug))
    assert "\n   or:" not in str(failure.value)


def test_the_dedupe_cases_sit_where_their_descriptions_say():
    def similarity(a, b):
        return reference.jaccard(reference.shingles(a), reference.shingles(b))
    assert similarity(checks._RIVER, checks._RIVER_1) == pytest.approx(58 / 68)
    assert similarity(checks._RIVER_1, checks._RIVER_2) == pytest.approx(58 / 68)
    assert similarity(checks._RIVER, checks._RIVER_2) == pytest.approx(53 / 73)
    assert similarity(checks._RIVER, checks._RIVER_3) == pytest.approx(48 / 78)
    assert similarity(checks._RIVER, checks._RIVER_START) == pytest.approx(26 / 63)
    assert similarity(checks._RIVER, checks._RIVER_REVERSED) == 0
    assert similarity(checks._RIVER, checks._RIVER_MESSY) == 1
    assert similarity(checks._NOTE, checks._NOTE_2) == 0.5


def test_the_random_collection_has_near_duplicates_on_both_sides_of_the_threshold():
    documents = [text for _, text in checks._random_collection(2024)]
    best = [max(reference.jaccard(reference.shingles(d), reference.shingles(e)) for e in documents[:i])
            for i, d in enumerate(documents) if i]
    assert sum(0.6 <= s < 0.8 for s in best) >= 3 and sum(0.8 <= s < 1 for s in best) >= 3
    assert len(reference.dedupe(documents, 0.6)) < len(reference.dedupe(documents)) < 40


# ---- Chinchilla's loss law ----


def learner_loss_law(N, D, constants, *, bug=None):
    if bug != "no validation":
        if bug == "if on arrays":
            if N <= 0 or D <= 0:
                raise ValueError("N and D must be > 0")
        elif np.any(np.asarray(N) <= 0) or np.any(np.asarray(D) <= 0):
            raise ValueError("N and D must be > 0")
    if bug == "lower-case keys":
        return constants["e"] + constants["a"] / N ** constants["alpha"] + constants["b"] / D ** constants["beta"]
    c = reference.HOFFMANN_2022 if bug == "fixed constants" else constants
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    if bug == "swapped exponents":
        alpha, beta = beta, alpha
    if bug == "multiply":
        return E + A * N**alpha + B * D**beta
    if bug == "no E":
        E = 0
    if bug == "math.pow":
        return E + A / math.pow(N, alpha) + B / math.pow(D, beta)
    return E + A / N**alpha + B / D**beta


def test_the_mistake_free_learner_loss_law_passes(capsys):
    checks.check_chinchilla_loss(learner_loss_law)
    assert "✅ chinchilla_loss passes the tests." in capsys.readouterr().out


@pytest.mark.parametrize("bug, message", [
    ("swapped exponents", "alpha and beta are swapped"),
    ("multiply", "divide, do not multiply"),
    ("no E", "forgot E"),
    ("lower-case keys", "(?s)KeyError.*keys 'E', 'A', 'B', 'alpha' and 'beta'"),
    ("fixed constants", "use the `constants` passed in"),
    ("math.pow", "(?s)TypeError.*work elementwise on numpy arrays"),
    ("if on arrays", "(?s)ambiguous.*np.any"),
    ("no validation", r"(?s)chinchilla_loss\(N=0, D=1000000000.0\) should raise a ValueError.*ZeroDivisionError"),
])
def test_check_chinchilla_loss_names_the_mistake(bug, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_chinchilla_loss(functools.partial(learner_loss_law, bug=bug))


def test_the_loss_law_check_quotes_chinchillas_loss():
    with pytest.raises(AssertionError, match=r"(?s)≈ 1\.937 nats.*expected: 1\.93664547"):
        checks.check_chinchilla_loss(functools.partial(learner_loss_law, bug="no E"))


# ---- compute-optimal ----


def learner_optimal(C, constants, *, bug=None):
    if bug != "no validation" and C <= 0:
        raise ValueError("C must be > 0")
    a, b, A, B = constants["alpha"], constants["beta"], constants["A"], constants["B"]
    tokens_per_flop = 1 if bug == "no 6" else 6
    budget = C if bug in ("C not C/6", "no 6") else C / 6
    exponent = a / (a + b) if bug == "alpha exponent" else b / (a + b)
    if bug == "rule of thumb":
        n = math.sqrt(C / 120)
    else:
        n = (a * A / (b * B)) ** (1 / (a + b)) * budget**exponent
    d = C / (tokens_per_flop * n)
    return (d, n) if bug == "swapped" else (n, d)


def golden_section_optimal(C, constants):
    """A numerical minimiser over log N, D = C / (6 N): close to, not exactly, the closed form."""
    if C <= 0:
        raise ValueError("C must be > 0")

    def loss(log_n):
        n = math.exp(log_n)
        return reference.chinchilla_loss(n, C / (6 * n), constants)

    low, high = math.log(1e3), math.log(C / 6 / 1e3)
    ratio = (math.sqrt(5) - 1) / 2
    while high - low > 1e-4:
        x1, x2 = high - ratio * (high - low), low + ratio * (high - low)
        if loss(x1) < loss(x2):
            high = x2
        else:
            low = x1
    n = math.exp((low + high) / 2)
    return n, C / (6 * n)


def test_the_mistake_free_and_numerical_compute_optimal_pass(capsys):
    for answer in (learner_optimal, golden_section_optimal):
        checks.check_compute_optimal(answer)
        checks.check_compute_optimal_hidden(answer)
    assert capsys.readouterr().out.count("✅") == 4


@pytest.mark.parametrize("bug, message", [
    ("no 6", r"(?s)6 N D = C.*forgot the 6"),
    ("swapped", r"returned \(D, N\)"),
    ("C not C/6", "used C instead of C/6"),
    ("alpha exponent", "the exponent of N is beta/\\(alpha\\+beta\\)"),
    ("rule of thumb", "20 tokens per parameter"),
    ("no validation", r"(?s)compute_optimal\(C=0\) should raise a ValueError.*C > 0 FLOPs"),
])
def test_check_compute_optimal_names_the_mistake(bug, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_compute_optimal(functools.partial(learner_optimal, bug=bug))


def test_compute_optimal_check_quotes_chinchillas_budget_and_rejects_an_off_optimum():
    def too_large(C, constants):
        n, _ = reference.compute_optimal(C, constants)
        return 1.5 * n, C / (6 * 1.5 * n)
    with pytest.raises(AssertionError, match=r"(?s)N ≈ 32\.2e9.*your N is too large"):
        checks.check_compute_optimal(too_large)
