"""Shared fixtures: tiny CPU configs and datasets."""

from __future__ import annotations

import os
from typing import Any

import pytest
import sqlalchemy
import torch

from hpsearch.config import RunConfig, from_dict
from hpsearch.data import ImageDataset

TINY_MODEL = {"z_dim": 8, "dense_channels": 8, "g_width": 1 / 32, "d_width": 1 / 16, "embed_dim": 4}


def tiny_config(image_size: int = 16, channels: int = 1, **sections: dict[str, Any]) -> RunConfig:
    """A valid RunConfig with tiny widths (batch 4), overridable per section."""
    raw: dict[str, Any] = {
        "data": {"name": "digits", "image_size": image_size, "channels": channels},
        "model": dict(TINY_MODEL),
        "train": {"batch_size": 4, "steps": 4, "log_every": 2, "eval_every": 2, "checkpoint_every": 2},
        "metrics": {},
    }
    for name, values in sections.items():
        raw[name].update(values)
    return from_dict(raw, "<test>")


def random_dataset(n: int = 24, channels: int = 1, size: int = 16, classes: int = 3, seed: int = 0) -> ImageDataset:
    """Random uint8 images with every class present."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % classes
    return ImageDataset(images, labels, [f"c{i}" for i in range(classes)])


@pytest.fixture
def tiny_dataset() -> ImageDataset:
    return random_dataset()


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
