"""Racing: spend training seeds only where they decide something, and say how sure the answer is.

A fixed confirmation (top K × N seeds) trains a clearly worse candidate as often as the two
that are close and stops at N whether or not the question is settled. A race (irace's
F-race, SMAC3's intensification) runs every candidate on the same first seeds, then one more
seed per round for the candidates still in it, and after each round drops every candidate
that a one-sided t test finds worse than the current leader (the lowest mean).

Error control, the promise a user relies on: over the whole race, the chance of ever
dropping the true best is at most 1 − confidence = α. Round r tests at α_r = α / (r (r + 1)),
which sums to α over any number of rounds (so a race extended with more seeds keeps its
promise and its past decisions), and within a round each comparison with the leader is tested at
α_r / (K − 1), K the candidates the race started with (Bonferroni: the leader is chosen by the
data, so the true best is at risk against every other candidate, not one fixed reference; the
survivors of a round are chosen by the data too, so their count would not do). A candidate whose
run fails (diverged) leaves the race, and those dropped only for being worse than it come back.
`tests/test_racing.py` measures the rate by simulation.

The race stops when one candidate is left ("separated"), when every survivor is equivalent
to the leader within a relative margin (two one-sided tests at the same level: "equivalent
within 2%"), or when the next round would pass `max_seeds` per candidate or `budget` runs in
all ("budget spent": the survivors are named as not separated). Run i of every candidate uses
the same seeds (paired); whether the test pairs the differences is a setting, because pairing
only helps where outcomes of one seed correlate across configurations, and costs degrees of
freedom (n - 1 against up to 2n - 2) where they do not. On digits they do not (the paired
differences spread as much as unpaired ones, `benchmarks/ground_truth.py truth`), so Welch's
test is the default.

The state of a race is a pure function of its settings and the runs that exist (`replay`), so
a race killed at any point continues from its runs, and several workers can advance it.
Nothing here trains or touches a study: `hpsearch.search.confirm` does.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np
from scipy import stats

K = TypeVar("K", bound=Hashable)

Stop = Literal["separated", "equivalent", "budget"]
STOPS: tuple[Stop, ...] = ("separated", "equivalent", "budget")


@dataclass(frozen=True)
class RaceSettings:
    """How a race runs.

    Attributes:
        first: seeds every candidate runs before the first test (at least 2: a t test needs a spread).
        confidence: 1 − the chance of ever dropping the true best over the whole race.
        margin: relative practical margin: survivors all within it of the leader are "equivalent"
            (0: never stop on equivalence).
        max_seeds: seeds per candidate at most.
        budget: runs in all at most (None: only `max_seeds` bounds the race).
        paired: test the per-seed differences (paired t) rather than the two samples (Welch).
    """

    first: int = 2  # defaults from benchmarks/ground_truth.py: the race that matched a fixed 3 x 5 on digits
    confidence: float = 0.95
    margin: float = 0.0
    max_seeds: int = 5
    budget: int | None = None
    paired: bool = False  # pairing did not shrink the spread of differences on digits (benchmarks/README.md)

    def __post_init__(self) -> None:
        if not 2 <= self.first <= self.max_seeds:
            raise ValueError(f"first: at least 2 seeds and at most max_seeds ({self.max_seeds}); got {self.first}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence: in [0.5, 1); got {self.confidence}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin: relative, in [0, 1); got {self.margin}")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget: at least 1 run; got {self.budget}")

    def alpha(self, round_: int) -> float:
        """The level of round `round_` (1-based): α / (r (r + 1)), summing to α = 1 − confidence."""
        return (1 - self.confidence) / (round_ * (round_ + 1))

    def to_dict(self) -> dict[str, object]:
        return {"first": self.first, "confidence": self.confidence, "margin": self.margin,
                "max_seeds": self.max_seeds, "budget": self.budget, "paired": self.paired}


@dataclass(frozen=True)
class Dropped(Generic[K]):
    """Why a candidate left the race: in which round, at how many seeds, worse than whom, with which p."""

    round: int
    seeds: int
    leader: K | None
    p: float
    failed: bool = False  # a run ended without a finite value (diverged, failed)


@dataclass
class RaceState(Generic[K]):
    """Where a race stands.

    Attributes:
        survivors: candidates still in the race, lowest mean first (the first is the leader).
        dropped: candidate → why it left.
        rounds: tests done so far.
        seeds: the seeds each survivor has (or is running, while `needed`).
        needed: (candidate, seed index) runs the race waits for; empty when stopped.
        stop: why it stopped (None while it runs).
        spent: runs the race has used (every candidate's existing runs up to the seeds it reached).
    """

    survivors: list[K]
    dropped: dict[K, Dropped[K]] = field(default_factory=dict)
    rounds: int = 0
    seeds: int = 0
    needed: list[tuple[K, int]] = field(default_factory=list)
    stop: Stop | None = None
    spent: int = 0

    @property
    def leader(self) -> K:
        return self.survivors[0]


def replay(settings: RaceSettings, candidates: Sequence[K], runs: Mapping[K, Mapping[int, float]]) -> RaceState[K]:
    """The race's state given the runs that exist: every round that its runs complete is tested in order.

    Args:
        candidates: in the race, in a fixed order (ties in the mean keep it).
        runs: candidate → {seed index: value}; non-finite values are runs that failed. Runs beyond a
            round a candidate reached are ignored, so a run finished after its candidate was dropped
            changes nothing.
    """
    survivors, n, rounds = list(candidates), settings.first, 0
    dropped: dict[K, Dropped[K]] = {}
    while True:
        missing = [(c, i) for c in survivors for i in range(n) if i not in runs.get(c, {})]
        if missing:
            return _state(survivors, dropped, rounds, n, runs, missing, None)
        rounds += 1
        values = {c: np.array([runs[c][i] for i in range(n)], dtype=float) for c in survivors}
        failed = [c for c in survivors if not np.isfinite(values[c]).all()]
        if failed:  # out of the race; who was dropped only for being worse than it comes back
            for c in failed:
                dropped[c] = Dropped(rounds, n, None, 0.0, failed=True)
            back = [c for c, d in dropped.items() if d.leader in failed]
            for c in back:
                del dropped[c]
            survivors = [c for c in candidates if c not in dropped]
            if back:  # they run the seeds they missed before this round is tested, if the budget allows
                catch_up = sum(1 for c in back for i in range(n) if i not in runs.get(c, {}))
                if settings.budget is not None and _spent(survivors, dropped, n, runs) + catch_up > settings.budget:
                    return _state(survivors, dropped, rounds, n, runs, [], "budget")
                rounds -= 1
                continue
        survivors.sort(key=lambda c: (values[c].mean(), candidates.index(c)))
        level = settings.alpha(rounds) / max(1, len(candidates) - 1)
        if len(survivors) > 1:
            leader = survivors[0]
            for c in survivors[1:]:
                p = _p_worse(values[c], values[leader], settings.paired)
                if p < level:
                    dropped[c] = Dropped(rounds, n, leader, p)
            survivors = [c for c in survivors if c not in dropped]
        if len(survivors) <= 1:
            return _state(survivors, dropped, rounds, n, runs, [], "separated")
        if settings.margin > 0 and all(_p_not_equivalent(values[c], values[survivors[0]], settings.margin,
                                                         settings.paired) < level for c in survivors[1:]):
            return _state(survivors, dropped, rounds, n, runs, [], "equivalent")
        spent = _spent(survivors, dropped, n, runs)
        if n + 1 > settings.max_seeds or (settings.budget is not None and spent + len(survivors) > settings.budget):
            return _state(survivors, dropped, rounds, n, runs, [], "budget")
        n += 1


def _state(survivors: list[K], dropped: dict[K, Dropped[K]], rounds: int, n: int,
           runs: Mapping[K, Mapping[int, float]], needed: list[tuple[K, int]], stop: Stop | None) -> RaceState[K]:
    return RaceState(survivors, dropped, rounds, n, needed, stop, _spent(survivors, dropped, n, runs))


def _spent(survivors: Sequence[K], dropped: Mapping[K, Dropped[K]], n: int, runs: Mapping[K, Mapping[int, float]]
           ) -> int:
    """Runs the race has used: each candidate's existing runs up to the seeds it reached (a run planned but not
    yet done, or one past a candidate's drop, is not counted)."""
    reached = {**{c: n for c in survivors}, **{c: d.seeds for c, d in dropped.items()}}
    return sum(1 for c, seeds in reached.items() for i in range(seeds) if i in runs.get(c, {}))


def _p_worse(x: np.ndarray, leader: np.ndarray, paired: bool) -> float:
    """One-sided p-value of "x's mean is not above the leader's" (small: x is worse)."""
    return _p_shifted(x, leader, 0.0, paired, "greater")


def _p_not_equivalent(x: np.ndarray, leader: np.ndarray, margin: float, paired: bool) -> float:
    """Two one-sided tests (TOST) of |mean(x) − mean(leader)| < margin · |mean(leader)|: the larger p."""
    delta = margin * abs(float(leader.mean()))
    return max(_p_shifted(x, leader, -delta, paired, "greater"), _p_shifted(x, leader, delta, paired, "less"))


def _p_shifted(x: np.ndarray, y: np.ndarray, shift: float, paired: bool, side: str) -> float:
    """p-value of the t test of mean(x − y) against `shift` on the given side ("greater": x − y > shift)."""
    if paired:
        d = x - y - shift
        mean, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size), d.size - 1
    else:
        vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        mean, se = float(x.mean() - y.mean() - shift), math.sqrt(vx + vy)
        df = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1)) if se > 0 else 1.0
    if se == 0:  # no spread: the sign decides
        return 0.0 if (mean > 0 if side == "greater" else mean < 0) else 1.0
    t = mean / se
    return float(stats.t.sf(t, df) if side == "greater" else stats.t.cdf(t, df))


def p_best(runs: Mapping[K, Sequence[float]], draws: int = 20_000, seed: int = 0) -> dict[K, float] | None:
    """For each candidate, the probability that its true mean is the lowest, given its runs.

    The posterior of a normal model with one variance shared by all candidates and flat priors
    (μ_c | σ ~ N(mean_c, σ²/n_c), σ² ~ SS / χ²_df with df = Σ (n_c − 1)), by Monte Carlo with a
    fixed seed so that status and the report print the same figure. A shared variance because a
    race gives each candidate 2–10 runs: a variance per candidate from 3 runs has 2 degrees of
    freedom, whose heavy tails would make every candidate look possible; the training-seed SDs
    measured on digits differ between configurations by less than their own uncertainty.
    Failed runs (non-finite values) are left out; a candidate without a finite run gets 0.

    Returns:
        candidate → probability (they sum to 1), or None when no candidate has two finite runs.
    """
    kept = {c: np.asarray([v for v in vs if math.isfinite(v)], dtype=float) for c, vs in runs.items()}
    live = {c: v for c, v in kept.items() if v.size}
    df = sum(v.size - 1 for v in live.values())
    if df < 1:
        return None
    ss = sum(float(((v - v.mean()) ** 2).sum()) for v in live.values())
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(ss / rng.chisquare(df, size=draws))  # (draws,)
    names = list(live)
    means = np.array([live[c].mean() for c in names])  # (C,)
    scale = np.array([1 / math.sqrt(live[c].size) for c in names])  # (C,)
    mu = means[None, :] + sigma[:, None] * scale[None, :] * rng.standard_normal((draws, len(names)))  # (draws, C)
    wins = np.bincount(mu.argmin(axis=1), minlength=len(names)) / draws
    result = {c: 0.0 for c in runs}
    result.update({c: float(w) for c, w in zip(names, wins, strict=True)})
    return result

