"""Every check says plainly when an exercise is not implemented yet (the on-ramp's checks, now
declarations in course_lib.exercises, are tested in test_exercises.py)."""
import inspect

import pytest

from course_lib import checks


def not_implemented(*args, **kwargs):
    raise NotImplementedError


# Every check of a function (not of a predicted value or of answers) says plainly that the exercise is not done yet.
VALUE_CHECKS = ("check_strawberry_prediction", "check_post_training_claims", "check_rl_claims")
FUNCTION_CHECKS = [name for name in checks.__all__ if name.startswith("check_") and name not in VALUE_CHECKS]


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_an_unimplemented_exercise_says_so(name):
    check = getattr(checks, name)
    learner_functions = [not_implemented] * len(inspect.signature(check).parameters)  # encode and decode: two
    with pytest.raises(AssertionError) as caught:  # an ExerciseFailure: what nbgrader counts as failed
        check(*learner_functions)
    assert caught.value.key == "not_implemented"
