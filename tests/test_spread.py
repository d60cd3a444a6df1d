"""Comparisons over seeds say a difference only where the seeds' ranges do not overlap."""
import pytest

from course_lib.spread import band, compare, over_seeds, spread, whiskers


def test_spread_is_the_mean_and_the_range():
    s = spread([0.5, 0.7, 0.6])
    assert (s.mean, s.low, s.high, s.seeds) == (pytest.approx(0.6), 0.5, 0.7, 3)
    assert str(s) == "0.60 (0.50 to 0.70 over 3 seeds)"
    with pytest.raises(ValueError):
        spread([])


def test_a_difference_is_said_only_beyond_the_spread():
    assert compare("accuracy", "A", [0.8, 0.9], "B", [0.5, 0.6]).endswith("A is higher, beyond the spread of the seeds.")
    assert compare("accuracy", "a", [0.5, 0.6], "b", [0.8, 0.9]).endswith(". B is higher, beyond the spread of the seeds.")
    overlapping = compare("accuracy", "A", [0.64, 0.66, 0.70], "B", [0.60, 0.65, 0.68])
    assert overlapping.endswith("No clear difference: the seeds' ranges overlap.")
    assert "A 0.67 (0.64 to 0.70 over 3 seeds)" in overlapping


def test_a_sweep_is_grouped_by_its_setting_over_seeds():
    runs = [{"diet": "clean", "seed": 0, "loss": 4.7}, {"diet": "junk", "seed": 0, "loss": 5.0},
            {"diet": "clean", "seed": 1, "loss": 4.8}, {"diet": "junk", "seed": 1, "loss": 5.1}]
    groups = over_seeds(runs, "diet", lambda run: run["loss"])
    assert list(groups) == ["clean", "junk"] and groups == {"clean": [4.7, 4.8], "junk": [5.0, 5.1]}


def test_whiskers_and_bands_reach_from_the_lowest_seed_to_the_highest():
    spreads = [spread([1.0, 2.0, 3.0]), spread([4.0, 4.0, 7.0])]
    error = whiskers(spreads, color="#222")
    assert error["array"] == [1.0, 2.0] and error["arrayminus"] == [1.0, 1.0] and error["color"] == "#222"
    xs, ys = band([10, 20], spreads)
    assert xs == [10, 20, 20, 10] and ys == [3.0, 7.0, 4.0, 1.0]


def test_one_seed_gives_no_verdict():
    assert str(spread([0.5])) == "0.50 (one seed)"
    sentence = compare("accuracy", "A", [0.9], "B", [0.1, 0.2])
    assert "higher" not in sentence and "No clear difference" not in sentence and "one seed" in sentence.lower()
