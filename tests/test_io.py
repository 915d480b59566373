"""Writing files: a write that fails (a full disk) leaves nothing and names its file; replacing a folder keeps one."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hpsearch.io import atomic_write, staged_folder


def _full_disk(_fh: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")  # what a write on a full disk raises: no file name


def test_a_failed_atomic_write_names_its_file_and_removes_the_folders_it_made(tmp_path: Path) -> None:
    """Issue 24: `sample --out full/a/b/s.png` on a full disk left a/b/ behind and named no file."""
    target = tmp_path / "a" / "b" / "s.png"
    with pytest.raises(OSError, match="No space left on device") as caught:
        atomic_write(target, _full_disk)
    assert caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # neither the temporary file nor a/ nor a/b/


def test_a_staged_folder_replaces_the_old_one_whole_and_follows_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("old")
    mask = os.umask(0o022)
    try:
        with staged_folder(out) as staged:
            (staged / "new.txt").write_text("new")
    finally:
        os.umask(mask)
    assert [p.name for p in out.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["report"]
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: others read reports


def test_a_failed_staged_folder_leaves_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(OSError) as caught, staged_folder(out) as staged:
        _full_disk(staged)
    assert caught.value.filename == str(out)
    assert [p.name for p in out.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["report"]
