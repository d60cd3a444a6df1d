"""A run's cost derived from 6ND, a chip's speed and a price, checked against what papers report; and
what serving costs, per million tokens, at each measured precision."""
import pytest

from course_lib.cost import PUBLISHED_RUNS, price_per_million_tokens, training_cost
from course_lib.inference import PrecisionRun
from course_lib.widgets.cost import CostCalculator
from course_lib.widgets.inference import InferenceCost


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


def test_price_per_million_tokens_is_the_hourly_price_over_tokens_per_hour():
    # $3.60 an hour at 1,000 tokens/s: 3.6M tokens an hour, so $1 a million.
    assert price_per_million_tokens(3.6, 1000) == pytest.approx(1.0)
    assert price_per_million_tokens(0, 50) == 0
    for price, speed, named in ((-1, 10, "price_per_hour"), (1, 0, "tokens_per_second")):
        with pytest.raises(ValueError, match=named):
            price_per_million_tokens(price, speed)


def run(precision, speeds, megabytes, agreement, reply="Paris."):
    return PrecisionRun(precision, "cpu", tuple(speeds), int(megabytes * 1e6), agreement, 1000, reply)


def test_the_inference_table_prices_each_precision_and_the_caption_reads_the_spread():
    runs = [run("float32", [38, 40, 41], 538, 1.0), run("int8", [80, 84, 90], 135, 0.99),
            run("bfloat16", [37, 41, 45], 269, 0.97, "Paris, <b>the</b> capital.")]
    cost = InferenceCost(runs, price_per_hour=3.6)
    assert cost.prices == pytest.approx([1e6 / (40 * 1000), 1e6 / (84 * 1000), 1e6 / (41 * 1000)])
    assert "$25.00" in cost.table.value and "&lt;b&gt;the&lt;/b&gt;" in cost.table.value
    # int8: 84 / 40 = 2.10x, its slowest run above float32's fastest; bfloat16's runs overlap float32's.
    assert "2.10x float32's speed (runs 1.95x to 2.37x): faster" in cost.caption.value
    assert "no clear difference" in cost.caption.value.split("bfloat16")[1]
    assert "at 10 of 1,000 positions (1.0%)" in cost.caption.value
    assert [list(bar.y) for bar in cost.figure.data[1:]] == [[538, 135, 269], [100, 99, 97]]
    cost.price.value = -1
    assert "price_per_hour" in cost.notice.value and "$25.00" in cost.table.value  # the last valid prices stay
    with pytest.raises(ValueError, match="float32 run first"):
        InferenceCost(runs[1:])
