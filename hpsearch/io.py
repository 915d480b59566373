"""Files a user hands in and files hpsearch writes: read defensively, checked before use, written atomically."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from hpsearch.errors import ConfigError

MAX_TEXT_BYTES = 8 << 20  # configs, studies and spaces are a few KB; anything this big is not one


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the body succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; shared caches should follow the umask
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[Any]], object], mode: str = "wb") -> None:
    """Call `write(fileobj)` on a temporary file, flush it to disk and rename it to `path`.

    The fsync before the rename means that after a crash or power loss `path` holds either
    the old or the new content, never a truncated file.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a small file the user named (config, study, space).

    Raises:
        ConfigError: missing, not a regular file, unreadable, larger than `limit`, or not
            UTF-8 text; the message names the file and what it should be.
    """
    if not path.exists():
        raise ConfigError(f"{path}: {what} file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file is not a regular file (a YAML file is expected)")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {what} file cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > limit:
        raise ConfigError(f"{path}: {what} file is larger than {limit >> 20} MiB; a YAML file of a few KB is expected")
    if b"\0" in data:
        raise ConfigError(f"{path}: {what} file is binary; a YAML text file is expected")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text (byte {exc.start}); a YAML text file is "
                          "expected") from exc


def check_writable(path: Path, what: str, *, is_dir: bool) -> None:
    """Fail now, before anything is created, if `path` could not be written later.

    A folder (`is_dir`) must be a folder or not exist yet; a file must be a regular file or
    not exist. Either way the nearest existing ancestor must be a folder in which this
    process can create a file; that is probed with a temporary file, removed at once, so
    nothing is left behind (`os.access` alone is fooled by root and by read-only mounts).

    Raises:
        ConfigError: naming `what` and the path.
    """
    if path.exists():
        if is_dir and not path.is_dir():
            raise ConfigError(f"{what} {path}: exists and is not a folder; name a folder (new or existing)")
        if not is_dir and not path.is_file():
            raise ConfigError(f"{what} {path}: exists and is not a regular file; name a file to write")
    probe_dir = path if is_dir and path.is_dir() else path.parent
    ancestor = probe_dir
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{what} {path}: cannot be created: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".hpsearch-write-test-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"{what} {path}: cannot be written ({reason} in {ancestor}); choose a place this user can "
                    "write") from exc
