"""Unique study names for the search tests (the PostgreSQL fixture lives in tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def study_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"
