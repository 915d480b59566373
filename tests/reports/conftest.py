"""One real tiny study (CPU), run once per session and shared by the report and browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.cli import main
from tests.search.helpers import write_study


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study file of 6 finished trials: 2 complete and 4 pruned (a bad enqueued config among them)."""
    folder = tmp_path_factory.mktemp("report-study")
    path = write_study(folder)
    data_dir = tmp_path_factory.getbasetemp() / "search-data"  # shared with the search tests' cache
    assert main(["run", str(path), "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    return path
