"""A study-wide lock around "is the study done? then start a trial", so workers never overshoot.

Without it, K workers that all see N-1 finished trials would all start one. PostgreSQL
gives an advisory lock that spans machines; SQLite lives on one machine, where a file
lock next to the database does the same. Workers behind a storage proxy have no database
connection: the proxy takes this lock for them (`hpsearch.search.proxy_server`), and
`hpsearch.search.backend` picks the lock that fits a storage URL.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import IO, Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.pool import NullPool

from hpsearch.search.connection import engine_kwargs, is_disconnect
from hpsearch.search.storage import retry_on_disconnect


class ClaimLock:
    """Exclusive, cross-process lock named after the study; `acquire` blocks, `release` is idempotent.

    Args:
        url: the storage URL (the same database every worker uses).
        study: the study name.
    """

    def __init__(self, url: str, study: str) -> None:
        digest = hashlib.sha256(f"hpsearch:{study}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.path = Path(f"{url.removeprefix('sqlite:///')}.{study}.claim") if url.startswith("sqlite") else None
        self.engine = None if self.path else sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args=engine_kwargs(url)["connect_args"])
        self._file: IO[str] | None = None
        self._conn: Any = None

    def acquire(self) -> ClaimLock:
        if self.path is not None:
            self._file = open(self.path, "w")  # noqa: SIM115 - held until release
            fcntl.flock(self._file, fcntl.LOCK_EX)
        else:
            retry_on_disconnect(self._lock_postgres, "the study's claim lock")()
        return self

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting (the storage proxy grants it on workers' behalf)."""
        if self.path is not None:
            file = open(self.path, "w")  # noqa: SIM115 - held until release
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                return False
            self._file = file
            return True
        return bool(retry_on_disconnect(self._lock_postgres, "the study's claim lock")(wait=False))

    def _lock_postgres(self, wait: bool = True) -> bool:
        assert self.engine is not None
        conn = self.engine.connect()
        if wait:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        elif not conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        """Release (a worker does so as soon as its trial exists); safe to call twice."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.close()
            except sqlalchemy.exc.SQLAlchemyError as exc:  # the connection died: the server dropped its lock
                if not is_disconnect(exc):
                    raise
