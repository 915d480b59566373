"""--per-gpu K: the arithmetic that refuses too many workers per GPU, with given memory figures (no GPU needed)."""

from __future__ import annotations

import pytest

from hpsearch.errors import ConfigError
from hpsearch.search import GpuMemory, check_packing
from hpsearch.search.packing import CONTEXT_BYTES, HEADROOM, largest_fit

GIB = 2**30


@pytest.mark.parametrize(("per_worker", "free", "fit"), [
    (4 * GIB, 80 * GIB, 18),  # 72 GiB usable / 4
    (4 * GIB, 4 * GIB, 0),  # 3.6 GiB usable: not even one
    (1, 10, 9),
    (3 * GIB, 10 * GIB, 3),  # 9 / 3: exactly three
])
def test_largest_fit(per_worker: int, free: int, fit: int) -> None:
    assert largest_fit(per_worker, free) == fit


def test_packing_refuses_too_many_workers_naming_the_largest_that_fits() -> None:
    peak = 3 * GIB  # one trial's measured training peak; each worker adds its CUDA context
    gpus = [GpuMemory("0", 79 * GIB, 80 * GIB), GpuMemory("1", 20 * GIB, 80 * GIB)]
    fit_1 = largest_fit(peak + CONTEXT_BYTES, 20 * GIB)
    assert fit_1 == int(20 * HEADROOM / (3 + CONTEXT_BYTES / GIB)) == 5
    check_packing(5, peak, gpus)  # fits on both
    with pytest.raises(ConfigError) as caught:
        check_packing(8, peak, gpus)
    message = str(caught.value)
    assert message.startswith("--per-gpu 8: GPU 1 has 20.0 GiB free of 80.0 GiB; one worker needs about 3.6 GiB")
    assert "holds 5: use --per-gpu 5 or less" in message and "\n" not in message
    with pytest.raises(ConfigError, match="holds 0: free memory on it first"):
        check_packing(1, 30 * GIB, gpus)
