"""A study-wide lock around "is the study done? then start a trial", so workers never overshoot.

Without it, K workers that all see N-1 finished trials would all start one. PostgreSQL
gives an advisory lock that spans machines; SQLite lives on one machine, where a file
lock next to the database does the same. Workers behind a storage proxy have no database
connection: the proxy takes this lock for them (`hpsearch.search.proxy_server`), and
the storage's kind (`hpsearch.search.backend`) picks the lock that fits it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.exc

from hpsearch.search.connection import is_disconnect
from hpsearch.search.storage import retry_on_disconnect


class ClaimLock:
    """Exclusive, cross-process lock named after the study; `acquire` blocks, `release` is idempotent.

    Made by `beside` (SQLite: a file lock next to the database) or `advisory` (PostgreSQL: an
    advisory lock held by a connection of `engine`); the storage's kind (`hpsearch.search.backend`)
    picks which.
    """

    def __init__(self, name: str, path: Path | None = None, engine: sqlalchemy.Engine | None = None) -> None:
        digest = hashlib.sha256(name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.path, self.engine = path, engine
        self._fd: int | None = None
        self._conn: Any = None

    @classmethod
    def beside(cls, database: Path, study: str) -> ClaimLock:
        """The study's lock on one machine: a file next to the SQLite database."""
        return cls(f"hpsearch:{study}", path=Path(f"{database}.{study}.claim"))

    @classmethod
    def advisory(cls, engine: sqlalchemy.Engine, study: str) -> ClaimLock:
        """The study's lock across machines: a PostgreSQL advisory lock, held by a connection of `engine` (which
        must not pool connections: the lock lives as long as its connection)."""
        return cls(f"hpsearch:{study}", engine=engine)

    @classmethod
    def for_schema(cls, where: Path | sqlalchemy.Engine) -> ClaimLock:
        """The database-wide lock around creating Optuna's tables: workers that start together on an empty
        database would otherwise each create them, and all but one fail (a duplicate key in PostgreSQL's
        catalog, or in SQLite's alembic_version). For SQLite (`where` is the database file) it is a lock on
        the database's folder, which exists by then: a lock file would be left behind by a command that then
        fails."""
        if isinstance(where, Path):
            return cls("hpsearch-schema", path=where.parent)
        return cls("hpsearch-schema", engine=where)

    def __enter__(self) -> ClaimLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()

    def _open(self) -> int:
        assert self.path is not None
        if self.path.is_dir():
            return os.open(self.path, os.O_RDONLY)
        return os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)

    def acquire(self) -> ClaimLock:
        if self.path is not None:
            self._fd = self._open()
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:  # NFS emulates flock with POSIX locks, which a folder opened read-only cannot take
                os.close(self._fd)
                if not self.path.is_dir():
                    raise
                self.path = self.path / ".hpsearch-schema.lock"  # a file, then (left behind: the price of NFS)
                self._fd = self._open()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        else:
            retry_on_disconnect(self._lock_postgres, "the study's claim lock")()
        return self

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting (the storage proxy grants it on workers' behalf)."""
        if self.path is not None:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
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
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.close()
            except sqlalchemy.exc.SQLAlchemyError as exc:  # the connection died: the server dropped its lock
                if not is_disconnect(exc):
                    raise
