"""Sweep grids and walk-forward splits (spark_jobs/sweep), without Spark."""

from __future__ import annotations

import pytest

from spark_jobs.sweep.grid import GridError, combinations, parse_grid
from spark_jobs.sweep.job import walk_forward_folds


def test_ranges_steps_and_lists():
    grid = parse_grid("trend.ema_fast=5..20, trend.ema_slow=20..60:5, level=0.5|1.5")
    assert grid["trend.ema_fast"] == list(range(5, 21))
    assert grid["trend.ema_slow"] == [20, 25, 30, 35, 40, 45, 50, 55, 60]
    assert grid["level"] == [0.5, 1.5]


def test_the_dual_ma_grid_has_4851_combinations():
    combos = combinations(parse_grid("fast=2..100, slow=2..100"), ("fast", "slow"))
    assert len(combos) == 4851 == 99 * 98 // 2
    assert all(c["fast"] < c["slow"] for c in combos)
    assert combos[0] == {"fast": 2, "slow": 3} and combos[-1] == {"fast": 99, "slow": 100}


@pytest.mark.parametrize("text", ["", "fast", "fast=9..3", "fast=1..5:0", "fast=a|b", "fast=1..3, fast=2..4", "9x=1..2"])
def test_bad_grids_are_refused_with_the_part_quoted(text):
    with pytest.raises(GridError):
        parse_grid(text)


def test_walk_forward_folds_roll_by_one_out_of_sample_unit():
    folds = walk_forward_folds(1000, 6, 1, 4)  # unit = 1000 // 10 = 100
    assert [(f.in_sample, f.out_of_sample) for f in folds] == [
        ((0, 600), (600, 700)), ((100, 700), (700, 800)), ((200, 800), (800, 900)), ((300, 900), (900, 1000))]
    for fold in folds:
        assert fold.in_sample[1] == fold.out_of_sample[0], "out-of-sample starts where in-sample ends"
        assert fold.in_sample[1] - fold.in_sample[0] == 6 * (fold.out_of_sample[1] - fold.out_of_sample[0])
    oos = [f.out_of_sample for f in folds]
    assert all(a[1] == b[0] for a, b in zip(oos, oos[1:], strict=False)), "OOS windows tile without overlap"


def test_walk_forward_needs_enough_bars():
    with pytest.raises(ValueError):
        walk_forward_folds(10, 6, 1, 4)
    with pytest.raises(ValueError):
        walk_forward_folds(1000, 0, 1, 4)
