"""A storage URL, parsed once where it enters (the study file, --storage, $HPSEARCH_STORAGE).

`StorageURL.parse` decides the scheme, names the driver hpsearch installs, masks the password
and takes the parts apart once; every later step (the probe, opening the Optuna storage, the
claim lock, an error message) reads the fields instead of parsing the string again. Its
`str` and `repr` are the masked form, so an object printed by mistake shows no password.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from hpsearch.errors import ConfigError
from hpsearch.redaction import remember_secrets
from hpsearch.search.connection import mask_url

Scheme = Literal["sqlite", "postgresql", "grpc"]
SUPPORTED_DRIVERS: dict[str, Scheme] = {"sqlite": "sqlite", "postgresql": "postgresql",
                                        "postgresql+psycopg2": "postgresql"}
ALLOWED = "sqlite:///PATH, postgresql+psycopg2://USER@HOST:PORT/DB or grpc://HOST:PORT (a storage proxy)"
GRPC_ALLOWED = "a storage proxy's URL is grpc://HOST:PORT, e.g. grpc://127.0.0.1:13000"


@dataclass(frozen=True, repr=False)
class StorageURL:
    """A storage URL hpsearch can use, taken apart.

    Attributes:
        given: the URL as the user wrote it (handed to worker processes; holds any password).
        text: the URL to connect with: `given`, with psycopg2 named for a bare `postgresql://`
            (SQLAlchemy 2.1's default driver there is psycopg 3, which is not installed).
        scheme: sqlite, postgresql or grpc.
        path: the SQLite database file (sqlite only).
        host, port: the server (postgresql, grpc; a PostgreSQL port may be left to its default).
        database: the PostgreSQL database name.
    """

    given: str
    text: str
    scheme: Scheme
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None

    @property
    def masked(self) -> str:
        """The URL as given, password replaced by *** (for logs, errors and reports)."""
        return mask_url(self.given)

    @property
    def masked_text(self) -> str:
        """The URL connected to, password replaced by *** (for a driver's errors)."""
        return mask_url(self.text)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"StorageURL({self.masked!r})"

    @classmethod
    def parse(cls, url: str | StorageURL) -> StorageURL:
        """The parsed URL (an already parsed one is returned as it is).

        Raises:
            ConfigError: not a URL hpsearch can use (naming the masked URL and what is allowed).
        """
        if isinstance(url, StorageURL):
            return url
        remember_secrets(url)
        if url.startswith("grpc://"):
            host, port = _grpc_address(url)
            return cls(url, url, "grpc", host=host, port=port)
        try:
            parsed = make_url(url)
            db_port = parsed.port
        except Exception as exc:  # sqlalchemy.exc.ArgumentError, or ValueError for a bad port
            raise ConfigError(f"storage {mask_url(url)}: not a database URL; use {ALLOWED}") from exc
        if parsed.drivername not in SUPPORTED_DRIVERS:
            raise ConfigError(f"storage {mask_url(url)}: database {parsed.drivername!r} is not supported; "
                              f"use {ALLOWED}")
        if url.partition("://")[2].rsplit("@", 1)[0].count("@"):
            raise ConfigError(f"storage {mask_url(url)}: the user or password holds an '@'; write it as %40 "
                              f"(percent-encoded); use {ALLOWED}")
        if db_port is not None and not 1 <= db_port <= 65535:
            raise ConfigError(f"storage {mask_url(url)}: port {db_port} is not a TCP port (1..65535); use {ALLOWED}")
        if SUPPORTED_DRIVERS[parsed.drivername] == "postgresql":
            text = url
            if parsed.drivername == "postgresql":
                text = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
            return cls(url, text, "postgresql", host=parsed.host, port=db_port,
                       database=parsed.database)
        database = parsed.database
        if parsed.host or parsed.username or parsed.password is not None or parsed.port or parsed.query:
            raise ConfigError(f"storage {mask_url(url)}: a SQLite URL names a file and nothing else (no host, user, "
                              "password or ?options); use sqlite:///runs/NAME/study.db, or sqlite:////abs/path.db")
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ConfigError(f"storage {mask_url(url)}: needs a file (an in-memory database is lost when the "
                              "process ends and workers cannot share it); use sqlite:///runs/NAME/study.db")
        return cls(url, url, "sqlite", path=Path(database))


def _grpc_address(url: str) -> tuple[str, int]:
    """`grpc://HOST:PORT` → (host, port); an IPv6 host in brackets (`grpc://[::1]:13000`).

    Raises:
        ConfigError: the URL is not of that form (the message shows it with any password masked).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # unbalanced brackets, a port that is not a number or out of range
        raise ConfigError(f"storage {mask_url(url)}: not a valid URL ({exc}); {GRPC_ALLOWED}") from exc
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"storage {mask_url(url)}: a storage proxy takes no user or password (it has no "
                          f"authentication: keep its port on the cluster's private network); {GRPC_ALLOWED}")
    if parts.scheme != "grpc" or not host or port is None or not 1 <= port <= 65535 \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"storage {mask_url(url)}: {GRPC_ALLOWED}")
    return host, port
