"""Unique study names and fresh PostgreSQL databases for the search tests (the server's URL: tests/conftest.py)."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.search.helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import cold_start  # noqa: E402  (benchmarks/ is not a package)


@pytest.fixture
def study_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[Callable[[], str]]:
    """A factory of new, empty PostgreSQL databases on the test server, dropped afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(cold_start.fresh_postgres(postgres_url))
