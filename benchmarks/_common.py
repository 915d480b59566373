"""What every benchmark script shares: writing its result where `--json` says."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write `result` as indented JSON to `path` (its folder created); nothing when `path` is None.

    Infinite and NaN floats ("never reached", "no ratio") are written as null: Python would write
    `Infinity`, which strict JSON readers (jq, JavaScript) refuse.
    """
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_finite(result), indent=2, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
