"""Locating SIP servers (RFC 3263): from a URI to the transports, addresses and ports to try.

An IP address or an explicit port needs no DNS beyond A/AAAA (and /etc/hosts answers those).
A bare host name gets the full RFC 3263 walk with dnspython, a well-kept resolver with
NAPTR and SRV support: NAPTR picks the transport, SRV the hosts and ports in priority and
weight order, A/AAAA the addresses. Any DNS failure falls back to A/AAAA on the default port,
which is what a machine without DNS (a lab, CI) needs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception

from softphone.sip.errors import SipError
from softphone.sip.transaction import Peer
from softphone.sip.uri import SipUri

DNS_LIFETIME = 2.0
_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
SUPPORTED_TRANSPORTS = ("udp", "tcp")


class ResolutionError(SipError):
    """No address could be found for a SIP URI."""


@dataclass(frozen=True)
class Target:
    transport: str
    host: str
    port: int


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060


async def resolve(uri: SipUri, preferred_transport: str | None = None) -> list[Peer]:
    """The peers to try for ``uri``, best first. Raises ResolutionError."""
    host = uri.param("maddr") or uri.host
    transport = uri.transport or preferred_transport
    if uri.scheme == "sips":
        raise ResolutionError("sips: needs TLS, which this version does not support")
    targets: list[Target]
    if _is_ip(host) or uri.port is not None:
        chosen = transport or "udp"
        targets = [Target(chosen, host, uri.port or _default_port(chosen))]
    else:
        targets = await _dns_targets(host, transport)
    peers: list[Peer] = []
    for target in targets:
        if target.transport not in SUPPORTED_TRANSPORTS:
            continue
        for address in await _addresses(target.host):
            peers.append(Peer(target.transport, address, target.port))
    if not peers:
        raise ResolutionError(f"Cannot resolve {uri.host_port}")
    return peers


async def _dns_targets(host: str, transport: str | None) -> list[Target]:
    transports = [transport] if transport else await _naptr_transports(host)
    for candidate in transports or list(SUPPORTED_TRANSPORTS):
        srv = await _srv_targets(host, candidate)
        if srv:
            return srv
    chosen = transport or (transports[0] if transports else "udp")
    return [Target(chosen, host, _default_port(chosen))]


async def _query(name: str, rdtype: str) -> list[object]:
    try:
        answer = await dns.asyncresolver.resolve(name, rdtype, lifetime=DNS_LIFETIME)
    except (dns.exception.DNSException, OSError):
        return []
    return list(answer)


async def _naptr_transports(host: str) -> list[str]:
    records = await _query(host, "NAPTR")
    ordered = sorted(records, key=lambda r: (getattr(r, "order", 0), getattr(r, "preference", 0)))
    transports = []
    for record in ordered:
        service = getattr(record, "service", b"").decode("ascii", "replace").upper()
        if service in _NAPTR_SERVICES:
            transports.append(_NAPTR_SERVICES[service])
    return transports


async def _srv_targets(host: str, transport: str) -> list[Target]:
    records = await _query(_SRV_PREFIX[transport] + host, "SRV")
    # Priority ascending; within a priority, a weighted random order (RFC 2782).
    def order(record: object) -> tuple[int, float]:
        weight = getattr(record, "weight", 0)
        return (getattr(record, "priority", 0), -random.random() * (weight + 1))

    return [Target(transport, str(getattr(r, "target", host)).rstrip("."), getattr(r, "port", 5060))
            for r in sorted(records, key=order)]


async def _addresses(host: str) -> list[str]:
    if _is_ip(host):
        return [host]
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
