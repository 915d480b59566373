"""Passwords never leave the process: every storage URL's password is remembered where the URL enters,
and every error line and log record is scrubbed of them on its way out (`hpsearch.cli`).

Masking each message that shows a URL (`hpsearch.search.connection.mask_url`) is the first line;
this is the one that holds when a message forgot to, or a driver echoed the URL in its own words.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote

_SECRETS: set[str] = set()  # every password of every storage URL this process has seen (see `scrub`)


def remember_secrets(url: str) -> None:
    """Note the URL's password (as written and percent-encoded), so that `scrub` removes it from any text.

    Called where a URL enters (the command line, the environment, a study file): whichever
    message later shows the URL or a driver's echo of it, the password does not leave the process.
    """
    secrets: list[str] = []
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        if ":" in userinfo:
            secrets.append(userinfo.split(":", 1)[1])
    elif "@" in url:  # not a URL (`postgresql//u:pw@h`): what follows the last ":" before the @ may be a password
        userinfo = url.rsplit("@", 1)[0]
        if ":" in userinfo:
            secrets.append(userinfo.rsplit(":", 1)[1])
    secrets += re.findall(r"[?&][^=&#]*password[^=&#]*=([^&#]*)", url, flags=re.IGNORECASE)
    for secret in secrets:
        if len(secret) >= 3:
            _SECRETS.update({secret, quote(secret, safe=""), unquote(secret)})


def scrub(text: str) -> str:
    """`text` with every remembered password replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class ScrubSecrets(logging.Filter):
    """A log handler's filter that removes remembered passwords from every record it emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = scrub(record.getMessage())
            record.msg, record.args = message, None
        return True
