"""The real PostgreSQL for the concurrency and crash tests (skipped without it, except in CI)."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """`$HPSEARCH_TEST_POSTGRES` (default: the local server); skips when unreachable unless CI=true."""
    url = os.environ.get("HPSEARCH_TEST_POSTGRES", DEFAULT_URL)
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver or connection error means: no PostgreSQL here
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL required under CI=true but unreachable at {url}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {url} (set HPSEARCH_TEST_POSTGRES): {type(exc).__name__}")
    return url


@pytest.fixture
def study_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"
