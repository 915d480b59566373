"""Digits and a domain classifier trained once for the metrics tests (in a temporary cache)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpsearch.config import DataConfig
from hpsearch.data import ImageDataset, load_dataset
from hpsearch.metrics.domain import LoadedClassifier, load_or_train

CLASSIFIER_STEPS = 300


@pytest.fixture(scope="session")
def metrics_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics_cache")


@pytest.fixture(scope="session")
def digits16(metrics_cache: Path) -> ImageDataset:
    return load_dataset(DataConfig(name="digits", image_size=16), metrics_cache)


@pytest.fixture(scope="session")
def digits_classifier(digits16: ImageDataset, metrics_cache: Path) -> LoadedClassifier:
    return load_or_train(digits16, metrics_cache / "cache", torch.device("cpu"), CLASSIFIER_STEPS)
