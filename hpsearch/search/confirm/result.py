"""What the confirmation runs say: per configuration n, mean, interval and P(best), the race's stopping reason,
and the findings `hpsearch status` and the report print."""


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from hpsearch.racing import RaceSettings, RaceState, p_best
from hpsearch.search.backend import Backend
from hpsearch.search.confirm.companion import existing_companion, planned_runs
from hpsearch.search.confirm.rounds import race_state
from hpsearch.search.record import TrialRecord, read_trial, read_trials
from hpsearch.search.study_file import LoadedStudy
from hpsearch.stats import Ranked, effects, rank, sentence


@dataclass
class Race:
    """A race's settings and where it stands (`hpsearch.racing`), for status and the report."""

    settings: RaceSettings
    state: RaceState[int]

    def sentence(self, names: Mapping[int, str]) -> str:
        """Why the race stopped (or where it is), e.g. "budget spent: trials 9 and 0 not separated (10 seeds
        each)", then who left it and when."""
        s, state = self.settings, self.state
        who = _and([self._name(names, c) for c in state.survivors])
        if state.stop == "separated" and state.survivors and all(d.failed for d in state.dropped.values()):
            head = f"{who} is the only candidate left: the others' runs failed (no test separated them)"
        elif state.stop == "separated" and state.survivors:
            rounds = f"{state.rounds} round{'s' if state.rounds != 1 else ''}"
            head = f"separated: {who} is the best after {rounds} ({state.seeds} seeds)"
        elif state.stop == "separated":
            head = "separated: every candidate left the race (their runs failed)"
        elif state.stop == "equivalent":
            head = f"equivalent within {s.margin:.0%}: {who} ({state.seeds} seeds each)"
        elif state.stop == "budget":
            head = f"budget spent: {who} not separated ({state.seeds} seeds each)"
        else:
            head = f"running: round {state.rounds + 1}, {who} at {state.seeds} seeds each"
        gone = [f"{self._name(names, c)} after {d.seeds} seeds ("
                + ("a run failed" if d.leader is None else f"worse than {self._name(names, d.leader)}, p = {d.p:.2g}")
                + ")" for c, d in self.state.dropped.items()]
        test = "paired t" if s.paired else "Welch t"
        return (f"race ({test} tests, {s.confidence:.0%} confidence of keeping the best, {state.spent} runs): {head}"
                + (f"; dropped: {'; '.join(gone)}" if gone else ""))


    @staticmethod
    def _name(names: Mapping[int, str], number: int) -> str:
        return names.get(number, f"trial {number}")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "none"


@dataclass
class Confirmation:
    """What a study's confirmation runs say, read once for status and the report.

    Attributes:
        objective: the minimized metric.
        ranking: configurations by their runs' mean confirmed value, each compared with the best
            (empty while no run has completed).
        effects: per searched choice with two or more confirmed values, its values ranked the same way.
        sources: configuration name (`describe`) → the search trial it retrains.
        done, planned: completed and planned runs; samples: images per independent measurement.
        collapsed: configuration name → how many of its runs' independent measurements were
            flagged `collapse` (absent: none).
        p_best: configuration name → the probability that it is the best given its runs
            (`hpsearch.racing.p_best`); None while no configuration has two runs.
        race: the race, when the confirmation is one.
    """

    objective: str
    ranking: list[Ranked]
    effects: dict[str, list[Ranked]]
    sources: dict[str, TrialRecord]
    done: int
    planned: int
    samples: int
    collapsed: dict[str, int] = field(default_factory=dict)
    p_best: dict[str, float] | None = None
    race: Race | None = None

    @property
    def winner(self) -> TrialRecord:
        """The search trial of the configuration with the lowest confirmed mean (needs a ranking)."""
        return self.sources[self.ranking[0].name]

    def sentences(self) -> list[str]:
        """The race's stopping reason (when a race), then one finding per configuration, worded from the numbers."""
        head = [self.race.sentence({s.number: name for name, s in self.sources.items()})] if self.race else []
        return head + [sentence(r, self.ranking[0], self.objective) + self.chance(r.name) + self.collapse_note(r.name)
                       for r in self.ranking]

    def chance(self, name: str) -> str:
        """" — P(best) 0.87" (empty without a posterior)."""
        if self.p_best is None:
            return ""
        p = self.p_best.get(name, 0.0)
        return f" — P(best) {p:.2f}" if 0.005 <= p <= 0.995 else f" — P(best) {'<0.01' if p < 0.5 else '>0.99'}"

    def collapse_note(self, name: str) -> str:
        """" — COLLAPSED in k of n runs" for a configuration whose generators collapsed; else empty."""
        k = self.collapsed.get(name, 0)
        if not k:
            return ""
        n = next(r.summary.n for r in self.ranking if r.name == name)
        return (f" — COLLAPSED in {k} of {n} runs (within-class MS-SSIM above the real images' by more than the "
                "margin, or a class's samples piled on few of its real images): not a usable winner whatever its "
                "value")


def confirmation(loaded: LoadedStudy, search: optuna.Study, backend: Backend | None = None) -> Confirmation | None:
    """The study's confirmation runs, ranked; None when it has none planned.

    Raises:
        ConfigError: the companion's stored attributes are damaged (`check_companion`).
    """
    companion = existing_companion(loaded, backend)
    if companion is None:
        return None
    records = {t.number: t for t in read_trials(search)}
    runs = [r for r in companion.get_trials(deepcopy=False) if "source" in r.params]
    complete = [read_trial(r) for r in runs if r.state == TrialState.COMPLETE and r.value is not None
                and int(r.params["source"]) in records]
    confirmed = [(records[int(r.params["source"])], r.objective_value) for r in complete]
    by_config: dict[str, list[float]] = {}
    collapsed: dict[str, int] = {}
    for run, (source, value) in zip(complete, confirmed, strict=True):
        by_config.setdefault(config_name(source), []).append(value)
        if (run.measured or {}).get("collapse") is True:
            collapsed[config_name(source)] = collapsed.get(config_name(source), 0) + 1
    found = race_state(companion)
    race = Race(*found) if found else None
    return Confirmation(loaded.cfg.objective, rank(by_config) if by_config else [], _effects(confirmed),
                        {config_name(source): source for source, _ in confirmed},
                        sum(r.state == TrialState.COMPLETE for r in runs), planned_runs(companion),
                        int(companion.user_attrs.get("samples", 0)), collapsed, p_best(by_config), race)


def _effects(confirmed: list[tuple[TrialRecord, float]]) -> dict[str, list[Ranked]]:
    """Per searched choice with at least two confirmed values: each value's runs ranked (findings.effects)."""
    params = sorted({p for source, _ in confirmed for p, v in source.params.items() if isinstance(v, (str, bool))})
    result = {}
    for param in params:
        groups: dict[object, list[float]] = {}
        for source, value in confirmed:
            if param in source.params:
                groups.setdefault(source.params[param], []).append(value)
        if len(groups) >= 2:
            result[param] = effects(param, groups)
    return result


def config_name(trial: TrialRecord) -> str:
    """A configuration's name in findings: its trial number and searched choices."""
    choices = ", ".join(f"{k}={v}" for k, v in trial.params.items() if isinstance(v, (str, bool)))
    return f"trial {trial.number}" + (f" ({choices})" if choices else "")
