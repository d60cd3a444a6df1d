"""Notebook C's exercises pass the course's answers, and catch typical learner mistakes under the key
that names the mistake. The learner versions below are written independently of the declarations'
own list of mistakes, each keyword one bug."""
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import pretraining as checks
from course_lib.exercises import ExerciseFailure, check
from course_lib.exercises import pretraining as reference

ALL_CHECKS = [
    (checks.check_next_token_loss, reference.next_token_loss),
    (checks.check_next_token_loss_hidden, reference.next_token_loss),
    (checks.check_dedupe, reference.dedupe),
    (checks.check_dedupe_hidden, reference.dedupe),
    (checks.check_chinchilla_loss, reference.chinchilla_loss),
    (checks.check_compute_optimal, reference.compute_optimal),
    (checks.check_compute_optimal_hidden, reference.compute_optimal),
]


def failure(fn, exercise: str, hidden: bool = False) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(fn, exercise=exercise, hidden=hidden)
    return caught.value


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
    n, d = reference.compute_optimal(reference.CHINCHILLA_BUDGET, reference.HOFFMANN_2022)
    assert (n, d) == (pytest.approx(32.2e9, rel=1e-3), pytest.approx(2.98e12, rel=1e-3))
    n, d = reference.compute_optimal(reference.CHINCHILLA_BUDGET, reference.EPOCH_2024)
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


@pytest.mark.parametrize("bug, key", [
    ("sum", "summed"),
    ("log2", "bits"),
    ("no minus", "no_minus"),
    ("shift", "shifted"),
    ("softmax without log", "minus_probability"),
    ("batch only", "batch_mean_only"),
    ("vocabulary mean", "vocabulary_mean"),
    ("manual exp", "unstable"),
    ("log of softmax", "unstable"),
    ("per position", "per_position"),
    ("item", "not_a_tensor"),
    ("rebuilt tensor", "no_gradient"),
    ("3-D only", "reshape"),
])
def test_check_next_token_loss_names_the_mistake(bug, key):
    assert failure(functools.partial(learner_loss, bug=bug), "next_token_loss").key == key


def test_the_hidden_loss_check_wants_reshape_for_the_slices_a_caller_passes():
    checks.check_next_token_loss(functools.partial(learner_loss, bug="view"))
    found = failure(functools.partial(learner_loss, bug="view"), "next_token_loss", hidden=True)
    assert found.key == "reshape" and "not contiguous" in str(found)


def test_the_loss_check_shows_expected_and_got_values():
    found = str(failure(functools.partial(learner_loss, bug="sum"), "next_token_loss"))
    assert "2.3026" in found and "2.302585" in found and "13.81551" in found


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


@pytest.mark.parametrize("bug, key", [
    ("compare with all", "compared_with_dropped"),
    ("keep last", "kept_last_copy"),
    ("no normalisation", "not_normalised"),
    ("smaller set", "not_jaccard"),
    ("words", "single_words"),
    ("strictly above", "strictly_above"),
    ("fixed threshold", "fixed_threshold"),
    ("exact only", "exact_only"),
    ("normalised output", "normalised_output"),
    ("empty short", "short_documents"),
    ("empty short guarded", "short_documents"),
    ("sorted", "order"),
    ("set", "not_a_list"),
    ("removes from the input", "changed_input"),
    ("no validation", "no_refusal"),
])
def test_check_dedupe_names_the_mistake(bug, key):
    assert failure(functools.partial(learner_dedupe, bug=bug), "dedupe").key == key


def test_an_error_on_short_documents_is_named_as_the_short_document_mistake():
    found = failure(functools.partial(learner_dedupe, bug="empty short"), "dedupe")
    assert found.key == "short_documents" and "ZeroDivisionError" in str(found)


def test_the_hidden_dedupe_check_wants_sets_of_shingles():
    checks.check_dedupe(functools.partial(learner_dedupe, bug="lists"))
    assert failure(functools.partial(learner_dedupe, bug="lists"), "dedupe", hidden=True).key == "not_sets"


def test_the_dedupe_check_names_documents_by_what_they_are():
    found = failure(functools.partial(learner_dedupe, bug="compare with all"), "dedupe")
    assert "['A: river town', 'C: B with 1 more word changed']" in str(found)
    assert "['A: river town']\n" in str(found)
    # Measuring over the smaller set or over single words would also drop C, but earlier cases ruled them out.
    assert found.key == "compared_with_dropped"
    assert str(found).count(reference.DEDUPE.hint("compared_with_dropped")) == 1
    assert reference.DEDUPE.hint("not_jaccard") not in str(found)
    assert reference.DEDUPE.hint("single_words") not in str(found)


@pytest.mark.parametrize("bug, key", [("strictly above", "strictly_above"), ("fixed threshold", "fixed_threshold")])
def test_dedupe_hints_leave_out_mistakes_that_earlier_cases_ruled_out(bug, key):
    found = failure(functools.partial(learner_dedupe, bug=bug), "dedupe")
    others = {k for _, k in reference.DEDUPE_VARIANTS} - {key}
    assert found.key == key and not any(reference.DEDUPE.hint(k) in str(found) for k in others)


def test_the_dedupe_cases_sit_where_their_descriptions_say():
    def similarity(a, b):
        return reference.jaccard(reference.shingles(a), reference.shingles(b))
    assert similarity(reference.RIVER, reference.RIVER_1) == pytest.approx(58 / 68)
    assert similarity(reference.RIVER_1, reference.RIVER_2) == pytest.approx(58 / 68)
    assert similarity(reference.RIVER, reference.RIVER_2) == pytest.approx(53 / 73)
    assert similarity(reference.RIVER, reference.RIVER_3) == pytest.approx(48 / 78)
    assert similarity(reference.RIVER, reference.RIVER_START) == pytest.approx(26 / 63)
    assert similarity(reference.RIVER, reference.RIVER_REVERSED) == 0
    assert similarity(reference.RIVER, reference.RIVER_MESSY) == 1
    assert similarity(reference.NOTE, reference.NOTE_2) == 0.5


def test_the_random_collection_has_near_duplicates_on_both_sides_of_the_threshold():
    documents = [text for _, text in reference.random_collection(2024)]
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


@pytest.mark.parametrize("bug, key", [
    ("swapped exponents", "swapped_exponents"),
    ("multiply", "multiplied"),
    ("no E", "no_E"),
    ("lower-case keys", "keys"),
    ("fixed constants", "fixed_constants"),
    ("math.pow", "arrays"),
    ("if on arrays", "arrays"),
    ("no validation", "no_refusal"),
])
def test_check_chinchilla_loss_names_the_mistake(bug, key):
    assert failure(functools.partial(learner_loss_law, bug=bug), "chinchilla_loss").key == key


@pytest.mark.parametrize("bug, error", [("lower-case keys", "KeyError"), ("math.pow", "TypeError"),
                                        ("if on arrays", "ambiguous")])
def test_the_loss_law_check_shows_the_error_it_names(bug, error):
    assert error in str(failure(functools.partial(learner_loss_law, bug=bug), "chinchilla_loss"))


def test_a_loss_law_that_refuses_nothing_is_shown_what_it_raised():
    found = str(failure(functools.partial(learner_loss_law, bug="no validation"), "chinchilla_loss"))
    assert "chinchilla_loss(N=0, D=1000000000.0)" in found and "ZeroDivisionError" in found


def test_the_loss_law_check_quotes_chinchillas_loss():
    found = str(failure(functools.partial(learner_loss_law, bug="no E"), "chinchilla_loss"))
    assert "≈ 1.937 nats" in found and "1.93664547" in found


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


@pytest.mark.parametrize("bug, key", [
    ("no 6", "no_6"),
    ("swapped", "swapped"),
    ("C not C/6", "C_not_C_over_6"),
    ("alpha exponent", "alpha_exponent"),
    ("rule of thumb", "rule_of_thumb"),
    ("no validation", "no_refusal"),
])
def test_check_compute_optimal_names_the_mistake(bug, key):
    assert failure(functools.partial(learner_optimal, bug=bug), "compute_optimal").key == key


def test_forgetting_the_6_fails_on_the_budget_first():
    assert "6 N D = C" in str(failure(functools.partial(learner_optimal, bug="no 6"), "compute_optimal"))


@pytest.mark.parametrize("wrong, key", [
    (lambda C, c: np.array(reference.compute_optimal(C, c)), "not_a_pair"),
    (lambda C, c: tuple(torch.tensor(v) for v in reference.compute_optimal(C, c)), "not_numbers"),
    (lambda C, c: (-1.0, -C / 6), "not_numbers"),
    (lambda C, c: (1e9, C / 6e9 * 1.01), "off_budget"),
    (lambda C, c: (c["Alpha"], c["Beta"]), "keys"),
    (lambda C, c: reference.compute_optimal(C, reference.HOFFMANN_2022) if C > 0 else 1 / 0, "fixed_constants"),
])
def test_compute_optimal_wants_a_pair_of_numbers_on_budget_from_the_constants_given(wrong, key):
    assert failure(wrong, "compute_optimal").key == key


def test_compute_optimal_check_quotes_chinchillas_budget_and_rejects_an_off_optimum():
    def too_large(C, constants):
        n, _ = reference.compute_optimal(C, constants)
        return 1.5 * n, C / (6 * 1.5 * n)
    found = failure(too_large, "compute_optimal")
    assert found.key == "too_large" and "N ≈ 32.2e9" in str(found)
