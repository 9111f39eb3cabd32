"""Checks of the local server's address, done before anything is built or started."""

from __future__ import annotations

import socket

from kserve_predictor.errors import UsageError


def check_port(port: int, flag: str = "--port") -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"{flag} {port} is not a TCP port; use 1-65535")
    return port


def check_host(host: str, flag: str = "--host") -> str:
    """The host, if it resolves to an address this machine can bind."""
    host = host.strip()
    try:
        family, address = _family(host)
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(
            f"{flag} {host!r} does not resolve; use an address such as 127.0.0.1 or ::1"
        ) from e
    with socket.socket(family) as probe:
        try:
            probe.bind(address)
        except OSError as e:
            raise UsageError(
                f"{flag} {host!r} is not an address of this machine ({e.strerror}); "
                "use 127.0.0.1, ::1 or 0.0.0.0"
            ) from e
    return host


def _family(host: str) -> tuple[socket.AddressFamily, tuple[object, ...]]:
    info = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return info[0], info[4]


def check_port_free(host: str, port: int, note: str = "") -> None:
    family, address = _family(host)
    with socket.socket(family) as probe:
        try:
            probe.bind((address[0], port, *address[2:]))
        except OSError as e:
            raise UsageError(
                f"port {port} on {host} is in use ({e.strerror}); pass another --port{note}"
            ) from e


def free_port(host: str) -> int:
    family, address = _family(host)
    with socket.socket(family) as probe:
        probe.bind(address)
        return int(probe.getsockname()[1])
