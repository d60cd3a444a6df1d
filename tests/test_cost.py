"""A run's cost derived from 6ND, a chip's speed and a price: checked against what papers report."""
import pytest

from course_lib.cost import PUBLISHED_RUNS, training_cost
from course_lib.widgets.cost import CostCalculator


def test_six_n_d_matches_the_published_flop_counts():
    for run in PUBLISHED_RUNS:
        assert training_cost(run.parameters, run.tokens).flops == pytest.approx(run.flops, rel=0.05), run.name


def test_llama_405b_gpu_hours_come_out_near_what_meta_reported():
    # The Llama 3 paper reports 30.84M H100 GPU-hours for the 405B model, at 38 to 43% utilisation.
    cost = training_cost(405e9, 15.6e12, utilisation=0.4)
    assert 25e6 < cost.gpu_hours < 32e6
    assert cost.dollars == pytest.approx(cost.gpu_hours * 2.0)
    assert cost.days_on[16_000] == pytest.approx(cost.gpu_hours / 16_000 / 24)


@pytest.mark.parametrize("bad", [dict(parameters=-1), dict(tokens=0), dict(utilisation=1.5), dict(price_per_hour="2")])
def test_bad_settings_are_refused_clearly(bad):
    args = dict(parameters=1e9, tokens=1e10, utilisation=0.4, price_per_hour=2.0) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        training_cost(args.pop("parameters"), args.pop("tokens"), **args)


def test_the_calculator_shows_each_step_and_keeps_its_figures_on_bad_input():
    calculator = CostCalculator()
    assert "the paper reports 3.80e+25 FLOPs" in calculator.caption.value
    assert "million GPU-hours" in calculator.caption.value and "$" in calculator.caption.value
    before = calculator.caption.value
    calculator.price.value = -3
    assert "price_per_hour (dollars per GPU-hour) must be a number &gt; 0" in calculator.notice.value and calculator.caption.value == before
    calculator.price.value = 4.0
    assert calculator.notice.value == "" and calculator.cost.dollars == pytest.approx(calculator.cost.gpu_hours * 4)
    calculator.tokens.value = 1000.0  # a run of one's own: no paper to compare with
    assert calculator.preset.value == "your own" and "the paper reports" not in calculator.caption.value
    calculator.preset.value = "GPT-3 (175B)"
    assert calculator.parameters.value == 175 and "3.14e+23" in calculator.caption.value
