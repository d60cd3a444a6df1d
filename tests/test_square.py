"""SquareExplorer, driven from Python the way a notebook would: the N×N grid under the slider, the
power-law fits (the learner's, or least squares with a notice), and refusals of bad measurements."""
import html
import math

import numpy as np
import pytest

from course_lib.widgets.square import SquareExplorer, grid_cells

LENGTHS = [64, 128, 256, 512, 1024]
DEVICE = "Intel Xeon (cpu, 2 cores)"


def power_law(exponent, constant=1e-9, lengths=LENGTHS):
    return [constant * n**exponent for n in lengths]


def explorer(series=None, **kwargs):
    series = series or {"naive attention, time (s)": power_law(2), "fused attention, time (s)": power_law(1.1, 1e-7)}
    return SquareExplorer(LENGTHS, series, DEVICE, **kwargs)


def trace(w, name):
    return next(t for t in w.cost_figure.data if t.name == name)


def fit_line(w, series):
    """The fitted line's trace of a series: its legend name starts with the series' name."""
    return next(t for t in w.cost_figure.data if t.name.startswith(f"{series}: slope"))


def notice(w):
    return html.unescape(w.notice.value)


def least_squares(xs, ys):
    exponent, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
    return exponent, math.exp(intercept)


# ---- the grid ----


def test_grid_cells_count_the_square_and_its_causal_half():
    assert grid_cells(1) == (1, 1)
    assert grid_cells(16) == (256, 136)
    for n in (3, 16, 100):
        total, causal = grid_cells(n)
        assert causal == sum(1 for i in range(n) for j in range(n) if j <= i)
        assert grid_cells(2 * n)[0] == 4 * total


def test_the_slider_redraws_the_grid_the_caption_and_the_marker():
    w = explorer()
    assert (w.slider.min, w.slider.max, w.slider.value, w.n) == (1, 1024, 64, 64)
    w.slider.value = 16
    z = w.grid_figure.data[0].z
    assert len(z) == 16 and all(len(row) == 16 for row in z)
    assert [[bool(cell) for cell in row] for row in z] == [[j <= i for j in range(16)] for i in range(16)]
    assert sum(map(sum, z)) == 136
    assert "N = 16: 256 cells (136 in the causal half); double N and the cells ×4" in w.caption.value
    marker = w.cost_figure.layout.shapes[0]
    assert (marker.x0, marker.x1, marker.label.text) == (16, 16, "N = 16")
    w.n = 3
    assert sum(map(sum, w.grid_figure.data[0].z)) == 6 and w.cost_figure.layout.shapes[0].x0 == 3
    assert list(w.grid_figure.layout.xaxis.range) == [-0.5, 2.5]


def test_above_64_per_side_the_grid_is_a_filled_square_and_says_so():
    w = explorer(n=64)
    assert sum(map(sum, w.grid_figure.data[0].z)) == grid_cells(64)[1]
    assert w.grid_figure.layout.shapes == () and "filled square" not in w.caption.value
    w.n = 1000
    assert w.grid_figure.data[0].z is None
    square, causal_half = w.grid_figure.layout.shapes
    assert (square.x0, square.y0, square.x1, square.y1) == (-0.5, -0.5, 999.5, 999.5)
    assert causal_half.path == "M -0.5,-0.5 L -0.5,999.5 L 999.5,999.5 Z"  # j <= i: below the diagonal
    assert "N = 1,000: 1,000,000 cells (500,500 in the causal half)" in w.caption.value
    assert "too small to see" in w.caption.value and "filled square" in w.caption.value
    w.n = 10
    assert w.grid_figure.layout.shapes == () and "filled square" not in w.caption.value


@pytest.mark.parametrize("bad", [0, -3, 1025, 2.5, True, "16"])
def test_a_bad_n_is_refused_and_changes_nothing(bad):
    w = explorer(n=16)
    caption, z = w.caption.value, w.grid_figure.data[0].z
    with pytest.raises(ValueError, match="N must be a whole number from 1 to 1024"):
        w.n = bad
    assert w.n == 16 and w.caption.value == caption and w.grid_figure.data[0].z == z
    with pytest.raises(ValueError, match="N must be a whole number from 1 to 1024"):
        explorer(n=bad)


def test_max_n_sets_the_slider_and_the_start_stays_inside_it():
    assert explorer(max_n=4096).slider.max == 4096
    w = explorer(max_n=32)
    assert (w.slider.max, w.n) == (32, 32)
    with pytest.raises(ValueError, match="max_n must be a whole number"):
        explorer(max_n=0)


# ---- the cost plot ----


@pytest.mark.parametrize("exponent", [1.0, 1.5, 2.0, 2.7])
def test_fits_on_exact_power_laws_recover_the_exponent_and_draw_it(exponent):
    w = explorer({"cost": power_law(exponent, 3e-8)})
    fitted, constant = w.fits["cost"]
    assert fitted == pytest.approx(exponent) and constant == pytest.approx(3e-8)
    line = fit_line(w, "cost")
    assert line.name == f"cost: slope {exponent:.2f}"
    assert list(line.x) == [64, 1024] and list(line.y) == pytest.approx(power_law(exponent, 3e-8, [64, 1024]))
    assert list(trace(w, "cost").y) == pytest.approx(power_law(exponent, 3e-8))
    assert notice(w) == ""


def test_reference_slopes_start_at_the_first_point_of_the_first_series():
    w = explorer()
    y0 = power_law(2)[0]
    for slope, name in [(1, "slope 1 (linear)"), (2, "slope 2 (quadratic)")]:
        line = trace(w, name)
        assert list(line.x) == [64, 1024]
        assert list(line.y) == pytest.approx([y0, y0 * 16**slope])
        assert line.line.dash == "dash"


def test_the_plot_names_the_device_and_uses_log_axes():
    w = explorer(cost_label="time per call (s)")
    assert DEVICE in w.cost_figure.layout.title.text
    assert w.cost_figure.layout.yaxis.title.text == "time per call (s)"
    assert w.cost_figure.layout.xaxis.type == w.cost_figure.layout.yaxis.type == "log"
    low, high = w.cost_figure.layout.xaxis.range  # the slider's whole range fits: the marker never leaves
    assert 10**low < 1 and 10**high > 1024


def test_memory_goes_on_a_second_plot_with_its_own_fits_and_references():
    memory = {"naive attention, memory (MiB)": power_law(2, 1e-5), "fused attention, memory (MiB)": power_law(1, 1e-3)}
    w = explorer(memory=memory)
    assert w.fits["naive attention, memory (MiB)"][0] == pytest.approx(2)
    assert w.fits["fused attention, memory (MiB)"][0] == pytest.approx(1)
    assert set(w.fits) == {"naive attention, time (s)", "fused attention, time (s)", *memory}
    assert fit_line(w, "naive attention, memory (MiB)").yaxis == "y2"
    assert w.cost_figure.layout.yaxis2.title.text == "peak memory (MiB)"
    references = [t for t in w.cost_figure.data if t.name == "slope 2 (quadratic)"]
    assert [t.yaxis for t in references] == ["y", "y2"]
    assert [t.showlegend for t in references] == [True, False]  # one legend entry for both plots
    assert list(references[1].y) == pytest.approx([1e-5 * 64**2, 1e-5 * 1024**2])


# ---- the learner's fit and the fallback ----


def test_the_learners_fit_is_used_when_it_works():
    calls = []

    def fit_power_law(xs, ys):  # through the end points: a real fit, a little off least squares
        calls.append((xs, ys))
        exponent = math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0])
        return exponent + 0.01, ys[0] / xs[0] ** exponent

    times = [1.0e-6, 4.1e-6, 1.7e-5, 6.4e-5, 2.6e-4]
    w = explorer({"naive": times}, fit=fit_power_law)
    assert calls == [([64.0, 128.0, 256.0, 512.0, 1024.0], times)]
    expected = fit_power_law(*calls[0])
    assert w.fits["naive"] == pytest.approx(expected)
    assert w.fits["naive"] != pytest.approx(least_squares(LENGTHS, times))
    assert fit_line(w, "naive").name == f"naive: slope {expected[0]:.2f}"
    assert notice(w) == ""


def test_an_unimplemented_fit_falls_back_to_least_squares_with_a_notice():
    def fit_power_law(xs, ys):
        raise NotImplementedError

    w = explorer(fit=fit_power_law)
    assert w.fits["naive attention, time (s)"] == pytest.approx((2, 1e-9))
    assert w.fits["fused attention, time (s)"] == pytest.approx((1.1, 1e-7))
    assert ("Your fit_power_law is not implemented yet (for naive attention, time (s) and fused attention, "
            "time (s)). Their fitted lines use a least-squares fit in log space instead.") in notice(w)
    assert "⚠" not in notice(w)


def returning(value):
    def fit_power_law(xs, ys):
        return value
    return fit_power_law


def raising(xs, ys):
    raise ZeroDivisionError("float division by zero")


@pytest.mark.parametrize("bad_fit, problem", [
    (raising, "raised ZeroDivisionError: float division by zero"),
    (returning(float("nan")), "returned nan, not a pair (exponent, constant)"),
    (returning((float("nan"), 1e-9)), "returned nan as the exponent"),
    (returning((2.0, math.inf)), "returned inf as the constant"),
    (returning(("2", 1e-9)), "returned a str as the exponent, not a number"),
    (returning([2.0, 1e-9, 0.5]), "not a pair (exponent, constant)"),
    (returning(None), "returned None, not a pair"),
    (returning((2.0, -20.7)), "returned the constant -20.7: positive costs need a constant > 0"),
    (returning((1e-9, 2.0)), "misses the points by a factor of about"),  # (constant, exponent): swapped
])
def test_a_bad_fit_shows_a_warning_and_draws_least_squares(bad_fit, problem):
    w = explorer({"naive": power_law(2)}, fit=bad_fit)
    assert w.fits["naive"] == pytest.approx((2, 1e-9))
    assert fit_line(w, "naive").name == "naive: slope 2.00"
    assert f"⚠ Your {bad_fit.__name__} " in notice(w) and problem in notice(w)
    assert "(for naive). Their fitted lines use a least-squares fit in log space instead." in notice(w)


def test_numpy_results_and_a_fit_that_only_fails_on_one_series():
    def fit_power_law(xs, ys):
        if len(xs) < 5:
            raise ValueError("need 5 points")
        return np.array(least_squares(xs, ys))

    w = explorer({"a": power_law(2), "b": [None, *power_law(1, 1e-7)[1:]]}, fit=fit_power_law)
    assert w.fits["a"] == pytest.approx((2, 1e-9)) and w.fits["b"] == pytest.approx((1, 1e-7))
    assert "raised ValueError: need 5 points (for b)" in notice(w)


# ---- missing points and bad input ----


def test_points_that_were_not_measured_are_left_out_of_the_plot_and_the_fit():
    seen = []

    def fit_power_law(xs, ys):
        seen.append(xs)
        return least_squares(xs, ys)

    memory = power_law(2, 1e-5)
    memory[0], memory[-1] = None, float("nan")
    w = explorer({"time": power_law(2)}, memory={"memory": memory}, fit=fit_power_law)
    assert seen == [[64.0, 128.0, 256.0, 512.0, 1024.0], [128.0, 256.0, 512.0]]
    assert list(trace(w, "memory").x) == [128, 256, 512]
    assert w.fits["memory"] == pytest.approx((2, 1e-5))
    assert list(fit_line(w, "memory").x) == [128, 512]
    assert "memory: not measured at N = 64 and 1,024; left out of its points and its fit." in notice(w)
    assert "time:" not in notice(w)


def test_the_reference_slopes_start_at_the_first_measured_point():
    w = explorer({"time": [None, *power_law(2)[1:]]})
    assert list(trace(w, "slope 1 (linear)").y) == pytest.approx([power_law(2)[1] / 2, power_law(2)[1] * 8])


@pytest.mark.parametrize("lengths, series, device, message", [
    ([64], {"t": [1.0]}, DEVICE, "at least 2 input lengths"),
    ([64, 64, 128], {"t": [1.0, 2.0, 3.0]}, DEVICE, "increasing"),
    ([128, 64], {"t": [1.0, 2.0]}, DEVICE, "increasing"),
    ([0, 64], {"t": [1.0, 2.0]}, DEVICE, "positive numbers, got 0"),
    ([None, 64], {"t": [1.0, 2.0]}, DEVICE, "positive numbers, got None"),
    ([64, 128], {"t": [1.0, 2.0, 3.0]}, DEVICE, "'t' has 3 values for 2 lengths"),
    ([64, 128], {"t": [1.0, -2.0]}, DEVICE, "'t' has -2.0 at N = 128: costs must be positive"),
    ([64, 128], {"t": [1.0, 0]}, DEVICE, "'t' has 0 at N = 128"),
    ([64, 128], {"t": [1.0, "2 ms"]}, DEVICE, "'t' has '2 ms' at N = 128"),
    ([64, 128], {"t": [1.0, math.inf]}, DEVICE, "'t' has inf"),
    ([64, 128], {"t": [1.0, None]}, DEVICE, "'t' has 1 measured point"),
    ([64, 128], {}, DEVICE, "at least one named series"),
    ([64, 128], {"": [1.0, 2.0]}, DEVICE, "needs a name"),
    ([64, 128], {"t": [1.0, 2.0]}, "", "device_label must name the device"),
    ([64, 128], {"t": [1.0, 2.0]}, None, "device_label must name the device"),
])
def test_bad_measurements_are_clear_errors(lengths, series, device, message):
    with pytest.raises(ValueError, match=message):
        SquareExplorer(lengths, series, device)


def test_series_and_memory_may_not_share_a_name():
    with pytest.raises(ValueError, match="must not share a name"):
        explorer({"naive": power_law(2)}, memory={"naive": power_law(2)})
