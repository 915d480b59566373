"""The environment variables hpsearch reads, each read and checked in one place, like a flag.

An empty variable counts as unset (the shell convention: `FOO= cmd`). Anything else must be
valid, and the error names the variable, what it holds and what is allowed; `check_environment`
runs all the checks before a command does anything, so a bad value is one line and exit 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hpsearch.errors import ConfigError
from hpsearch.io import check_text
from hpsearch.redaction import remember_secrets

DEFAULT_CONNECT_TIMEOUT_S = 10
MAX_THREADS = 1024


@dataclass(frozen=True)
class IntVariable:
    """An integer variable with its allowed range."""

    name: str
    low: int
    high: int
    unit: str = ""

    def get(self) -> int | None:
        text = _raw(self.name)
        if text is None:
            return None
        stripped = text.strip()
        if not re.fullmatch(r"-?[0-9]{1,12}", stripped) or not self.low <= int(stripped) <= self.high:
            raise ConfigError(f"${self.name}: must be an integer{self.unit} in {self.low}..{self.high}; got {text!r}")
        return int(stripped)


THREADS = IntVariable("HPSEARCH_THREADS", 1, MAX_THREADS, " (CPU threads)")
CONNECT_TIMEOUT = IntVariable("HPSEARCH_CONNECT_TIMEOUT", 2, 600, " (seconds; libpq's least is 2)")


def _raw(name: str) -> str | None:
    text = os.environ.get(name)
    return text if text else None


def storage_url() -> str | None:
    """`$HPSEARCH_STORAGE`: the study's database URL (kept out of process lists), or None."""
    text = _raw("HPSEARCH_STORAGE")
    if text is not None:
        remember_secrets(text)
        check_text(text, "$HPSEARCH_STORAGE", "a database URL", secret=True)
    return text


def data_dir() -> Path:
    """`$HPSEARCH_DATA`, else `~/.cache/hpsearch/data`."""
    text = _raw("HPSEARCH_DATA")
    if text is None:
        return Path.home() / ".cache" / "hpsearch" / "data"
    return Path(check_text(text, "$HPSEARCH_DATA", "a folder")).expanduser()  # a quoted "~/x" means home


def threads() -> int | None:
    """`$HPSEARCH_THREADS`: CPU threads of this process (workers started by `hpsearch run` get a share)."""
    return THREADS.get()


def connect_timeout_s() -> int:
    """`$HPSEARCH_CONNECT_TIMEOUT`: seconds a database connection may take to open (default 10)."""
    value = CONNECT_TIMEOUT.get()
    return DEFAULT_CONNECT_TIMEOUT_S if value is None else value


def check_environment() -> None:
    """Every variable above, checked before a command starts.

    Raises:
        ConfigError: naming the variable, its value (never a URL's password) and what is allowed.
    """
    storage_url()
    data_dir()
    threads()
    connect_timeout_s()
