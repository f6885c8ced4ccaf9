"""Session timers (RFC 4028) and UPDATE (RFC 3311) on the virtual clock: every branch of who
refreshes and how, a refresh that never comes, a 422 answered with the peer's Min-SE, and an
offer in an UPDATE. Hours of call time run in milliseconds."""

from __future__ import annotations

import pytest

from softphone.core.events import CallGone
from softphone.core.network import VirtualAgent, VirtualNetwork, is_request
from softphone.core.session_timer import SessionTimerSettings
from softphone.events import Hold
from softphone.sip import parse
from softphone.sip.validate import SDP, EndpointPolicy


def connect(net: VirtualNetwork, alice: VirtualAgent, bob: VirtualAgent) -> tuple[str, str]:
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[-1]
    bob.answer(incoming)
    net.run(seconds=1)
    return handle, incoming


def sent(agent: VirtualAgent, start: bytes) -> list[bytes]:
    return [data for data in agent.sent if data.startswith(start)]


def header(data: bytes, name: str) -> str | None:
    return parse(data).headers.get(name)


def timers(interval: int, min_se: int = 90) -> SessionTimerSettings:
    return SessionTimerSettings(interval, min_se)


def test_by_default_the_caller_refreshes_with_update_every_half_interval() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    invite = sent(alice, b"INVITE")[0]
    assert header(invite, "Session-Expires") == "1800" and header(invite, "Min-SE") == "90"
    assert "timer" in parse(invite).tokens("Supported")
    ok = next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d)
    assert header(ok, "Session-Expires") == "1800;refresher=uac"
    assert header(ok, "Require") == "timer"
    net.run(seconds=3 * 3600)  # three hours
    updates = sent(alice, b"UPDATE")
    assert len(updates) == 12  # one every 900 s
    assert header(updates[0], "Session-Expires") == "1800;refresher=uac"
    assert alice.ended(handle) is None and bob.ended(incoming) is None
    assert not sent(bob, b"BYE")


def test_a_refresh_that_times_out_ends_the_call_from_the_refresher() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("UPDATE"), times=None)
    handle, incoming = connect(net, alice, bob)
    net.run(until=lambda: alice.ended(handle) is not None)
    ended = alice.ended(handle)
    assert ended is not None and (ended.status, ended.by) == (408, "error")
    assert "Session refresh failed" in ended.reason


def test_a_refresh_that_never_comes_ends_the_call_with_bye() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    answered_at = net.now - 1
    # alice forgets to refresh (a peer with a broken timer)
    alice.core.timers.cancel_all(alice.core.calls[handle], ("session_refresh",))
    net.run(until=lambda: bob.ended(incoming) is not None)
    ended = bob.ended(incoming)
    assert ended is not None and (ended.status, ended.by) == (408, "error")
    assert "Session expired" in ended.reason
    assert net.now - answered_at == pytest.approx(1800 - 32, abs=1)  # RFC 4028 10
    assert not sent(alice, b"UPDATE")
    net.run(seconds=1)
    theirs = alice.ended(handle)
    assert theirs is not None and theirs.by == "remote"


def test_a_422_is_answered_with_the_peers_min_se() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice", session_timer=timers(300))
    bob = net.agent("bob", session_timer=timers(1800, min_se=600))
    handle, incoming = connect(net, alice, bob)
    assert [header(i, "Session-Expires") for i in sent(alice, b"INVITE")] == ["300", "600"]
    assert any(d.startswith(b"SIP/2.0 422") and header(d, "Min-SE") == "600"
               for d in bob.sent)
    call = alice.core.calls[handle]
    assert call.session_timer is not None and call.session_timer.interval == 600
    net.run(seconds=700)
    assert len(sent(alice, b"UPDATE")) == 2  # at 300 s and 600 s


def test_a_caller_without_an_interval_lets_the_callee_refresh() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice", session_timer=timers(0))
    bob = net.agent("bob")
    connect(net, alice, bob)
    assert header(sent(alice, b"INVITE")[0], "Session-Expires") is None
    ok = next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d)
    assert header(ok, "Session-Expires") == "1800;refresher=uas"
    net.run(seconds=2000)
    assert len(sent(bob, b"UPDATE")) == 2 and not sent(alice, b"UPDATE")


def test_a_peer_that_does_not_allow_update_is_refreshed_by_reinvite() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice", session_timer=timers(0))
    alice.core.policy = EndpointPolicy(methods=frozenset(
        {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"}))
    bob = net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    net.run(seconds=2000)
    refreshes = sent(bob, b"INVITE")
    assert len(refreshes) == 2 and not sent(bob, b"UPDATE")
    assert header(refreshes[0], "Session-Expires") == "1800;refresher=uac"
    assert alice.ended(handle) is None and bob.ended(incoming) is None


def test_no_interval_on_either_side_means_no_timer() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice", session_timer=timers(0))
    bob = net.agent("bob", session_timer=timers(0))
    handle, _ = connect(net, alice, bob)
    ok = next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d)
    assert header(ok, "Session-Expires") is None
    assert alice.core.calls[handle].session_timer is None
    net.run(seconds=4000)
    assert not sent(alice, b"UPDATE") and not sent(bob, b"UPDATE")


def test_an_offer_in_update_is_answered_in_its_200() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    call = alice.core.calls[handle]
    assert call.dialog is not None and call.session is not None
    update = call.dialog.create_request("UPDATE", call.session.offer("sendonly"), SDP)
    data = bytes(update).replace(b"\r\n", f"\r\nVia: SIP/2.0/UDP {alice.host}:5060;"
                                          "branch=z9hG4bKupd1\r\n".encode(), 1)
    net.inject(data, alice.peer, bob.peer)
    net.run(seconds=1)
    answer = next(d for d in alice.received if d.startswith(b"SIP/2.0 200")
                  and parse(d).cseq.method == "UPDATE")
    assert b"a=recvonly" in answer
    holds = [e for e in bob.of(Hold) if isinstance(e, Hold)]
    assert holds and holds[-1].held and holds[-1].by == "remote"
    assert not [e for e in bob.events if isinstance(e, CallGone)]
