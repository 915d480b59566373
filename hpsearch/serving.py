"""What the servers hpsearch starts (the dashboard, the storage proxy) share: localhost unless told otherwise."""

from __future__ import annotations

import logging
import socket

from hpsearch.errors import ConfigError

_logger = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_bind(what: str, host: str, port: int) -> None:
    """The server will be able to listen on host:port: a valid port, a host of this machine, a free port.

    Probed with a plain socket before the server (or anything else) starts, so that a taken
    port or a foreign host is one line, not a library's log line and then ours.

    Raises:
        ConfigError: naming the server, the address and what is wrong.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"{what} port: must be in 1..65535; got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"{what}: host {host!r} is not a name or address this machine can resolve "
                          f"({getattr(exc, 'strerror', None) or exc}); use an address of this machine, "
                          "e.g. 127.0.0.1") from exc
    family, kind, proto, _, sockaddr = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            # As the servers do: a port whose last connections linger in TIME_WAIT (a restart) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot listen on {address(host, port)} ({exc.strerror or exc}); is the port "
                          "taken by another process, or the host not an address of this machine?") from exc


def warn_exposure(what: str, host: str, exposure: str) -> None:
    """Warn, once every check has passed, when `host` reaches beyond this machine.

    Neither server has authentication, so binding anything but loopback is a decision the
    user should see spelled out: `exposure` says what a stranger on the network could do.
    """
    if host not in LOCAL_HOSTS:
        _logger.warning("the %s is bound to %s: anyone who can reach this machine %s; it has no authentication",
                        what, host, exposure)


def address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
