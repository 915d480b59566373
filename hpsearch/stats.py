"""Statistics of repeated runs: intervals, differences from the best, per-choice effects (scipy).

A GAN design's objective moves with the training seed and the evaluation batch, so a
ranking of designs is a ranking of noisy measurements. Each configuration measured n times
(n training seeds) gets its mean, SD and a 95% t interval; each is compared with the best
by Welch's t interval of the difference of means (no equal-variance assumption), and two
whose interval of difference contains 0 are reported as not distinguishable. Nothing here
is hand-written statistics: the distributions and tests are scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """n measurements of one configuration: mean, sample SD and the 95% t interval of the mean (NaN for n < 2)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float

    def sentence(self, digits: int = 3) -> str:
        """e.g. "5.3 [4.9, 5.7] (95% CI, 5 seeds)"."""
        seeds = f"{self.n} seed{'s' if self.n != 1 else ''}"
        if self.n < 2:
            return f"{self.mean:.{digits}g} (1 seed: no interval)"
        return f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}] (95% CI, {seeds})"


@dataclass(frozen=True)
class Difference:
    """mean(a) − mean(b) with Welch's 95% interval; distinguishable when the interval excludes 0."""

    mean: float
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return bool(self.low > 0 or self.high < 0)


def summarize(values: Sequence[float]) -> Summary:
    """The mean, SD and 95% t interval of finite measurements.

    Raises:
        ValueError: no finite value.
    """
    kept = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if kept.size == 0:
        raise ValueError("no finite measurement to summarize")
    mean = float(kept.mean())
    if kept.size < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(kept.std(ddof=1))
    low, high = stats.t.interval(LEVEL, kept.size - 1, loc=mean, scale=stats.sem(kept)) if sd > 0 else (mean, mean)
    return Summary(int(kept.size), mean, sd, float(low), float(high))


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """mean(a) − mean(b) and Welch's 95% interval (NaN bounds when either side has fewer than 2 values)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mean = float(xa.mean() - xb.mean())
    if xa.size < 2 or xb.size < 2:
        return Difference(mean, math.nan, math.nan)
    if xa.std(ddof=1) == 0 and xb.std(ddof=1) == 0:  # no spread at all: the difference is what it is
        return Difference(mean, mean, mean)
    ci = stats.ttest_ind(xa, xb, equal_var=False).confidence_interval(LEVEL)
    return Difference(mean, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Ranked:
    """One configuration in a confirmed ranking: its summary and its difference from the best (None for the best)."""

    name: str
    summary: Summary
    versus_best: Difference | None


def rank(measurements: Mapping[str, Sequence[float]]) -> list[Ranked]:
    """Configurations by mean (lowest first, the objectives are minimized), each compared with the first.

    Raises:
        ValueError: a configuration without a finite measurement.
    """
    summaries = {name: summarize(values) for name, values in measurements.items()}
    order = sorted(summaries, key=lambda name: summaries[name].mean)
    best = [v for v in measurements[order[0]] if math.isfinite(v)] if order else []
    return [Ranked(name, summaries[name], None if i == 0 else
                   difference([v for v in measurements[name] if math.isfinite(v)], best))
            for i, name in enumerate(order)]


def sentence(entry: Ranked, best: Ranked, objective: str) -> str:
    """One finding worded from the numbers.

    e.g. "cbn_linear + concat: class_fid 5.6 [5.0, 6.2] (95% CI, 5 seeds): not distinguishable
    from cbn_linear + projection (difference +0.3 [-0.4, +1.0])".
    """
    head = f"{entry.name}: {objective} {entry.summary.sentence()}"
    diff = entry.versus_best
    if diff is None:
        return f"{head}: the lowest mean"
    if math.isnan(diff.low):
        return f"{head}: too few runs to compare with {best.name}"
    verdict = "worse than" if diff.distinguishable and diff.mean > 0 else (
        "better than" if diff.distinguishable else "not distinguishable from")
    return f"{head}: {verdict} {best.name} (difference {diff.mean:+.3g} [{diff.low:+.3g}, {diff.high:+.3g}])"


def effects(param: str, groups: Mapping[object, Sequence[float]]) -> list[Ranked]:
    """Each value of a searched choice (e.g. `g_cond`) ranked by its runs' mean, with its difference from the best."""
    return rank({f"{param}={value}": values for value, values in groups.items()})


@dataclass(frozen=True)
class Noise:
    """The objective's spread between evaluation batches of one generator, pooled over several generators.

    Attributes:
        sd: pooled SD (each generator's values about its own mean); low, high: its 95% interval (chi-square).
        df: degrees of freedom (values minus generators); generators: how many were re-measured.
        relative: sd / the mean of all values.
    """

    sd: float
    low: float
    high: float
    df: int
    generators: int
    relative: float

    @property
    def gap(self) -> float:
        """The smallest difference between two single measurements that evaluation noise alone explains
        less than 5% of the time: 1.96 · √2 · sd (both sides of a gap carry the noise)."""
        return float(stats.norm.ppf(0.5 + LEVEL / 2) * math.sqrt(2) * self.sd)

    def sentence(self, objective: str) -> str:
        return (f"{objective} SD between evaluation batches {self.sd:.3g} [{self.low:.3g}, {self.high:.3g}] "
                f"(95% CI; {self.relative:.1%} of the mean; {self.generators} generators, {self.df} df)")


def pooled_noise(groups: Sequence[Sequence[float]]) -> Noise | None:
    """The pooled within-generator SD of repeated measurements (None without a group of 2 or more finite values)."""
    kept = [np.asarray([v for v in g if math.isfinite(v)], dtype=float) for g in groups]
    kept = [g for g in kept if g.size >= 2]
    if not kept:
        return None
    df = sum(g.size - 1 for g in kept)
    sd = math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in kept) / df)
    low = sd * math.sqrt(df / stats.chi2.ppf(0.5 + LEVEL / 2, df))
    high = sd * math.sqrt(df / stats.chi2.ppf(0.5 - LEVEL / 2, df))
    mean = float(np.concatenate(kept).mean())
    return Noise(sd, float(low), float(high), df, len(kept), sd / abs(mean) if mean else math.nan)
