"""Notebook D's answers (SFT loss, sequence log-probability, Bradley-Terry, DPO) agree with
hand-computed values, and its exercises pass them while catching typical learner mistakes under the
mistake's key. The learner versions below are written independently of the exercises' own list of
mistakes, each keyword one bug."""
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import post_training as checks
from course_lib.exercises import ExerciseFailure
from course_lib.exercises import post_training as reference

ALL_CHECKS = [
    (checks.check_sft_loss, reference.sft_loss),
    (checks.check_sft_loss_hidden, reference.sft_loss),
    (checks.check_sequence_logprob, reference.sequence_logprob),
    (checks.check_bradley_terry_loss, reference.bradley_terry_loss),
    (checks.check_bradley_terry_loss_hidden, reference.bradley_terry_loss),
    (checks.check_dpo_loss, reference.dpo_loss),
    (checks.check_dpo_loss_hidden, reference.dpo_loss),
]


def test_the_reference_passes_every_check(capsys):
    for check, answer in ALL_CHECKS:
        check(answer)
    out = capsys.readouterr().out
    assert out.count("✅") == len(ALL_CHECKS)
    for name in ("sft_loss", "sequence_logprob", "bradley_terry_loss", "dpo_loss"):
        assert f"✅ {name} passes the" in out
    assert "✅ sft_loss passes the hidden tests too." in out and "✅ dpo_loss passes the visible tests." in out


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- the reference answers ----


def test_sft_loss_averages_over_the_response_tokens_of_the_whole_batch():
    logits, labels = randn(2, 5, 7), torch.randint(7, (2, 5), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=torch.bool)
    nll = F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), reduction="none").reshape(2, 5)
    expected = (nll[0, 2:].sum() + nll[1, 1]) / 4
    assert reference.sft_loss(logits, labels, mask).item() == pytest.approx(expected.item(), rel=1e-6)
    assert reference.sft_loss(logits, labels, mask.long()).item() == pytest.approx(expected.item(), rel=1e-6)
    assert reference.sft_loss(logits.double(), labels, mask).dtype == torch.float64


def test_sft_loss_keeps_the_gradient_and_is_stable():
    logits = torch.tensor([[[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, 1000.0]]], requires_grad=True)
    loss = reference.sft_loss(logits, torch.tensor([[0, 0]]), torch.tensor([[True, True]]))
    assert loss.item() == pytest.approx(1000.0)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 1, 0].item() == pytest.approx(-0.5)


@pytest.mark.parametrize("mask", [torch.zeros(1, 3, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.long)])
def test_sft_loss_refuses_a_mask_that_selects_nothing(mask):
    with pytest.raises(ValueError, match="selects no position"):
        reference.sft_loss(randn(1, 3, 4), torch.tensor([[0, 1, 2]]), mask)


def test_sft_loss_refuses_mismatched_shapes_and_a_mask_that_is_not_0_or_1():
    with pytest.raises(ValueError, match=r"\(batch, time\) = \(1, 3\)"):
        reference.sft_loss(randn(1, 3, 4), torch.tensor([[0, 1]]), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="0/1"):
        reference.sft_loss(randn(1, 3, 4), torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]]))


def test_sequence_logprob_sums_each_response_and_gives_0_without_one():
    logits = randn(3, 4, 5, seed=2)
    labels = torch.tensor([[0, 1, 2, 3], [4, 4, 4, 4], [1, 0, 1, 0]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    log_p = logits.log_softmax(-1).gather(-1, labels[..., None]).squeeze(-1)
    got = reference.sequence_logprob(logits.requires_grad_(True), labels, mask)
    assert got.shape == (3,) and got.requires_grad
    assert got.tolist() == pytest.approx([log_p[0, 1:3].sum().item(), 0.0, log_p[2].sum().item()], rel=1e-6)


def test_bradley_terry_is_minus_log_sigmoid_of_the_difference_and_stable():
    assert reference.bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))
    big = reference.bradley_terry_loss(torch.tensor([200.0, -200.0]), torch.zeros(2))
    assert big.item() == pytest.approx(100.0)
    with pytest.raises(ValueError, match="same shape"):
        reference.bradley_terry_loss(torch.zeros(3), torch.zeros(2))


def test_dpo_loss_is_per_pair_and_follows_the_blueprints_argument_order():
    pc, pr, rc, rr = torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-14.0]), torch.tensor([-11.0])
    got = reference.dpo_loss(pc, pr, rc, rr, 0.1)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.1 * 5))))  # margin (4) - (-1) = 5
    assert reference.dpo_loss(pc.expand(4), pr.expand(4), rc.expand(4), rr.expand(4), 1).shape == (4,)


@pytest.mark.parametrize("beta", [0, 0.0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_dpo_loss_refuses_a_beta_that_is_not_a_positive_number(beta):
    with pytest.raises(ValueError, match="beta"):
        reference.dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta)


def test_the_stated_values_are_the_references():
    """The numbers the cases' descriptions quote."""
    assert reference.sft_loss(*reference.hand_sft_case()).item() == pytest.approx(math.log(2), rel=1e-6)
    labels = torch.tensor([[3, 0, 2, 1], [1, 1, 3, 0]])
    logits = reference.label_probabilities(labels, 4, torch.tensor([[1 / 4, 1 / 2, 1 / 2, 1 / 4],
                                                                  [1 / 4, 1 / 4, 1 / 2, 1 / 4]]))
    got = reference.sequence_logprob(logits, labels, reference.spans_mask([(1, 4), (2, 3)], 4))
    assert got.tolist() == pytest.approx([math.log(1 / 16), math.log(1 / 2)], rel=1e-6)
    got = reference.bradley_terry_loss(torch.tensor([200.0, -200.0, 3.0]), torch.tensor([0.0, 0.0, 1.0]))
    assert got.item() == pytest.approx(66.709, abs=1e-3)
    pc, pr = torch.tensor([-10.0, -25.0, -40.0, -8.0]), torch.tensor([-12.0, -20.0, -35.0, -30.0])
    rc, rr = torch.tensor([-14.0, -22.0, -41.0, -20.0]), torch.tensor([-11.0, -23.0, -36.0, -30.0])
    assert ((pc - rc) - (pr - rr)).tolist() == [5, -6, 0, 12]


# ---- sft_loss ----


def learner_sft(logits, labels, loss_mask, *, bug=None):
    """A learner's sft_loss, with one chosen mistake."""
    vocab = logits.shape[-1]
    mask = loss_mask if bug == "int mask" else loss_mask.bool()
    if bug != "no check" and not mask.any():
        raise ValueError("the mask selects no token")
    if bug == "in place":
        labels[~mask] = -100
        return F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1))
    if bug == "shift":
        logits, labels, mask = logits[:, :-1], labels[:, 1:], mask[:, 1:]
    if bug == "manual exp":
        log_probs = (logits.exp() / logits.exp().sum(-1, keepdim=True)).log()
    else:
        log_probs = torch.log_softmax(logits, dim=-1)
    if bug == "log2":
        log_probs = log_probs / math.log(2)
    nll = -log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if bug == "probability":
        nll = -(-nll).exp()  # -p(label): softmax without the log
    if bug == "no minus":
        nll = -nll
    if bug == "mask ignored":
        return nll.mean()
    if bug == "inverted":
        return nll[~mask].mean()
    if bug == "divide by all":
        return (nll * mask).mean()
    if bug == "sum":
        return (nll * mask).sum()
    if bug == "mean of means":
        return torch.stack([row[m].mean() for row, m in zip(nll, mask)]).mean()
    if bug == "per sequence":
        return (nll * mask).sum(1) / mask.sum(1)
    if bug == "item":
        return nll[mask].mean().item()
    if bug == "rebuilt tensor":
        return torch.tensor(nll[mask].mean().item())
    if bug == "int mask":  # indexing with the mask as given: a 0/1 integer tensor picks rows 0 and 1
        return nll[mask].mean()
    return (nll * mask).sum() / mask.sum()


def test_the_mistake_free_learner_sft_passes(capsys):
    checks.check_sft_loss(learner_sft)
    checks.check_sft_loss_hidden(learner_sft)
    assert capsys.readouterr().out.count("✅") == 2


def failure(check, learner, bug) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(functools.partial(learner, bug=bug))
    assert isinstance(caught.value, AssertionError)  # what nbgrader counts as a failed test
    return caught.value


@pytest.mark.parametrize("bug, key", [
    ("mask ignored", "mask_ignored"),
    ("inverted", "mask_inverted"),
    ("divide by all", "divided_by_all"),
    ("sum", "sum"),
    ("mean of means", "mean_of_means"),
    ("per sequence", "per_sequence"),
    ("shift", "shifted_again"),
    ("log2", "bits"),
    ("probability", "minus_probability"),
    ("no minus", "no_minus"),
    ("manual exp", "unstable"),
    ("item", "not_a_tensor"),
    ("rebuilt tensor", "no_gradient"),
    ("in place", "changed_input"),
    ("no check", "no_refusal"),
])
def test_check_sft_loss_names_the_mistake(bug, key):
    assert failure(checks.check_sft_loss, learner_sft, bug).key == key


def test_the_hidden_sft_check_wants_a_0_1_mask_turned_into_booleans():
    checks.check_sft_loss(functools.partial(learner_sft, bug="int mask"))
    assert failure(checks.check_sft_loss_hidden, learner_sft, "int mask").key == "int_mask"


def test_the_sft_check_shows_expected_and_got_values():
    caught = failure(checks.check_sft_loss, learner_sft, "mask ignored")
    assert caught.key == "mask_ignored" and "0.693147" in str(caught) and "1.524924" in str(caught)


# ---- sequence_logprob ----


def learner_logprob(logits, labels, loss_mask, *, bug=None):
    mask = loss_mask.bool().to(logits.dtype)
    if bug == "mask ignored":
        mask = torch.ones_like(mask)
    log_probs = logits.softmax(-1).log() if bug == "log of softmax" else logits.log_softmax(-1)
    picked = torch.gather(log_probs, 2, labels[:, :, None])[:, :, 0] * mask
    if bug == "mean":
        return picked.sum(1) / mask.sum(1)
    if bug == "negative":
        return -picked.sum(1)
    if bug == "scalar":
        return picked.sum()
    if bug == "list":
        return [row.sum().item() for row in picked]
    if bug == "detached":
        return picked.sum(1).detach()
    return picked.sum(1)


def test_the_mistake_free_learner_logprob_passes(capsys):
    checks.check_sequence_logprob(learner_logprob)
    assert "✅ sequence_logprob passes the tests." in capsys.readouterr().out


@pytest.mark.parametrize("bug, key", [
    ("mean", "mean_per_response"),
    ("mask ignored", "mask_ignored"),
    ("negative", "sign"),
    ("scalar", "batch_total"),
    ("list", "not_a_tensor"),
    ("detached", "no_gradient"),
    ("log of softmax", "unstable"),
])
def test_check_sequence_logprob_names_the_mistake(bug, key):
    assert failure(checks.check_sequence_logprob, learner_logprob, bug).key == key


# ---- bradley_terry_loss ----


def learner_bt(r_chosen, r_rejected, *, bug=None):
    difference = r_chosen - r_rejected
    if bug == "swapped":
        difference = -difference
    if bug == "log of sigmoid":
        losses = -torch.log(torch.sigmoid(difference))
    elif bug == "sigmoid":
        losses = torch.sigmoid(difference)
    elif bug == "no minus":
        losses = F.logsigmoid(difference)
    else:
        losses = -F.logsigmoid(difference)
    if bug == "sum":
        return losses.sum()
    if bug == "per pair":
        return losses
    if bug == "item":
        return losses.mean().item()
    return losses.mean()


def test_the_mistake_free_learner_bt_passes(capsys):
    checks.check_bradley_terry_loss(learner_bt)
    checks.check_bradley_terry_loss_hidden(learner_bt)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, key", [
    ("swapped", "swapped"),
    ("log of sigmoid", "log_sigmoid"),
    ("sum", "sum"),
    ("sigmoid", "sigmoid"),
    ("no minus", "no_minus"),
    ("per pair", "per_pair"),
    ("item", "not_a_tensor"),
])
def test_check_bradley_terry_loss_names_the_mistake(bug, key):
    assert failure(checks.check_bradley_terry_loss, learner_bt, bug).key == key


def test_the_hidden_bt_check_catches_log_sigmoid_in_float64():
    def float64_log_sigmoid(r_chosen, r_rejected):
        return -torch.log(torch.sigmoid(r_chosen.double() - r_rejected.double())).mean()
    checks.check_bradley_terry_loss(float64_log_sigmoid)  # ±200 is fine in float64
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_bradley_terry_loss_hidden(float64_log_sigmoid)
    assert caught.value.key == "log_sigmoid"


# ---- dpo_loss ----


def learner_dpo(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, *, bug=None):
    if bug != "no check" and beta <= 0:
        raise ValueError("beta must be positive")
    chosen = policy_chosen - ref_chosen
    rejected = policy_rejected - ref_rejected
    if bug == "reference plus":
        chosen, rejected = policy_chosen + ref_chosen, policy_rejected + ref_rejected
    if bug == "swapped":
        chosen, rejected = rejected, chosen
    if bug == "fixed beta":
        beta = 0.1
    margin = beta * (chosen - rejected)
    if bug == "no beta":
        margin = chosen - rejected
    if bug == "beta chosen only":
        margin = beta * chosen - rejected
    if bug == "log of sigmoid":
        losses = -torch.sigmoid(margin).log()
    elif bug == "no minus":
        losses = F.logsigmoid(margin)
    else:
        losses = -F.logsigmoid(margin)
    if bug == "mean":
        return losses.mean()
    if bug == "squeeze":
        return losses.squeeze()
    if bug == "detached":
        return losses.detach()
    return losses


def test_the_mistake_free_learner_dpo_passes(capsys):
    checks.check_dpo_loss(learner_dpo)
    checks.check_dpo_loss_hidden(learner_dpo)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("bug, key", [
    ("no beta", "no_beta"),
    ("beta chosen only", "beta_chosen_only"),
    ("reference plus", "reference_sign"),
    ("swapped", "swapped"),
    ("mean", "mean"),
    ("no minus", "no_minus"),
    ("fixed beta", "fixed_beta"),
    ("detached", "no_gradient"),
    ("no check", "no_refusal"),
])
def test_check_dpo_loss_names_the_mistake(bug, key):
    assert failure(checks.check_dpo_loss, learner_dpo, bug).key == key


@pytest.mark.parametrize("bug, key", [("squeeze", "squeezed"), ("log of sigmoid", "log_sigmoid")])
def test_the_hidden_dpo_check_catches_what_the_visible_one_lets_through(bug, key):
    checks.check_dpo_loss(functools.partial(learner_dpo, bug=bug))
    assert failure(checks.check_dpo_loss_hidden, learner_dpo, bug).key == key


@pytest.mark.parametrize("check, learner, bug", [
    (checks.check_dpo_loss, learner_dpo, "no beta"),
    (checks.check_dpo_loss_hidden, learner_dpo, "squeeze"),
    (checks.check_sft_loss, learner_sft, "sum"),
    (checks.check_sequence_logprob, learner_logprob, "mean"),
])
def test_a_wrong_answer_names_one_mistake_only(check, learner, bug):
    assert "\n   or:" not in str(failure(check, learner, bug))


def test_swapping_chosen_and_rejected_shows_in_the_mean_only_when_the_differences_do_not_average_0():
    """softplus(x) - softplus(-x) = x: the visible batch of 4 pairs must not have a mean difference of 0."""
    caught = failure(checks.check_bradley_terry_loss, learner_bt, "swapped")
    assert caught.key == "swapped" and "4 pairs, r_chosen" in str(caught)


# ---- evaluate the claim ------------------------------------------------------------------------
def test_the_claim_answers_are_checked_against_the_measurements(capsys):
    accuracy = {"all": 0.8, "wrong function": 0.5, "rambles on": 1.0, "cut off": 0.95}
    measured = dict(sft_overlap=0.22, chance=0.2, reward_accuracy=accuracy)
    checks.check_post_training_claims("b", "chance", "wrong function", **measured)
    assert "agree with what you measured" in capsys.readouterr().out
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_post_training_claims("a", "chance", "wrong function", **measured)
    assert caught.value.key == "job"
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_post_training_claims("b", "right", "wrong function", **measured)
    assert caught.value.key == "overlap" and "0.22" in str(caught.value)  # the hint quotes the measurement
    # Where the overlap really is nearer 1, "right" is the answer.
    checks.check_post_training_claims("b", "right", "wrong function", **{**measured, "sft_overlap": 0.9})
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_post_training_claims("b", "close", "wrong function", **measured)
    assert caught.value.key == "not_a_choice"
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_post_training_claims("b", "chance", "cut off", **measured)
    assert caught.value.key == "hardest_flaw" and "wrong function 50%" in str(caught.value)
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_post_training_claims("b", "chance", "too long", **measured)
    assert caught.value.key == "not_a_flaw"
    # A tie at the lowest accuracy: either flaw is right.
    tied = {**accuracy, "cut off": 0.5}
    for flaw in ("wrong function", "cut off"):
        checks.check_post_training_claims("b", "chance", flaw, **{**measured, "reward_accuracy": tied})
