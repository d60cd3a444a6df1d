"""ChinchillaExplorer, driven from Python the way a notebook would: the U-curve for a budget, the
compute-optimal point, the two published fits, Chinchilla and Gopher, and the fallback when the
learner's functions are missing or wrong."""
import html
import math

import numpy as np
import pytest

from course_lib.exercises import ExerciseFailure, check
from course_lib.exercises.pretraining import (
    CHINCHILLA_CONSTANTS,
    EPOCH_2024,
    HOFFMANN_2022,
    chinchilla_loss,
    compute_optimal,
)
from course_lib.widgets.chinchilla import N_GRID, ChinchillaExplorer, flops, human

HOFFMANN, EPOCH = "Hoffmann et al. 2022", "Epoch AI 2024 refit"
GRID_STEP = 10 ** (6 / (len(N_GRID) - 1))  # the ratio between two neighbouring model sizes of the curve


def curve(w):
    return w.figure.data[1]


def point(w, name):
    return next(t for t in w.figure.data if t.name and t.name.startswith(name))


def test_the_default_is_chinchillas_budget_and_the_optimum_is_compute_optimal():
    w = ChinchillaExplorer()
    assert w.budget == 5.76e23 and w.constants_name == HOFFMANN
    assert (w.slider.min, w.slider.max, w.slider.base) == (18, 26, 10)
    n, d, loss = w.optimum
    assert (n, d) == pytest.approx(compute_optimal(5.76e23, HOFFMANN_2022), rel=1e-12)
    assert loss == pytest.approx(chinchilla_loss(n, d, HOFFMANN_2022))
    assert 6 * n * d == pytest.approx(5.76e23)
    assert w.message == "" and w.notice.value == ""
    assert w.widget is w
    star = w.figure.data[2]
    assert (star.x[0], star.y[0]) == pytest.approx((n, loss))
    label = w.figure.layout.annotations[0]
    assert label.x == pytest.approx(math.log10(n))  # annotations on a log axis take log10(x)
    assert label.text == f"optimum: {human(n)} params, {human(d)} tokens"
    summary = html.unescape(w.summary.value)
    assert f"{d / n:.1f}</b> tokens per parameter" in summary and f"{loss:.3f}" in summary


@pytest.mark.parametrize("name", list(CHINCHILLA_CONSTANTS))
def test_the_optimum_follows_the_constant_set(name):
    w = ChinchillaExplorer(constants_name=name, budget=1e21)
    n, d, _ = w.optimum
    assert (n, d) == pytest.approx(compute_optimal(1e21, CHINCHILLA_CONSTANTS[name]), rel=1e-12)


def test_a_bigger_budget_moves_the_optimum_to_a_bigger_model_and_more_tokens():
    w = ChinchillaExplorer()
    optima = []
    for budget in [1e18, 1e20, 1e22, 5.76e23, 1e26]:
        w.budget = budget
        optima.append(w.optimum)
        assert w.optimum[:2] == pytest.approx(compute_optimal(budget, HOFFMANN_2022), rel=1e-12)
    ns, ds, losses = zip(*optima)
    assert list(ns) == sorted(ns) and list(ds) == sorted(ds)
    assert list(losses) == sorted(losses, reverse=True)  # more compute, lower loss
    w.slider.value = 1e19  # the slider itself redraws too
    assert w.optimum[:2] == pytest.approx(compute_optimal(1e19, HOFFMANN_2022), rel=1e-12)
    assert "1.0e19 FLOPs" in w.figure.layout.title.text


@pytest.mark.parametrize("name", list(CHINCHILLA_CONSTANTS))
@pytest.mark.parametrize("budget", [1e18, 3e21, 5.76e23, 1e26])
def test_the_lowest_plotted_point_is_next_to_the_marked_optimum(name, budget):
    w = ChinchillaExplorer(budget=budget, constants_name=name)
    xs, ys = np.array(curve(w).x), np.array(curve(w).y)
    n, d, loss = w.optimum
    assert np.allclose(ys, chinchilla_loss(xs, budget / (6 * xs), CHINCHILLA_CONSTANTS[name]))
    lowest = int(np.argmin(ys))
    assert 0 < lowest < len(xs) - 1  # a real U: the minimum is inside the plotted range
    assert abs(math.log(xs[lowest] / n)) <= math.log(GRID_STEP)
    assert ys[lowest] >= loss - 1e-12  # no plotted point beats the optimum
    low, high = w.figure.layout.yaxis.range
    assert low < loss < high  # the bottom of the U is in view


def test_switching_the_constant_set_changes_the_curve_and_keeps_the_other_in_grey():
    w = ChinchillaExplorer(budget=1e22)
    hoffmann_curve = list(curve(w).y)
    w.constants_name = EPOCH
    assert w.toggle.value == EPOCH
    assert list(curve(w).y) != pytest.approx(hoffmann_curve)
    assert list(curve(w).y) == pytest.approx(list(chinchilla_loss(N_GRID, 1e22 / (6 * N_GRID), EPOCH_2024)))
    assert list(w.figure.data[0].y) == pytest.approx(hoffmann_curve)
    assert w.figure.data[0].name == f"{HOFFMANN} (for comparison)"
    assert curve(w).name.startswith(EPOCH)
    assert w.optimum[:2] == pytest.approx(compute_optimal(1e22, EPOCH_2024), rel=1e-12)
    w.toggle.value = HOFFMANN  # the toggle itself redraws too
    assert list(curve(w).y) == pytest.approx(hoffmann_curve)


def test_chinchilla_and_gopher_sit_at_their_real_size_and_loss_with_their_compute():
    w = ChinchillaExplorer()
    for budget in (1e18, 1e26):  # drawn at their own (N, loss), whatever the budget
        w.budget = budget
        for name, n, d, compute in [("Chinchilla", 70e9, 1.4e12, "5.9e23"), ("Gopher", 280e9, 300e9, "5.0e23")]:
            trace = point(w, name)
            assert trace.name == f"{name} {human(n)} / {human(d)} tokens ({compute} FLOPs)"
            assert (trace.x[0], trace.y[0]) == pytest.approx((n, chinchilla_loss(n, d, HOFFMANN_2022)))
            low, high = w.figure.layout.yaxis.range
            assert low < trace.y[0] < high
    assert point(w, "Chinchilla").name == "Chinchilla 70B / 1.4T tokens (5.9e23 FLOPs)"
    # Trained with nearly the same compute, the smaller Chinchilla has the lower loss.
    assert point(w, "Chinchilla").y[0] < point(w, "Gopher").y[0]
    w.constants_name = EPOCH
    assert point(w, "Gopher").y[0] == pytest.approx(chinchilla_loss(280e9, 300e9, EPOCH_2024))


def test_the_learners_functions_are_used_when_they_are_right():
    calls = []

    def my_loss(N, D, constants):
        calls.append("loss")
        return constants["E"] + constants["A"] / N ** constants["alpha"] + constants["B"] / D ** constants["beta"]

    def my_optimal(C, constants):
        calls.append("optimal")
        return compute_optimal(C, constants)

    w = ChinchillaExplorer(my_loss, my_optimal)
    assert w.message == "" and "optimal" in calls and "loss" in calls
    calls.clear()
    w.budget = 1e20
    assert calls  # called again for the new budget
    assert w.optimum[:2] == pytest.approx(compute_optimal(1e20, HOFFMANN_2022))


def test_a_loss_written_for_one_number_at_a_time_also_works():
    def scalar_loss(N, D, constants):
        return constants["E"] + constants["A"] / math.pow(N, constants["alpha"]) + constants["B"] / math.pow(
            D, constants["beta"])

    w = ChinchillaExplorer(scalar_loss)
    assert w.message == ""
    assert list(curve(w).y) == pytest.approx(list(chinchilla_loss(N_GRID, 5.76e23 / (6 * N_GRID), HOFFMANN_2022)))


def test_unimplemented_functions_fall_back_to_the_reference_with_a_notice():
    def chinchilla_loss_exercise(N, D, constants):
        raise NotImplementedError

    def compute_optimal_exercise(C, constants):
        raise NotImplementedError

    w = ChinchillaExplorer(chinchilla_loss_exercise, compute_optimal_exercise)
    assert "Your chinchilla_loss_exercise is not implemented yet" in w.message
    assert "Your compute_optimal_exercise is not implemented yet" in w.message
    assert "reference chinchilla_loss" in w.message and "reference compute_optimal" in w.message
    assert "not implemented yet" in html.unescape(w.notice.value)
    assert w.optimum[:2] == pytest.approx(compute_optimal(5.76e23, HOFFMANN_2022))
    assert list(curve(w).y) == pytest.approx(list(chinchilla_loss(N_GRID, 5.76e23 / (6 * N_GRID), HOFFMANN_2022)))


@pytest.mark.parametrize(
    "bad_loss, problem",
    [
        (lambda N, D, c: N * math.nan, "returned nan"),
        (lambda N, D, c: N * math.inf, "returned inf"),
        (lambda N, D, c: 2.0, "returned shape ()"),
        (lambda N, D, c: "loss", "not numbers"),
        (lambda N, D, c: c["E"] + c["A"] / N ** c["beta"] + c["B"] / D ** c["alpha"], "but the law gives"),
        (lambda N, D, c: c["missing"], "KeyError"),
    ],
)
def test_a_bad_loss_shows_a_warning_and_draws_the_reference(bad_loss, problem):
    w = ChinchillaExplorer(bad_loss)
    assert problem in w.message and "reference chinchilla_loss" in w.message
    assert w.message.startswith("⚠")
    expected = chinchilla_loss(N_GRID, 5.76e23 / (6 * N_GRID), HOFFMANN_2022)
    assert list(curve(w).y) == pytest.approx(list(expected))
    assert np.isfinite(w.optimum).all()


@pytest.mark.parametrize(
    "bad_optimal, problem",
    [
        (lambda C, c: (math.nan, math.nan), "positive number"),
        (lambda C, c: (-1.0, 1.0), "positive number"),
        (lambda C, c: compute_optimal(C, c)[0], "not a pair"),
        (lambda C, c: (1e9, 1e12), "not the budget"),  # 6·N·D != C
        (lambda C, c: (C / 6 / 1e12, 1e12), "not the minimum"),  # on budget, but not optimal
        (lambda C, c: compute_optimal(C, c)[::-1], "not the minimum"),  # (D, N): 6·N·D is still C
        (lambda C, c: ("big", 1.0), "not a number"),
        (lambda C, c: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_a_bad_optimum_shows_a_warning_and_marks_the_reference(bad_optimal, problem):
    w = ChinchillaExplorer(optimal_fn=bad_optimal)
    assert problem in w.message and "reference compute_optimal" in w.message
    assert w.optimum[:2] == pytest.approx(compute_optimal(5.76e23, HOFFMANN_2022))
    assert w.figure.data[2].x[0] == pytest.approx(w.optimum[0])


def test_a_near_optimum_is_drawn_and_a_farther_one_is_not():
    def off_by(factor):
        def optimal(C, constants):
            n, _ = compute_optimal(C, constants)
            return n * factor, C / (6 * n * factor)
        return optimal

    assert ChinchillaExplorer(optimal_fn=off_by(1.01)).message == ""  # the U is flat at its bottom
    assert "not the minimum" in ChinchillaExplorer(optimal_fn=off_by(1.05)).message


def test_the_widget_judges_as_the_exercise_does_at_a_drawing_tolerance():
    """One definition of a right loss law: the plot takes what is close enough to draw, the check is exact."""
    def nearly(N, D, constants):
        return chinchilla_loss(N, D, constants) * (1 + 1e-6)

    assert ChinchillaExplorer(nearly).message == ""
    with pytest.raises(ExerciseFailure) as caught:
        check(nearly, exercise="chinchilla_loss")
    assert caught.value.key == "values"


def test_the_warning_follows_the_budget():
    def small_budgets_only(C, constants):
        if C > 1e22:
            raise OverflowError("too big")
        return compute_optimal(C, constants)

    w = ChinchillaExplorer(optimal_fn=small_budgets_only, budget=1e20)
    assert w.message == ""
    w.budget = 1e24
    assert "OverflowError: too big" in w.message
    w.budget = 1e21
    assert w.message == "" and w.notice.value == ""


@pytest.mark.parametrize("bad", [0, -1e20, math.nan, math.inf, 1e17, 1e27, "1e20", True, None])
def test_a_bad_budget_is_refused_and_changes_nothing(bad):
    w = ChinchillaExplorer()
    before = w.optimum
    with pytest.raises(ValueError, match="compute budget"):
        w.budget = bad
    assert w.budget == 5.76e23 and w.optimum == before
    with pytest.raises(ValueError, match="compute budget"):
        ChinchillaExplorer(budget=bad)


def test_an_unknown_constant_set_is_refused():
    w = ChinchillaExplorer()
    with pytest.raises(ValueError, match="Hoffmann et al. 2022"):
        w.constants_name = "Kaplan 2020"
    assert w.constants_name == HOFFMANN
    with pytest.raises(ValueError, match="unknown constant set"):
        ChinchillaExplorer(constants_name="Kaplan 2020")


def test_the_figure_is_built_with_its_data():
    """A FigureWidget in a VBox keeps only its last update before display: the first state is the data."""
    w = ChinchillaExplorer()
    assert len(curve(w).x) == len(N_GRID) == 201
    assert w.figure.layout.xaxis.type == "log"
    assert w.figure in w.children


@pytest.mark.parametrize(
    "value, text",
    [(70e9, "70B"), (1.4e12, "1.4T"), (32.19e9, "32.2B"), (850e6, "850M"), (12_500, "12.5K"),
     (2.5e15, "2,500T"), (7, "7")],
)
def test_human_units(value, text):
    assert human(value) == text


def test_flops_in_short_scientific_notation():
    assert flops(6 * 70e9 * 1.4e12) == "5.9e23"
    assert flops(6 * 280e9 * 300e9) == "5.0e23"
    assert flops(9.96e20) == "1.0e21"
