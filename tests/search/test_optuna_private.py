"""The private Optuna symbols hpsearch relies on are all there, and a missing one is named."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from hpsearch.search import optuna_private

PACKAGE = Path(__file__).resolve().parents[2] / "hpsearch"


def test_every_private_optuna_symbol_hpsearch_uses_exists() -> None:
    gone = optuna_private.missing()
    assert not gone, (f"Optuna {optuna.__version__} no longer has {', '.join(gone)}: hpsearch relies on them "
                      "(see hpsearch/search/optuna_private.py); adapt it, or pin Optuna below this version")


def test_a_private_symbol_that_disappeared_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(optuna.storages.RDBStorage, "_get_trials")
    monkeypatch.delattr(optuna.artifacts.FileSystemArtifactStore, "_get_filepath")
    assert optuna_private.missing() == ["optuna.storages.RDBStorage._get_trials",
                                        "optuna.artifacts.FileSystemArtifactStore._get_filepath"]


def test_a_private_attribute_that_disappeared_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(optuna_private.ATTRIBUTES, "FrozenTrial._trial_id", lambda: False)
    assert optuna_private.missing() == ["FrozenTrial._trial_id"]


def test_private_optuna_modules_are_imported_only_in_one_place() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+optuna(\.\w+)*\._\w+", re.MULTILINE)
    users = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))]
    assert users == ["search/optuna_private.py"]
