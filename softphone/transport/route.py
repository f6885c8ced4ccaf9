"""Which local address packets to a host leave from: what an agent listening on a wildcard
address (0.0.0.0, ::) must advertise in Via, Contact and SDP, since the wildcard itself
reaches nobody. A connected UDP socket asks the kernel's routing table; nothing is sent."""

from __future__ import annotations

import functools
import ipaddress
import socket


@functools.lru_cache(maxsize=256)
def source_address_toward(host: str, port: int = 5060) -> str | None:
    """The local address the route to ``host`` leaves from, or None (no route, a name that
    does not resolve)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((host, port))
        return str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()


def default_address(ipv6: bool = False) -> str:
    """This machine's address for when no destination is known yet: the source of its
    default route, else the loopback address."""
    probe = "2001:db8::1" if ipv6 else "192.0.2.1"  # documentation addresses: nothing sent
    return source_address_toward(probe) or ("::1" if ipv6 else "127.0.0.1")
