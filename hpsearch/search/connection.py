"""Connecting to a storage database: URL masking, connect timeouts, and telling lost connections from bad ones.

Shared by every storage path (the RDB storage, the claim lock, the probe before a study is
created, the proxy client), so a password is masked and a silent server bounded the same way
everywhere.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

GRPC_LOST = ("UNAVAILABLE", "CANCELLED")  # status codes of a proxy that went away (see `is_disconnect`)

# Connection errors that no retry will fix: the user must change the URL or the server's setup.
PERMANENT_ERRORS = ("does not exist", "authentication failed", "no pg_hba.conf entry", "could not translate host",
                    "invalid dsn", "invalid connection option", "invalid sslmode", "password is required",
                    "unable to open database file")  # SQLite: no such folder, or not allowed to write there


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and errors: every shape, parsable or not.

    The user information ends at the *last* `@` before the host: SQLAlchemy's parser stops a
    password at the first `@`, so an unencoded `p@ss` would keep `ss@` in clear. Passwords
    given as query parameters (`?password=`, libpq accepts them) are masked too.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, host = rest.rsplit("@", 1)
        if ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}"
    elif "@" in url:  # not a URL (`postgresql//u:pw@h`, a missing colon): whatever stands before the @ may be secret
        scheme, sep, rest = "", "", f"***@{url.rsplit('@', 1)[1]}"
    return re.sub(r"([?&][^=&#]*password[^=&#]*=)[^&#]*", r"\1***", f"{scheme}{sep}{rest}", flags=re.IGNORECASE)


def redact(text: str, url: str) -> str:
    """`text` (e.g. a driver's error message) with the URL masked and its password removed wherever it appears."""
    text = text.replace(url, mask_url(url))
    try:
        parsed = make_url(url)
        secrets = [parsed.password, *(v for k, v in parsed.query.items() if "password" in k.lower())]
    except Exception:  # not an SQLAlchemy URL: the masked URL is all there is to hide
        secrets = []
    for secret in secrets:
        for form in {str(secret), quote(str(secret), safe="")} if secret and len(str(secret)) >= 3 else ():
            text = text.replace(form, "***")
    return text


def is_permanent(exc: BaseException) -> bool:
    """A connection error that retrying cannot fix (no such database or role, bad password, unknown host)."""
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    message = str(getattr(cause, "orig", None) or cause)
    return any(marker in message for marker in PERMANENT_ERRORS)


def call_with_deadline(func: Callable[[], Any], seconds: float, what: str) -> Any:
    """`func()`, or TimeoutError when it has not returned after `seconds`.

    The bound for network calls whose library has no timeout of its own (name resolution,
    a driver's connect); the abandoned call finishes in a daemon thread or dies with the process.
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = func()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"deadline: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what}: no answer within {seconds:g} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def is_disconnect(exc: BaseException) -> bool:
    """The database (or the storage proxy in front of it) went away, as opposed to a bad statement.

    From the proxy, UNAVAILABLE means nobody answers; CANCELLED means the proxy shut down while
    the call was in flight (hpsearch never cancels its own calls), which a restart does to
    every call still running when its grace period ends.
    """
    code = getattr(exc, "code", None)  # a grpc.RpcError from the storage proxy; grpcio is optional
    if callable(code) and getattr(code(), "name", None) in GRPC_LOST:
        return True
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
        return True
    if is_permanent(exc):
        return False
    # PendingRollbackError: a session whose connection died mid-transaction; a fresh session fixes it.
    return isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                              sqlalchemy.exc.PendingRollbackError))
