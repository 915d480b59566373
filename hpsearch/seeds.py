"""Seeds derived from a run's seed: the one function that makes them, and the strides that keep them apart.

A run is trained and evaluated with its seed; everything that needs further random streams
derives them here, by purpose, so that two purposes never hand out the same seed by accident:

- `confirm`: run i of a confirmation trains with base + (i + 1)·1,000,003 (the same for every
  candidate: paired seeds) and is measured with that seed + 1;
- `noise`: the i-th re-measurement of a kept generator draws its batch with seed + (i + 1)·7,919;
- `reseed`: a run resumed on another kind of device continues from seed + step·1,000,003.
"""

from __future__ import annotations

from typing import Literal

from hpsearch.config import MAX_SEED

Purpose = Literal["confirm", "noise", "reseed"]
STRIDES: dict[Purpose, int] = {"confirm": 1_000_003, "noise": 7919, "reseed": 1_000_003}


def derived_seed(seed: int, index: int, purpose: Purpose) -> int:
    """The `index`-th seed derived from `seed` for `purpose` (index ≥ 1 never returns `seed` itself)."""
    return (seed + index * STRIDES[purpose]) % MAX_SEED
