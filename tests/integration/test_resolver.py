"""RFC 3263 against a real DNS server on loopback (dnspython's wire format, our zone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from softphone.sip import parse_sip_uri
from softphone.sip.transaction import Peer
from softphone.transport.resolver import ResolutionError, make_dns_resolver, resolve
from softphone.ua.agent import AgentConfig, UserAgent


class Zone(asyncio.DatagramProtocol):
    """A tiny authoritative server: answers from a dict of (name, type) -> rdata texts."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name, kind = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        texts = self.records.get((name, kind), [])
        if texts:
            response.answer.append(dns.rrset.from_text_list(
                question.name, 60, dns.rdataclass.IN, question.rdtype, texts))
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, int]]:
    server = Zone({
        ("example.test.", "NAPTR"): [
            '10 50 "s" "SIP+D2T" "" _sip._tcp.example.test.',
            '20 50 "s" "SIP+D2U" "" _sip._udp.example.test.'],
        ("_sip._tcp.example.test.", "SRV"): ["0 0 5071 sip1.example.test.",
                                             "5 0 5072 sip2.example.test."],
        ("_sip._udp.example.test.", "SRV"): ["0 0 5073 sip1.example.test."],
        ("sip1.example.test.", "A"): ["127.0.0.1"],
        ("sip2.example.test.", "A"): ["127.0.0.2"],
        ("_sip._udp.srv-only.test.", "SRV"): ["0 0 5080 sip1.example.test."],
        ("plain.test.", "A"): ["127.0.0.3"],
    })
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server,
                                                       local_addr=("127.0.0.1", 0))
    yield server, transport.get_extra_info("sockname")[1]
    transport.close()


async def test_naptr_then_srv_then_a(zone: tuple[Zone, int]) -> None:
    server, port = zone
    peers = await resolve(parse_sip_uri("sip:alice@example.test"), None,
                          make_dns_resolver(("127.0.0.1",), port))
    assert peers == [Peer("tcp", "127.0.0.1", 5071), Peer("tcp", "127.0.0.2", 5072)]
    assert server.queries[0] == ("example.test.", "NAPTR")


async def test_transport_parameter_skips_naptr(zone: tuple[Zone, int]) -> None:
    server, port = zone
    peers = await resolve(parse_sip_uri("sip:example.test;transport=udp"), None,
                          make_dns_resolver(("127.0.0.1",), port))
    assert peers == [Peer("udp", "127.0.0.1", 5073)]
    assert ("example.test.", "NAPTR") not in server.queries


async def test_srv_without_naptr_and_plain_a_records(zone: tuple[Zone, int]) -> None:
    _, port = zone
    resolver = make_dns_resolver(("127.0.0.1",), port)
    assert await resolve(parse_sip_uri("sip:srv-only.test"), None, resolver) == [
        Peer("udp", "127.0.0.1", 5080)]
    assert await resolve(parse_sip_uri("sip:plain.test"), None, resolver) == [
        Peer("udp", "127.0.0.3", 5060)]
    assert await resolve(parse_sip_uri("sip:plain.test:5099;transport=tcp"), None,
                         resolver) == [Peer("tcp", "127.0.0.3", 5099)]


async def test_numeric_hosts_and_hosts_file_names_need_no_dns(zone: tuple[Zone, int]) -> None:
    server, port = zone
    assert await resolve(parse_sip_uri("sip:[::1]:5062")) == [Peer("udp", "::1", 5062)]
    assert await resolve(parse_sip_uri("sip:localhost:5062")) != []
    with pytest.raises(ResolutionError):
        await resolve(parse_sip_uri("sip:no-such-host.invalid"), None,
                      make_dns_resolver(("127.0.0.1",), port))
    assert ("no-such-host.invalid.", "NAPTR") in server.queries


async def test_an_agent_reaches_a_peer_found_by_srv(zone: tuple[Zone, int]) -> None:
    server, port = zone
    async with UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=0)) as bob:
        server.records[("_sip._udp.example.test.", "SRV")] = [
            f"0 0 {bob.port} sip1.example.test."]
        server.records[("example.test.", "NAPTR")] = [
            '10 50 "s" "SIP+D2U" "" _sip._udp.example.test.']
        config = AgentConfig(listen_host="127.0.0.1", listen_port=0,
                             nameservers=("127.0.0.1",), nameserver_port=port)
        async with UserAgent(config) as alice:
            result = await alice.options("sip:bob@example.test")
            assert result.status == 200
