"""Intervals and comparisons of repeated runs, checked against known values and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.stats import difference, effects, rank, sentence, summarize

T_975_2 = 4.302652729911275  # Student t, 2 degrees of freedom, 97.5% quantile (tables)


def test_summary_of_three_values_matches_the_t_table() -> None:
    s = summarize([1.0, 2.0, 3.0, math.nan])  # a NaN (a failed evaluation) is left out
    half = T_975_2 * 1.0 / math.sqrt(3)
    assert (s.n, s.mean, s.sd) == (3, 2.0, 1.0)
    assert s.low == pytest.approx(2 - half, rel=1e-8) and s.high == pytest.approx(2 + half, rel=1e-8)
    assert s.sentence() == "2 [-0.484, 4.48] (95% CI, 3 seeds)"


def test_one_run_has_no_interval_and_none_is_an_error() -> None:
    one = summarize([5.0])
    assert one.n == 1 and math.isnan(one.low) and one.sentence() == "5 (1 seed: no interval)"
    with pytest.raises(ValueError, match="no finite measurement"):
        summarize([math.nan])


def test_the_interval_covers_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)  # fixed: the same 4000 draws every run
    covered = [s.low <= 10.0 <= s.high for s in (summarize(list(rng.normal(10.0, 2.0, 5))) for _ in range(4000))]
    assert 0.94 <= float(np.mean(covered)) <= 0.96


def test_welch_difference_tells_apart_separated_groups_only() -> None:
    apart = difference([6.0, 6.2, 5.9, 6.1], [5.0, 5.1, 4.9, 5.2])
    assert apart.distinguishable and apart.mean == pytest.approx(1.0) and 0 < apart.low < 1.0 < apart.high
    close = difference([5.0, 5.6, 4.8, 5.4], [5.1, 4.9, 5.5, 5.0])
    assert not close.distinguishable and close.low < 0 < close.high
    assert math.isnan(difference([5.0], [4.0, 4.2]).low)


def test_ranking_and_its_sentences() -> None:
    ranked = rank({"cbn + projection": [5.2, 5.3, 5.4], "cbn + concat": [5.1, 5.9, 5.8],
                   "concat + acgan": [9.0, 9.2, 9.1]})
    assert [r.name for r in ranked] == ["cbn + projection", "cbn + concat", "concat + acgan"]
    best, close, worse = ranked
    assert sentence(best, best, "class_fid") == ("cbn + projection: class_fid 5.3 [5.05, 5.55] (95% CI, 3 seeds): "
                                                 "the lowest mean")
    assert "not distinguishable from cbn + projection" in sentence(close, best, "class_fid")
    assert "worse than cbn + projection (difference +3.8" in sentence(worse, best, "class_fid")


def test_effects_of_a_choice_name_each_value() -> None:
    ranked = effects("g_cond", {"concat": [7.0, 7.2, 6.9], "cbn_linear": [5.0, 5.1, 5.2]})
    assert [r.name for r in ranked] == ["g_cond=cbn_linear", "g_cond=concat"]
    assert ranked[1].versus_best is not None and ranked[1].versus_best.distinguishable
