"""The search's own ranking beside the objective's measured noise (status and the report, before confirmation).

Each completed trial's kept generator is scored again on `noise_seeds` evaluation batches
drawn with other seeds (the objective does it). Pooled over the top trials, the spread of
those scores is the objective's evaluation noise; a gap between two single-run values
smaller than 1.96·√2 of it cannot be told from that noise alone. Training-seed noise is not
in it (it is larger: only confirmation runs measure it), so a gap beyond it is still no
result, only a reason to confirm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optuna.trial import TrialState

from hpsearch.search.record import TrialRecord
from hpsearch.stats import Noise, pooled_noise


@dataclass
class SingleRuns:
    """The top completed trials by their single-run values, and the noise measured on their kept generators.

    Attributes:
        objective: the minimized metric.
        top: the best completed trials, lowest value first.
        noise: pooled over the top trials' re-measurements (None when none was re-measured).
    """

    objective: str
    top: list[TrialRecord]
    noise: Noise | None

    def sentences(self) -> list[str]:
        """The noise, then each top trial's gap from the best, worded from the numbers."""
        if not self.top:
            return []
        noise = self.noise
        lines = [f"the objective's own noise: {noise.sentence(self.objective)}; a gap below {noise.gap:.3g} "
                 "is within it" if noise else
                 "the objective's own noise was not measured (noise_seeds 0, or trials stored before hpsearch "
                 "measured it)"]
        best = self.top[0]
        for t in self.top:
            value = t.objective_value
            head = f"trial {t.number}: {self.objective} {value:.4g}" + _remeasured(t)
            if t is best:
                line = f"{head}: the lowest single-run value"
            else:
                gap = value - best.objective_value
                verdict = "" if noise is None else (": within the evaluation noise" if gap < noise.gap else
                                                     ": beyond the evaluation noise (training-seed noise not "
                                                     "measured)")
                line = f"{head}, {gap:+.3g} from trial {best.number}{verdict}"
            lines.append(line + collapse_note(t, self.objective))
        return lines


def single_runs(trials: list[TrialRecord], objective: str, top: int = 5) -> SingleRuns:
    """The `top` best completed trials and the noise pooled over their re-measurements."""
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and math.isfinite(t.objective_value)),
                      key=lambda t: t.objective_value)[:top]
    return SingleRuns(objective, complete, pooled_noise([t.noise for t in complete]))


def _remeasured(t: TrialRecord) -> str:
    if not t.noise:
        return ""
    mean = sum(t.noise) / len(t.noise)
    return f" (re-measured: {mean:.4g}, mean of {len(t.noise)} other evaluation batches)"


def collapse_note(t: TrialRecord, objective: str) -> str:
    """" — COLLAPSED …" when the generator the trial keeps was flagged `collapse`; else empty."""
    if not t.kept_collapsed(objective):
        return ""
    kept = t.kept_eval(objective)
    reason = kept.get("collapse_reason") or (  # records written before the coverage rule
        f"within-class MS-SSIM {kept['msssim']:.3f} is above the real images' {kept['msssim_real']:.3f} by more "
        "than the margin")
    return f" — COLLAPSED at its kept generator (step {kept['step']}): {reason}"
