"""The on-ramp's checks pass the reference answers and catch typical mistakes with a clear message; every
check says plainly when an exercise is not implemented yet."""
import inspect

import pytest
import torch

from course_lib import checks, reference


def test_reference_answers_pass_every_check():
    checks.check_softmax_with_temperature(reference.softmax_with_temperature)
    checks.check_softmax_with_temperature_hidden(reference.softmax_with_temperature)
    checks.check_generate(reference.generate)
    checks.check_generate_hidden(reference.generate)


def unstable_softmax(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    weights = torch.exp(torch.as_tensor(logits, dtype=torch.float32) / temperature)
    return weights / weights.sum(-1, keepdim=True)


def softmax_ignoring_temperature(logits, temperature):
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), -1)


def test_softmax_mistakes_are_caught():
    checks.check_softmax_with_temperature(unstable_softmax)  # fine on small logits...
    with pytest.raises(AssertionError, match="overflow"):
        checks.check_softmax_with_temperature_hidden(unstable_softmax)  # ...not on huge ones
    with pytest.raises(AssertionError, match="lower temperature"):
        checks.check_softmax_with_temperature(softmax_ignoring_temperature)
    with pytest.raises(AssertionError, match="NotImplementedError"):
        checks.check_softmax_with_temperature(lambda logits, t: (_ for _ in ()).throw(NotImplementedError()))


def generate_always_greedy(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    return reference.generate(next_token_fn, prompt_ids, max_new_tokens, 0.0, eos_id)


def generate_editing_the_prompt(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    new = []
    for _ in range(max_new_tokens):
        token = int(torch.argmax(next_token_fn(prompt_ids)))
        prompt_ids.append(token)
        new.append(token)
        if token == eos_id:
            break
    return new


def test_generate_mistakes_are_caught():
    checks.check_generate(generate_always_greedy)
    with pytest.raises(AssertionError, match="75%"):
        checks.check_generate_hidden(generate_always_greedy)
    with pytest.raises(AssertionError, match="prompt list"):
        checks.check_generate(generate_editing_the_prompt)


def test_skipped_exercise_falls_back_to_the_reference_visibly(capsys):
    def softmax_with_temperature(logits, temperature):
        raise NotImplementedError()

    chosen = checks.learner_or_reference(softmax_with_temperature, reference.softmax_with_temperature,
                                         probe=lambda f: f(torch.zeros(3), 1.0))
    assert chosen is reference.softmax_with_temperature
    assert "not implemented yet" in capsys.readouterr().out
    chosen = checks.learner_or_reference(unstable_softmax, reference.softmax_with_temperature,
                                         probe=lambda f: f(torch.zeros(3), 1.0))
    assert chosen is unstable_softmax


def not_implemented(*args, **kwargs):
    raise NotImplementedError


# Every check of a function (not of a predicted value or of answers) says plainly that the exercise is not done yet.
VALUE_CHECKS = ("check_strawberry_prediction", "check_post_training_claims", "check_rl_claims")
FUNCTION_CHECKS = [name for name in checks.__all__ if name.startswith("check_") and name not in VALUE_CHECKS]


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_an_unimplemented_exercise_says_so(name):
    check = getattr(checks, name)
    learner_functions = [not_implemented] * len(inspect.signature(check).parameters)  # encode and decode: two
    with pytest.raises(AssertionError, match="still raises NotImplementedError"):
        check(*learner_functions)


def test_a_stub_inside_the_learners_function_is_named():
    def softmax_with_temperature(logits, temperature):
        raise NotImplementedError()

    def generate(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
        return [int(softmax_with_temperature(next_token_fn(prompt_ids), temperature).argmax())]

    with pytest.raises(AssertionError, match="generate calls softmax_with_temperature, which still "
                                             "raises NotImplementedError: implement softmax_with_temperature first"):
        checks.check_generate(generate)
