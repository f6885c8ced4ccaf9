"""The core's registrations, digest credentials and RFC 3263 failover on a virtual clock,
against scripted servers (a registrar, a challenging proxy, a server that is down)."""

from __future__ import annotations

import secrets

import pytest

from softphone.core.agent import Credentials
from softphone.core.events import Completed
from softphone.core.network import VirtualNetwork
from softphone.core.registration import CoreRegistration
from softphone.events import Registered, RegistrationFailed, Unregistered
from softphone.sip import Headers, Request, Response
from softphone.sip.auth import Challenge, parse_credentials, verify
from softphone.sip.builder import make_response
from softphone.sip.transaction import Peer

PASSWORD = "secret"


class Registrar:
    """Challenges with qop=auth, checks answers and nonce counts, grants or refuses."""

    def __init__(self, realm: str = "example.com", min_expires: int | None = None,
                 others: tuple[str, ...] = (), service_route: str | None = None,
                 path: str | None = None, kind: int = 401) -> None:
        self.realm, self.min_expires, self.others = realm, min_expires, others
        self.service_route, self.path, self.kind = service_route, path, kind
        self.nonce = secrets.token_hex(8)
        self.counts: list[int] = []
        self.requests: list[Request] = []
        self.refusing: int | None = None

    def __call__(self, request: Request, source: Peer) -> list[Response]:
        self.requests.append(request)
        if request.method == "ACK":
            return []
        if self.refusing is not None:
            return [make_response(request, self.refusing, to_tag="r")]
        challenge, answer_header = (("WWW-Authenticate", "Authorization") if self.kind == 401
                                    else ("Proxy-Authenticate", "Proxy-Authorization"))
        answer = request.headers.get(answer_header)
        if answer is None or not self._valid(request, answer):
            offer = Challenge(self.realm, self.nonce, qop=("auth",))
            return [make_response(request, self.kind, to_tag="r", extra=Headers(
                [(challenge, str(offer))]))]
        return [self.accept(request)]

    def _valid(self, request: Request, answer: str) -> bool:
        credentials = parse_credentials(answer)
        count = int(credentials.nc or "0", 16)
        if credentials.nonce != self.nonce or (self.counts and count <= self.counts[-1]):
            return False  # a replayed count is refused, as a careful server does
        self.counts.append(count)
        return verify(credentials, PASSWORD, request.method, request.body)

    def accept(self, request: Request) -> Response:
        if request.method != "REGISTER":
            return make_response(request, 486, to_tag="r")
        asked = int(request.headers.get("Expires") or "3600")
        if self.min_expires and 0 < asked < self.min_expires:
            return make_response(request, 423, to_tag="r", extra=Headers(
                [("Min-Expires", str(self.min_expires))]))
        extra = Headers()
        contact = request.headers.get("Contact") or ""
        if asked:
            extra.add("Contact", f"{contact};expires={asked}")
            for other in self.others:
                extra.add("Contact", f"<{other}>;expires=3600")
        if self.service_route:
            extra.add("Service-Route", self.service_route)
        if self.path:
            extra.add("Path", self.path)
        return make_response(request, 200, to_tag="r", extra=extra)

    def methods(self) -> list[tuple[str, str | None]]:
        return [(r.method, r.headers.get("Expires")) for r in self.requests]


def account(net: VirtualNetwork, **config: object):  # type: ignore[no-untyped-def]
    return net.agent("alice", credentials=Credentials("alice", PASSWORD), **config)


def test_register_answers_the_challenge_and_refreshes_reusing_the_nonce() -> None:
    net = VirtualNetwork()
    registrar = Registrar()
    net.responder("10.0.9.9", 5060, registrar)
    alice = account(net)
    number, request = alice.core.register("sip:10.0.9.9", net.now, expires=60)
    net.run(seconds=1)
    assert [r.method for r in registrar.requests] == ["REGISTER", "REGISTER"]  # 401, then ok
    registered = alice.of(Registered)
    assert registered and registered[0].expires == 60  # type: ignore[attr-defined]
    done = next(e for e in alice.of(Completed) if e.request == request)
    assert done.ok  # type: ignore[attr-defined]
    refresh = alice.core.timers.armed(alice.core.registrations[number], "refresh")
    assert refresh == pytest.approx(54.0, abs=0.1)  # expiry less max(5 s, 10%)
    assert alice.core.get_timer() is not None
    net.run(seconds=60)
    assert len(registrar.requests) == 3  # the refresh needed no second 401
    assert registrar.counts == [1, 2]   # nc counted up on the cached nonce (RFC 7616)
    assert len(alice.of(Registered)) == 2


def test_423_is_retried_with_min_expires_and_other_contacts_are_noted() -> None:
    net = VirtualNetwork()
    registrar = Registrar(min_expires=300, others=("sip:alice@10.9.9.1:5070",),
                          path="<sip:edge.example.com;lr>")
    net.responder("10.0.9.9", 5060, registrar)
    alice = account(net)
    number, _ = alice.core.register("sip:10.0.9.9", net.now, expires=60)
    registration = alice.core.registrations[number]
    net.run(seconds=1)
    assert registrar.methods()[-1] == ("REGISTER", "300")
    assert registration.granted_expires == 300
    assert registration.other_contacts == ["sip:alice@10.9.9.1:5070"]
    assert registration.path == ["<sip:edge.example.com;lr>"]


def test_unregister_sends_expires_0_and_forgets_the_binding() -> None:
    net = VirtualNetwork()
    registrar = Registrar()
    net.responder("10.0.9.9", 5060, registrar)
    alice = account(net)
    number, _ = alice.core.register("sip:10.0.9.9", net.now, expires=60)
    net.run(seconds=1)
    registration = alice.core.registrations[number]
    request = alice.core.unregister(number, net.now)
    net.run(seconds=1)
    assert registrar.methods()[-1] == ("REGISTER", "0")
    assert alice.of(Unregistered)
    assert number not in alice.core.registrations
    assert alice.core.timers.armed(registration, "refresh") is None
    assert any(e.request == request for e in alice.of(Completed))  # type: ignore[attr-defined]


def test_a_failed_refresh_is_reported_and_retried_with_back_off() -> None:
    net = VirtualNetwork()
    registrar = Registrar()
    net.responder("10.0.9.9", 5060, registrar)
    alice = account(net)
    number, _ = alice.core.register("sip:10.0.9.9", net.now, expires=60)
    net.run(seconds=1)
    registrar.refusing = 503
    net.run(seconds=56)
    failed = alice.of(RegistrationFailed)
    assert failed and failed[0].status == 503  # type: ignore[attr-defined]
    retry = alice.core.timers.armed(alice.core.registrations[number], "refresh")
    assert retry is not None and retry - net.now <= 30.0
    registrar.refusing = None
    net.run(seconds=31)
    assert len(alice.of(Registered)) == 2


def test_a_wrong_password_fails_once_without_looping() -> None:
    net = VirtualNetwork()
    registrar = Registrar()
    net.responder("10.0.9.9", 5060, registrar)
    alice = net.agent("alice", credentials=Credentials("alice", "wrong"))
    alice.core.register("sip:10.0.9.9", net.now, expires=60)
    net.run(seconds=5)
    assert len(registrar.requests) == 2
    failed = alice.of(RegistrationFailed)
    assert failed and failed[0].status == 401  # type: ignore[attr-defined]


def test_the_service_route_carries_later_requests() -> None:
    net = VirtualNetwork()
    registrar = Registrar(service_route="<sip:10.0.9.8:5060;lr>")
    net.responder("10.0.9.9", 5060, registrar)
    proxy = Registrar(kind=407)
    net.responder("10.0.9.8", 5060, proxy)
    alice = account(net)
    alice.core.register("sip:10.0.9.9", net.now, expires=600)
    net.run(seconds=1)
    alice.call("sip:bob@10.0.0.77")
    net.run(seconds=5)
    invites = [r for r in proxy.requests if r.method == "INVITE"]
    assert invites, "the INVITE went to the Service-Route, not to bob"
    assert invites[0].headers.get("Route") == "<sip:10.0.9.8:5060;lr>"


def test_a_proxy_challenge_is_answered_and_the_next_invite_needs_none() -> None:
    net = VirtualNetwork()
    proxy = Registrar(kind=407)
    net.responder("10.0.9.8", 5060, proxy)
    alice = account(net, outbound_proxy="sip:10.0.9.8")
    first = alice.call("sip:bob@example.com")
    net.run(until=lambda: alice.ended(first) is not None)
    invites = [r for r in proxy.requests if r.method == "INVITE"]
    assert [r.cseq.number for r in invites] == [1, 2]
    assert invites[1].headers.get("Proxy-Authorization") is not None
    ended = alice.ended(first)
    assert ended is not None and ended.status == 486  # the proxy's answer, once authorized
    second = alice.call("sip:carol@example.com")
    net.run(until=lambda: alice.ended(second) is not None)
    invites = [r for r in proxy.requests if r.method == "INVITE"]
    assert len(invites) == 3 and invites[2].headers.get("Proxy-Authorization") is not None
    assert proxy.counts == [1, 2]


def test_failover_to_the_next_target_when_the_first_never_answers() -> None:
    net = VirtualNetwork()
    bob = net.agent("bob")
    net.dns["example.com"] = [Peer("udp", "10.0.7.7", 5060), bob.peer]  # the first is down
    alice = net.agent("alice")
    handle = alice.call("sip:bob@example.com")
    net.run(until=lambda: bool(bob.incoming()))
    assert net.now == pytest.approx(32.0, abs=0.1)  # Timer B on the first target
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    assert alice.core.calls[handle].answered_at is not None


def test_a_503_with_retry_after_fails_over_and_keeps_the_server_aside() -> None:
    net = VirtualNetwork()
    busy: list[Request] = []

    def overloaded(request: Request, source: Peer) -> list[Response]:
        busy.append(request)
        if request.method == "ACK":
            return []
        return [make_response(request, 503, to_tag="o", extra=Headers(
            [("Retry-After", "60")]))]

    net.responder("10.0.7.7", 5060, overloaded)
    bob = net.agent("bob")
    net.dns["example.com"] = [Peer("udp", "10.0.7.7", 5060), bob.peer]
    alice = net.agent("alice", unanswered_timeout=1.0)
    alice.call("sip:bob@example.com")
    net.run(until=lambda: bool(bob.incoming()))
    assert net.now < 1.0  # straight on after the 503
    net.run(seconds=5)
    alice.call("sip:bob@example.com")  # within the minute: the busy server is skipped
    net.run(until=lambda: len(bob.incoming()) == 2)
    assert [r.method for r in busy].count("INVITE") == 1


def test_a_name_that_does_not_resolve_ends_the_call_with_503() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice")
    handle = alice.call("sip:bob@nowhere.invalid")
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and ended.status == 503 and "nowhere.invalid" in ended.reason


def test_registration_states_refuse_what_they_do_not_allow() -> None:
    net = VirtualNetwork()
    alice = account(net)
    registration = CoreRegistration(alice.core, alice.core.address_of_record, 60, True)
    from softphone.core.state import RegistrationInput
    from softphone.sip.errors import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        registration._move(RegistrationInput.ACCEPTED)  # nothing was sent


def test_keepalives_hold_the_binding_and_a_lost_flow_registers_again() -> None:
    """RFC 5626: a CRLF ping every 25 s on UDP (a NAT binding lives about 30 s); when the
    flow is lost (its connection closed, or no pong), the binding is renewed after 1 s, then
    2, 4 ... while it keeps failing."""
    net = VirtualNetwork()
    registrar = Registrar()
    peer = net.responder("10.0.9.9", 5060, registrar)
    alice = account(net)
    number, _ = alice.core.register("sip:10.0.9.9", net.now, expires=3600)
    net.run(seconds=1)
    registered = len(registrar.requests)
    net.run(seconds=60)
    pings = [t for t, source, _, data in net.log if data == b"\r\n\r\n"]
    assert [round(t) for t in pings] == [25, 50]
    register = registrar.requests[-1]
    assert 'reg-id=1;+sip.instance="<urn:uuid:' in (register.headers.get("Contact") or "")
    alice.core.connection_lost(peer, net.now)
    net.run(seconds=0.5)
    assert len(registrar.requests) == registered
    net.run(seconds=1)
    assert len(registrar.requests) == registered + 1  # registered again after 1 s
    registration = alice.core.registrations[number]
    assert registration.flow == peer and registration.state.value == "registered"


def test_a_connection_flow_without_pong_counts_as_lost() -> None:
    net = VirtualNetwork()
    registrar = Registrar()
    net.responder("10.0.9.9", 5060, registrar)
    alice = account(net, keepalive=5.0)
    number, _ = alice.core.register("sip:10.0.9.9", net.now, expires=3600)
    net.run(seconds=1)
    registration = alice.core.registrations[number]
    registration.flow = Peer("tcp", "10.0.9.9", 5060)  # as if it had gone over TCP
    alice.core.timers.arm(registration, "keepalive", net.now)
    net.run(seconds=1)
    pong_due = alice.core.timers.armed(registration, "pong")
    assert pong_due is not None
    alice.core.keepalive_answered(Peer("tcp", "10.0.9.9", 5060), net.now)
    assert alice.core.timers.armed(registration, "pong") is None  # the pong came
    alice.core.timers.arm(registration, "keepalive", net.now)
    net.run(seconds=12)  # this time no pong: the flow is dead, so register again
    assert registrar.requests[-1].method == "REGISTER" and len(registrar.requests) >= 3


def test_behind_a_nat_the_contact_becomes_the_public_address_and_keepalives_keep_it() -> None:
    """RFC 3581: the registrar's received/rport reveal the NAT; Alice registers again with
    her public address (removing the private binding), and her keep-alives hold the NAT's
    binding open, so a call from outside a minute later still reaches her."""
    for keepalive, reachable in ((None, True), (0.0, False)):
        net = VirtualNetwork()
        registrar = Registrar()
        seen: list[Request] = []

        def answer(request: Request, source: Peer, registrar: Registrar = registrar,
                   seen: list[Request] = seen) -> list[Response]:
            seen.append(request)
            responses = registrar(request, source)
            for response in responses:
                via = response.top_via.with_param("received", source.host).with_param(
                    "rport", str(source.port))
                response.headers.replace_first("Via", str(via))
            return responses

        net.responder("198.51.100.9", 5060, answer)
        alice = account(net, keepalive=keepalive)
        bob = net.agent("bob", host="198.51.100.20")
        net.nat(alice.host, "203.0.113.1", timeout=30.0)
        alice.core.register("sip:198.51.100.9", net.now, expires=3600)
        net.run(seconds=2)
        contacts = [r.headers.get_all("Contact") for r in seen if r.method == "REGISTER"]
        # (;ob: an outbound registration, RFC 5626 4.2.1)
        assert contacts[-1][0].startswith("<sip:alice@203.0.113.1:40000;ob>;reg-id=1;")
        assert contacts[-1][1] == f"<sip:alice@{alice.host}:5060;ob>;expires=0"
        net.run(seconds=60)
        handle = bob.call("sip:alice@203.0.113.1:40000")
        net.run(seconds=40)
        assert bool(alice.incoming()) is reachable, keepalive
        if not reachable:
            ended = bob.ended(handle)
            assert ended is not None and ended.status == 408
