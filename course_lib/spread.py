"""Reading a difference between runs over seeds: one seed's number is not the whole story.

A comparison is said to show a difference only when the two ranges over seeds (lowest to highest)
do not overlap; otherwise it says "no clear difference". With three seeds that is a modest bar,
but an honest one: the prose never reads more into a measurement than its spread allows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float
    seeds: int

    def __str__(self) -> str:
        if self.seeds == 1:
            return f"{self.mean:.2f} (one seed)"
        return f"{self.mean:.2f} ({self.low:.2f} to {self.high:.2f} over {self.seeds} seeds)"


def spread(values: Sequence[float]) -> Spread:
    """The mean, lowest and highest of one measurement over seeds."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread needs at least one value")
    return Spread(sum(values) / len(values), min(values), max(values), len(values))


def whiskers(spreads: Sequence[Spread], **style) -> dict:
    """Plotly's error_y (or error_x) for marks at the means: whiskers from the lowest seed to the highest."""
    return dict(type="data", symmetric=False, array=[s.high - s.mean for s in spreads],
                arrayminus=[s.mean - s.low for s in spreads], **style)


def band(xs: Sequence[float], spreads: Sequence[Spread]) -> tuple[list[float], list[float]]:
    """The outline (x, y) of a shaded band from the lowest seed to the highest along a line, for a
    filled plotly trace (fill="toself"): along the highs, then back along the lows."""
    xs, spreads = list(xs), list(spreads)
    return xs + xs[::-1], [s.high for s in spreads] + [s.low for s in spreads][::-1]


def compare(what: str, first: str, first_values: Sequence[float], second: str,
            second_values: Sequence[float]) -> str:
    """A sentence comparing one measurement of two kinds of run over seeds: which is higher, and
    only where the seeds' ranges do not overlap; otherwise "no clear difference" (and with a single
    seed on either side, no verdict at all)."""
    a, b = spread(first_values), spread(second_values)
    figures = f"{what}: {first} {a}, {second} {b}"
    if min(a.seeds, b.seeds) < 2:
        return f"{figures}. One seed has no spread to judge a difference by: run more seeds."
    for higher, lower, name in ((a, b, first), (b, a, second)):
        if higher.low > lower.high:
            return f"{figures}. {name[:1].upper()}{name[1:]} is higher, beyond the spread of the seeds."
    return f"{figures}. No clear difference: the seeds' ranges overlap."


def over_seeds(runs: Sequence[dict], setting: str, value) -> dict:
    """A stored sweep's runs grouped by `setting` (in the order first met), each group the list of
    `value(run)` over its seeds: what spread and compare take."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(run[setting], []).append(value(run))
    return groups
