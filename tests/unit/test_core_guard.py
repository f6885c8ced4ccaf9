"""A UAS that defends itself, on the virtual network: digest challenges for callers (right,
wrong and missing passwords, SHA-256 and MD5, a replayed answer, a nonce moved to another
address, a stale nonce), per-source limits (a flood gets 503 while others are served; calls
in progress per address), and hostile requests (no To, a tel: From, a Via maddr aimed at a
third party) that must leave no transaction behind."""

from __future__ import annotations

import re

import pytest

from softphone.core.agent import Credentials
from softphone.core.guard import DigestGuard, GuardSettings, SourceLimiter
from softphone.core.network import VirtualAgent, VirtualNetwork
from softphone.events import Incoming
from softphone.sip import Request, parse
from softphone.sip.auth import Challenge, authorize, parse_challenge
from softphone.sip.transaction import Peer

CALLERS = {"alice": "wonderland"}
STRANGER = Peer("udp", "10.9.9.9", 5060)
THIRD_PARTY = "10.66.66.66"


@pytest.fixture
def net() -> VirtualNetwork:
    return VirtualNetwork()


def guarded(net: VirtualNetwork, **config: object) -> VirtualAgent:
    return net.agent("bob", guard=GuardSettings(callers=CALLERS, **config))  # type: ignore[arg-type]


def caller(net: VirtualNetwork, password: str | None = "wonderland") -> VirtualAgent:
    credentials = Credentials("alice", password) if password is not None else None
    return net.agent("alice", credentials=credentials)


def sent_to(net: VirtualNetwork, peer: Peer) -> list[bytes]:
    """Every datagram delivered to ``peer`` (an address with no agent: the test's own)."""
    return [data for _, _, to, data in net.log if (to.host, to.port) == (peer.host, peer.port)]


def status_lines(datagrams: list[bytes]) -> list[str]:
    """The final responses' status lines (100 Trying left out)."""
    return [d.split(b"\r\n", 1)[0].decode()[8:] for d in datagrams
            if d.startswith(b"SIP/2.0") and not d.startswith(b"SIP/2.0 100")]


def raw_request(method: str, bob: VirtualAgent, source: Peer, branch: str,
                headers: str | None = None, call_id: str = "hostile") -> bytes:
    """A request as a stranger at ``source`` would write it; ``headers`` replaces the
    From/To/Call-ID/CSeq block."""
    if headers is None:
        headers = (f"From: <sip:mallory@{source.host}>;tag=m1\r\nTo: <{bob.uri}>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n")
    return (f"{method} {bob.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK{branch};rport\r\n"
            f"{headers}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def challenges(datagrams: list[bytes]) -> list[Challenge]:
    found = []
    for data in datagrams:
        message = parse(data)
        found += [parse_challenge(v) for v in message.headers.get_all("WWW-Authenticate")]
    return found


# --- digest challenges -------------------------------------------------------------------------

def test_a_caller_with_the_password_gets_through_after_one_challenge(
        net: VirtualNetwork) -> None:
    bob, alice = guarded(net), caller(net)
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    assert status_lines(alice.received) == [
        "401 Unauthorized", "200 OK"]
    offered = challenges([d for d in alice.received if d.startswith(b"SIP/2.0 401")])
    assert {(c.algorithm, c.qop) for c in offered} == {("SHA-256", ("auth",)),
                                                       ("MD5", ("auth",))}
    assert {c.realm for c in offered} == {"softphone"}
    answer = next(d for d in bob.received if b"Authorization:" in d)
    assert b'algorithm=SHA-256' in answer and b"qop=auth" in answer and b"nc=00000001" in answer
    alice.core.hangup(handle, net.now)
    net.run()
    assert not bob.core.calls


@pytest.mark.parametrize("password", ["mad hatter", None])
def test_a_wrong_or_missing_password_never_rings(net: VirtualNetwork,
                                                 password: str | None) -> None:
    bob, alice = guarded(net), caller(net, password)
    handle = alice.call(bob.uri)
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and ended.status == 401
    assert not bob.incoming() and not bob.of(Incoming)
    assert not bob.core.layer.server and not bob.core.calls


def test_options_and_message_are_challenged_too(net: VirtualNetwork) -> None:
    bob = guarded(net)
    for method in ("OPTIONS", "MESSAGE", "INVITE"):
        net.inject(raw_request(method, bob, STRANGER, method, call_id=method), STRANGER,
                   bob.peer)
    net.run(seconds=1)
    answered = [(parse(d).cseq.method, d.split(b"\r\n", 1)[0]) for d in sent_to(net, STRANGER)
                if not d.startswith(b"SIP/2.0 100")]
    assert sorted(answered) == [(method, b"SIP/2.0 401 Unauthorized")
                                for method in ("INVITE", "MESSAGE", "OPTIONS")]
    net.run(seconds=40)  # challenges go statelessly: never repeated, nothing kept
    assert len(sent_to(net, STRANGER)) == 3 and not bob.core.layer.server


def authorized_invite(net: VirtualNetwork, bob: VirtualAgent) -> bytes:
    """The INVITE alice sent with her answer to bob's challenge, once her call is over."""
    alice = caller(net)
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    alice.core.hangup(handle, net.now)
    net.run(seconds=40)  # every transaction of that call ended and forgotten
    return next(d for d in bob.received if d.startswith(b"INVITE") and b"Authorization" in d)


def rebranch(data: bytes, branch: str) -> bytes:
    return re.sub(rb"branch=z9hG4bK[^;\r]+", f"branch=z9hG4bK{branch}".encode(), data, count=1)


def test_a_replayed_answer_is_refused(net: VirtualNetwork) -> None:
    bob = guarded(net)
    invite = authorized_invite(net, bob)
    calls = len(bob.incoming())
    net.inject(rebranch(invite, "replayed"), Peer("udp", "10.0.0.2", 5060), bob.peer)
    net.run(seconds=1)
    assert len(bob.incoming()) == calls  # the same nonce count again: no call
    last = [d for d in sent_to(net, Peer("udp", "10.0.0.2", 5060)) if b"replayed" in d]
    assert status_lines(last) == ["401 Unauthorized"]


def test_an_answer_from_another_address_is_refused(net: VirtualNetwork) -> None:
    bob = guarded(net)
    invite = authorized_invite(net, bob)
    calls = len(bob.incoming())
    moved = rebranch(invite, "moved").replace(b"nc=00000001", b"nc=00000009")
    net.inject(moved, STRANGER, bob.peer)
    net.run(seconds=1)
    assert len(bob.incoming()) == calls  # the nonce was made for alice's address
    assert status_lines(sent_to(net, STRANGER)) == ["401 Unauthorized"]


def test_an_expired_nonce_is_stale_and_answered_without_asking_again(
        net: VirtualNetwork) -> None:
    bob, alice = guarded(net, nonce_lifetime=10.0), caller(net)
    first = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    alice.core.hangup(first, net.now)
    net.run(seconds=30)
    alice.received.clear()
    second = alice.call(bob.uri)  # its INVITE answers the old, now expired, challenge
    net.run(until=lambda: len(bob.incoming()) == 2)
    stale = [c for c in challenges(alice.received) if c.stale]
    assert stale and {c.algorithm for c in stale} == {"SHA-256", "MD5"}
    bob.answer(bob.incoming()[1])
    net.run(seconds=1)
    assert alice.core.calls[second].answered_at is not None


def test_the_guard_checks_its_own_nonce_and_the_count() -> None:
    guard = DigestGuard(CALLERS, "lab", nonce_lifetime=60.0, secret=b"k" * 32)
    request = parse(raw_request("OPTIONS", _bob(), STRANGER, "b1"))
    assert isinstance(request, Request)
    refusal = guard.check(request, STRANGER.host, now=0.0)
    assert refusal is not None and refusal.status == 401
    challenge = parse_challenge(refusal.headers.get_all("WWW-Authenticate")[1])
    assert challenge.algorithm == "MD5"

    def answered(count: int, password: str = "wonderland", nonce: str = challenge.nonce) -> Request:
        given = Challenge(challenge.realm, nonce, "MD5", ("auth",))
        credentials = authorize(given, "alice", password, "OPTIONS", str(request.uri),
                                nonce_count=count)
        headers = request.headers.copy()
        headers.add("Authorization", str(credentials))
        return Request(request.method, request.uri, headers, request.body)

    assert guard.check(answered(1), STRANGER.host, now=1.0) is None
    assert guard.check(answered(2), STRANGER.host, now=2.0) is None
    assert guard.check(answered(2), STRANGER.host, now=3.0) is not None  # count reused
    assert guard.check(answered(3, "guess"), STRANGER.host, now=3.0) is not None
    assert guard.check(answered(4, nonce="forged"), STRANGER.host, now=3.0) is not None
    late = guard.check(answered(5), STRANGER.host, now=61.0)
    assert late is not None and 'stale=true' in (late.headers.get("WWW-Authenticate") or "")


def _bob() -> VirtualAgent:
    return VirtualNetwork().agent("bob")


# --- per-source limits -------------------------------------------------------------------------

def test_a_flood_from_one_address_gets_503_while_others_are_served(
        net: VirtualNetwork) -> None:
    bob = net.agent("bob", guard=GuardSettings(source_rate=10.0, source_burst=20.0))
    alice = caller(net)
    for n in range(200):
        net.inject(raw_request("OPTIONS", bob, STRANGER, f"f{n}", call_id=f"f{n}"),
                   STRANGER, bob.peer)
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    assert alice.core.calls[handle].answered_at is not None
    answers = status_lines(sent_to(net, STRANGER))
    assert answers.count("200 OK") == 20  # the burst, then nothing until tokens come back
    assert answers.count("503 Too many requests from your address") == 180
    refusal = next(d for d in sent_to(net, STRANGER) if d.startswith(b"SIP/2.0 503"))
    assert b"Retry-After: 5" in refusal
    assert len(bob.core.layer.server) <= 20 + 5  # refused ones made no transaction
    net.run(seconds=2)  # 10 a second again
    net.inject(raw_request("OPTIONS", bob, STRANGER, "later", call_id="later"), STRANGER,
               bob.peer)
    net.run(seconds=1)
    assert status_lines(sent_to(net, STRANGER))[-1] == "200 OK"


def test_loopback_and_trusted_networks_are_not_limited(net: VirtualNetwork) -> None:
    bob = net.agent("bob", guard=GuardSettings(source_rate=1.0, source_burst=1.0,
                                             trusted=("10.9.0.0/16",)))
    for n in range(20):
        net.inject(raw_request("OPTIONS", bob, STRANGER, f"t{n}", call_id=f"t{n}"),
                   STRANGER, bob.peer)
    net.run(seconds=1)
    assert status_lines(sent_to(net, STRANGER)) == ["200 OK"] * 20


def test_the_limiter_table_is_bounded() -> None:
    limiter = SourceLimiter(rate=1.0, burst=1.0, sources=100)
    for n in range(10_000):
        assert limiter.allow(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", now=0.0)
    assert len(limiter) == 100
    assert limiter.allow("10.0.39.15", now=0.0) is False  # one of the last 100, spent


def test_calls_in_progress_from_one_address_are_bounded(net: VirtualNetwork) -> None:
    bob, alice = net.agent("bob", guard=GuardSettings(max_calls_per_source=2)), net.agent("alice")
    handles = [alice.call(bob.uri) for _ in range(3)]
    net.run(until=lambda: len(bob.incoming()) == 2)
    net.run(seconds=1)
    third = alice.ended(handles[2])
    assert third is not None and third.status == 503
    alice.core.hangup(handles[0], net.now)
    net.run(seconds=1)
    fourth = alice.call(bob.uri)
    net.run(until=lambda: len(bob.incoming()) == 3)
    assert alice.ended(fourth) is None


# --- hostile requests --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["OPTIONS", "INVITE", "BYE"])
def test_a_request_without_to_gets_400_and_leaves_nothing(net: VirtualNetwork,
                                                          method: str) -> None:
    bob = net.agent("bob")
    headers = f"From: <sip:m@{STRANGER.host}>;tag=1\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n"
    net.inject(raw_request(method, bob, STRANGER, "noto", headers), STRANGER, bob.peer)
    net.run(seconds=1)
    assert status_lines(sent_to(net, STRANGER)) == ["400 Missing To header"]
    assert not bob.core.layer.server and not bob.core.calls and bob.core.get_timer() is None


def test_an_invite_from_a_tel_uri_is_a_call_and_is_forgotten(net: VirtualNetwork) -> None:
    bob = net.agent("bob")
    headers = (f"From: <tel:+15551234567>;tag=t1\r\nTo: <{bob.uri}>\r\nCall-ID: tel1\r\n"
               f"CSeq: 1 INVITE\r\nContact: <sip:m@{STRANGER.host}>\r\n")
    net.inject(raw_request("INVITE", bob, STRANGER, "tel", headers), STRANGER, bob.peer)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.of(Incoming)[0]
    assert isinstance(incoming, Incoming) and "tel:+15551234567" in incoming.caller
    bob.core.reject(bob.incoming()[0], net.now, 486)
    net.run(seconds=40)  # its 486 is never ACKed: Timer H ends the transaction
    assert status_lines(sent_to(net, STRANGER))[-1] == "486 Busy Here"
    assert not bob.core.layer.server and not bob.core.calls


@pytest.mark.parametrize("follow", [False, True])
def test_a_via_maddr_is_followed_only_when_configured(net: VirtualNetwork,
                                                      follow: bool) -> None:
    bob = net.agent("bob", guard=GuardSettings(follow_maddr=follow))
    data = raw_request("OPTIONS", bob, STRANGER, "maddr").replace(
        b";rport", f";maddr={THIRD_PARTY}".encode())
    net.inject(data, STRANGER, bob.peer)
    net.run(seconds=1)
    to_third = [d for _, _, to, d in net.log if to.host == THIRD_PARTY]
    assert bool(to_third) is follow
    assert bool(sent_to(net, STRANGER)) is not follow
