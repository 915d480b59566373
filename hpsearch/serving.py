"""What the servers hpsearch starts (the dashboard, the storage proxy) share: localhost unless told otherwise."""

from __future__ import annotations

import logging

from hpsearch.errors import ConfigError

_logger = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_bind(what: str, host: str, port: int, exposure: str) -> None:
    """Validate the port, and warn when `host` reaches beyond this machine.

    Neither server has authentication, so binding anything but loopback is a decision the
    user should see spelled out: `exposure` says what a stranger on the network could do.

    Raises:
        ConfigError: the port is outside 1..65535.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"{what} port: must be in 1..65535; got {port}")
    if host not in LOCAL_HOSTS:
        _logger.warning("the %s is bound to %s: anyone who can reach this machine %s; it has no authentication",
                        what, host, exposure)


def address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
