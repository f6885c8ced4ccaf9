"""Locating SIP servers (RFC 3263): from a URI to the transports, addresses and ports to try.

An IP address or an explicit port needs no DNS beyond A/AAAA (and /etc/hosts answers those).
A bare host name gets the full RFC 3263 walk with dnspython, a well-kept resolver with
NAPTR and SRV support: NAPTR picks the transport, SRV the hosts and ports in priority and
weight order, A/AAAA the addresses. Any DNS failure falls back to A/AAAA on the default port,
which is what a machine without DNS (a lab, CI) needs.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import socket
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception

from softphone.sip.errors import SipError
from softphone.sip.transaction import Peer
from softphone.sip.uri import SipUri

DNS_LIFETIME = 2.0
_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
SUPPORTED_TRANSPORTS = ("udp", "tcp", "tls")


_system_resolver: dns.asyncresolver.Resolver | None = None


class ResolutionError(SipError):
    """No address could be found for a SIP URI."""


@dataclass(frozen=True)
class Target:
    transport: str
    host: str
    port: int


@functools.lru_cache(maxsize=1024)
def _is_ip(host: str) -> bool:
    """Cached: a load test asks it twice per call about the same few hosts."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060


def make_dns_resolver(nameservers: tuple[str, ...] = (), port: int = 53
                      ) -> dns.asyncresolver.Resolver:
    """The system's resolver, or one that asks only ``nameservers`` (tests, split DNS)."""
    if not nameservers:
        try:
            return dns.asyncresolver.Resolver()
        except (dns.exception.DNSException, OSError):  # no /etc/resolv.conf
            resolver = dns.asyncresolver.Resolver(configure=False)
            return resolver
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = list(nameservers)
    resolver.port = port
    return resolver


async def resolve(uri: SipUri, preferred_transport: str | None = None,
                  dns_resolver: dns.asyncresolver.Resolver | None = None) -> list[Peer]:
    """The peers to try for ``uri``, best first. Raises ResolutionError."""
    lookup = _Lookup(dns_resolver)
    host = uri.param("maddr") or uri.host
    secure = uri.scheme.lower() == "sips"
    # sips: takes TLS; NAPTR is then read for SIPS+D2T only (RFC 3263 4.1)
    transport = uri.transport or (None if secure else preferred_transport)
    targets: list[Target]
    if _is_ip(host) or uri.port is not None:
        chosen = transport or ("tls" if secure else "udp")
        targets = [Target(chosen, host, uri.port or _default_port(chosen))]
    else:
        targets = await lookup.targets(host, transport, secure)
    peers: list[Peer] = []
    for target in targets:
        if target.transport not in SUPPORTED_TRANSPORTS or (secure and target.transport != "tls"):
            continue
        for address in await lookup.addresses(target.host):
            # a TLS server must prove it serves the SIP domain we asked for (RFC 5922)
            peers.append(Peer(target.transport, address, target.port, name=uri.host))
    if not peers:
        raise ResolutionError(f"Cannot resolve {uri.host_port}")
    return peers


class _Lookup:
    """The DNS steps of RFC 3263 with one resolver."""

    def __init__(self, resolver: dns.asyncresolver.Resolver | None) -> None:
        self._resolver = resolver

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        global _system_resolver
        if self._resolver is None:  # made only when a name really needs DNS, then kept
            if _system_resolver is None:
                _system_resolver = make_dns_resolver()
            self._resolver = _system_resolver
        return self._resolver

    async def targets(self, host: str, transport: str | None,
                      secure: bool = False) -> list[Target]:
        transports = [transport] if transport else await self._naptr_transports(host)
        if secure:
            transports = [t for t in transports if t == "tls"] or ["tls"]
        for candidate in transports or list(SUPPORTED_TRANSPORTS):
            srv = await self._srv_targets(host, candidate)
            if srv:
                return srv
        chosen = transport or (transports[0] if transports else "udp")
        return [Target(chosen, host, _default_port(chosen))]

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        if not self.resolver.nameservers:
            return []
        try:
            answer = await self.resolver.resolve(name, rdtype, lifetime=DNS_LIFETIME)
        except (dns.exception.DNSException, OSError):
            return []
        return list(answer)

    async def _naptr_transports(self, host: str) -> list[str]:
        records = sorted(await self._query(host, "NAPTR"),
                         key=lambda r: (r.order, r.preference))
        services = [r.service.decode("ascii", "replace").upper() for r in records]
        return [_NAPTR_SERVICES[s] for s in services if s in _NAPTR_SERVICES]

    async def _srv_targets(self, host: str, transport: str) -> list[Target]:
        records = await self._query(_SRV_PREFIX[transport] + host, "SRV")
        # Priority ascending; within a priority, a weighted random order (RFC 2782).
        ordered = sorted(records, key=lambda r: (r.priority, -random.random() * (r.weight + 1)))
        return [Target(transport, str(r.target).rstrip("."), r.port) for r in ordered]

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA from DNS, else from the system (which reads /etc/hosts)."""
        if _is_ip(host):
            return [host]
        found = [r.address for kind in ("A", "AAAA") for r in await self._query(host, kind)]
        return found or await _system_addresses(host)


async def _system_addresses(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError:
        return []
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen
