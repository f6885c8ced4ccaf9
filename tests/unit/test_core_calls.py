"""The user-agent core on a virtual clock: whole calls between cores over an in-memory
network, with the races RFC 3261 names (CANCEL before and after the 200, a lost ACK, a lost
200, glare, forked answers, a failed re-INVITE, BYE during a re-INVITE). No sockets, no
sleeping: every test runs in milliseconds whatever its virtual duration."""

from __future__ import annotations

import pytest

from softphone.core.call import CoreCall
from softphone.core.events import CallGone, Completed, MediaCheck, MediaReady
from softphone.core.network import VirtualAgent, VirtualNetwork, is_request, is_response
from softphone.core.state import (
    CALL_TRANSITIONS,
    OFFER_TRANSITIONS,
    CallInput,
    CallState,
    OfferInput,
    OfferState,
    next_call_state,
    next_offer_state,
)
from softphone.events import Answered, Hold, MediaTimeout, Ringing
from softphone.sip import parse
from softphone.sip.errors import LocalProtocolError

# --- the state tables ------------------------------------------------------------------------

@pytest.mark.parametrize("state", list(CallState))
@pytest.mark.parametrize("event", list(CallInput))
def test_every_call_transition_is_in_the_table_or_refused(state: CallState,
                                                          event: CallInput) -> None:
    allowed = CALL_TRANSITIONS[state]
    if event in allowed:
        assert next_call_state(state, event) is allowed[event]
    else:
        with pytest.raises(LocalProtocolError, match=state.value):
            next_call_state(state, event)


@pytest.mark.parametrize("state", list(OfferState))
@pytest.mark.parametrize("event", list(OfferInput))
def test_every_offer_answer_transition_is_in_the_table_or_refused(
        state: OfferState, event: OfferInput) -> None:
    allowed = OFFER_TRANSITIONS[state]
    if event in allowed:
        assert next_offer_state(state, event) is allowed[event]
    else:
        with pytest.raises(LocalProtocolError):
            next_offer_state(state, event)


def test_glare_is_what_the_offer_table_forbids() -> None:
    """Receiving an offer while ours is out is not a transition: it is glare."""
    with pytest.raises(LocalProtocolError):
        next_offer_state(OfferState.LOCAL_OFFER, OfferInput.RECEIVE_OFFER)


# --- helpers -------------------------------------------------------------------------------

@pytest.fixture
def net() -> VirtualNetwork:
    return VirtualNetwork()


def ladder(net: VirtualNetwork) -> list[str]:
    """The first line of every datagram delivered, in order (100 Trying left out)."""
    lines = [data.split(b"\r\n", 1)[0].decode() for _, _, _, data in net.log]
    return [line.split(" sip:")[0] if not line.startswith("SIP/") else line[8:]
            for line in lines if line != "SIP/2.0 100 Trying"]


def connect(net: VirtualNetwork, alice: VirtualAgent, bob: VirtualAgent,
            **options: object) -> tuple[str, str]:
    """Alice calls Bob, Bob answers: both handles, once the ACK is in."""
    known = len(bob.incoming())
    handle = alice.call(bob.uri, **options)
    net.run(until=lambda: len(bob.incoming()) > known)
    incoming = bob.incoming()[-1]
    bob.answer(incoming)
    acks = sum(d.startswith(b"ACK") for d in bob.received)
    net.run(until=lambda: sum(d.startswith(b"ACK") for d in bob.received) > acks)
    net.run(seconds=0.1)
    return handle, incoming


def media_of(agent: VirtualAgent, handle: str) -> list[MediaReady]:
    return [e for e in agent.events if isinstance(e, MediaReady) and e.handle == handle]


# --- calls ---------------------------------------------------------------------------------

def test_a_call_answered_and_hung_up(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.core.ring(incoming, net.now)
    net.run(seconds=1)
    bob.answer(incoming)
    net.run(seconds=5)
    assert [type(e) for e in alice.events if isinstance(e, Answered | Ringing)] == [
        Ringing, Answered]
    assert media_of(alice, handle)[0].media.codec.key == media_of(bob, incoming)[0] \
        .media.codec.key == "opus"
    alice.core.hangup(handle, net.now)
    net.run()
    # the 180 is reliable (both support 100rel): PRACKed before the answer (RFC 3262)
    assert ladder(net) == ["INVITE", "180 Ringing", "PRACK", "200 OK", "200 OK", "ACK", "BYE",
                           "200 OK"]
    mine, theirs = alice.ended(handle), bob.ended(incoming)
    assert mine is not None and (mine.status, mine.by) == (200, "local")
    assert mine.duration == pytest.approx(5.0, abs=0.02)
    assert theirs is not None and (theirs.status, theirs.by) == (200, "remote")
    assert not alice.core.calls and not bob.core.calls
    assert alice.core.get_timer() is None or alice.core.get_timer() > net.now  # only reaping


def test_cancel_before_the_answer(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.core.ring(bob.incoming()[0], net.now)
    net.run(seconds=0.5)
    alice.core.hangup(handle, net.now)
    net.run()
    assert ladder(net) == ["INVITE", "180 Ringing", "PRACK", "200 OK", "CANCEL", "200 OK",
                           "487 Request Terminated", "ACK"]
    mine, theirs = alice.ended(handle), bob.ended(bob.incoming()[0])
    assert mine is not None and (mine.status, mine.by) == (487, "local")
    assert theirs is not None and (theirs.status, theirs.by) == (487, "remote")


def test_giving_up_before_any_provisional_cancels_when_one_comes(net: VirtualNetwork) -> None:
    """No CANCEL before a provisional (RFC 3261 9.1): the call ends here, and the late 180
    still gets its CANCEL."""
    alice, bob = net.agent("alice"), net.agent("bob")
    net.delay(is_request("INVITE"), 2.0)
    handle = alice.call(bob.uri)
    net.run(seconds=0.5)
    alice.core.hangup(handle, net.now)
    ended = alice.ended(handle)
    assert ended is not None and ended.status == 408
    net.run(until=lambda: bool(bob.incoming()))
    bob.core.ring(bob.incoming()[0], net.now)
    net.run()
    assert "CANCEL" in ladder(net)
    assert bob.ended(bob.incoming()[0]) is not None


def test_a_cancel_crossing_the_200_ends_with_ack_then_bye(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.core.ring(incoming, net.now)
    net.run(seconds=0.5)
    bob.answer(incoming)        # the 200 leaves Bob ...
    alice.core.hangup(handle, net.now)  # ... as Alice's CANCEL leaves her
    net.run()
    steps = ladder(net)
    assert steps.index("ACK") < steps.index("BYE")
    assert "200 OK" in steps[steps.index("BYE"):]  # Bob answered the BYE
    mine, theirs = alice.ended(handle), bob.ended(incoming)
    assert mine is not None and (mine.status, mine.by) == (487, "local")
    assert theirs is not None and (theirs.status, theirs.by) == (200, "remote")


def test_a_lost_ack_is_made_good_by_the_repeated_200(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("ACK"))
    handle, incoming = connect(net, alice, bob)
    net.run(seconds=10)
    assert ladder(net) == ["INVITE", "200 OK", "200 OK", "ACK"]  # the first ACK was lost
    assert [d.split(b" ")[0] for d in alice.sent].count(b"ACK") == 2
    assert bob.core.calls[incoming].state is CallState.ANSWERED
    assert alice.core.calls[handle].state is CallState.ANSWERED


def test_no_ack_at_all_ends_the_call_with_bye_after_64_t1(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("ACK"), times=None)
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.answer(incoming)
    answered_at = net.now
    net.run(until=lambda: bob.ended(incoming) is not None)
    ended = bob.ended(incoming)
    assert ended is not None and (ended.status, ended.by) == (408, "error")
    assert net.now - answered_at == pytest.approx(32.0, abs=0.1)  # Timer L = 64*T1
    retransmissions = ladder(net).count("200 OK")
    assert 7 <= retransmissions <= 12  # T1 doubling to T2, then every T2
    net.run()
    assert "BYE" in ladder(net)
    assert alice.ended(handle) is not None


def test_a_lost_200_comes_again_and_is_acked(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_response(200, "INVITE"))
    handle, incoming = connect(net, alice, bob)
    assert ladder(net)[:4] == ["INVITE", "200 OK", "ACK"][:2] + ladder(net)[2:4]
    assert alice.core.calls[handle].state is CallState.ANSWERED
    assert bob.core.calls[incoming].dialog is not None
    assert bob.core.calls[incoming].dialog.state == "confirmed"  # type: ignore[union-attr]


def test_bye_before_the_ack_ends_the_call_and_stops_the_200s(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    net.delay(is_request("ACK"), 3.0)
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.answer(incoming)
    net.run(until=lambda: any(d.startswith(b"ACK") for d in alice.sent))
    alice.core.hangup(handle, net.now)  # the BYE overtakes the delayed ACK
    net.run()
    ended = bob.ended(incoming)
    assert ended is not None and (ended.status, ended.by) == (200, "remote")
    at_end = [t for t, _, _, d in net.log if d.startswith(b"BYE")][0]
    assert not [t for t, _, _, d in net.log if d.startswith(b"SIP/2.0 200 OK") and
                b"INVITE" in d and t > at_end + 0.01]


# --- glare and re-INVITEs ---------------------------------------------------------------------

def test_glare_gets_491_both_retry_and_both_end_as_they_asked(net: VirtualNetwork) -> None:
    """Both put the call on hold at the same instant (RFC 3261 14.2): each gets 491, the
    non-owner of the Call-ID retries within 2 s, the owner after 2.1-4 s, and both end
    holding (inactive: each answers the other's hold with its own)."""
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    mine = alice.core.reinvite(handle, net.now, direction="sendonly")
    theirs = bob.core.reinvite(incoming, net.now, direction="sendonly")
    net.run(seconds=10)
    assert ladder(net).count("491 Request Pending") == 2
    done = {e.request: e for e in alice.of(Completed)} | {e.request: e for e in bob.of(Completed)}
    assert done[mine].ok and done[theirs].ok  # type: ignore[union-attr]
    assert media_of(alice, handle)[-1].media.direction == "inactive"
    assert media_of(bob, incoming)[-1].media.direction == "inactive"
    assert alice.core.calls[handle].session.wish == "sendonly"  # type: ignore[union-attr]
    assert [e.held for e in alice.of(Hold)][-1] is True  # type: ignore[attr-defined]
    retries = [t for t, _, _, d in net.log if d.startswith(b"INVITE")][1:]
    first_491 = next(t for t, _, _, d in net.log if d.startswith(b"SIP/2.0 491"))
    owner_retry = next(t for t, s, _, d in net.log if d.startswith(b"INVITE") and
                       s == alice.peer and t > first_491)
    other_retry = next(t for t, s, _, d in net.log if d.startswith(b"INVITE") and
                       s == bob.peer and t > first_491)
    assert other_retry - first_491 <= 2.05 and 2.1 <= owner_retry - first_491 <= 4.05
    assert len(retries) == 4  # the two first re-INVITEs and the two retries


def test_a_refused_reinvite_keeps_the_old_session(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob", codecs=("opus", "pcmu"))
    handle, incoming = connect(net, alice, bob)
    before = media_of(alice, handle)[-1].media
    request = alice.core.reinvite(handle, net.now, codecs=("pcma",))  # Bob has no PCMA
    net.run(seconds=2)
    result = next(e for e in alice.of(Completed) if e.request == request)
    assert result.status == 488  # type: ignore[attr-defined]
    session = alice.core.calls[handle].session
    assert session is not None and session.media == before
    assert session.state is OfferState.DONE
    assert alice.core.calls[handle].state is CallState.ANSWERED
    again = alice.core.reinvite(handle, net.now, direction="sendonly")
    net.run(seconds=2)
    assert next(e for e in alice.of(Completed) if e.request == again).ok  # type: ignore


def test_bye_during_a_reinvite_ends_the_call_and_the_reinvite(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    net.delay(is_request("INVITE"), 1.0)
    request = alice.core.reinvite(handle, net.now, direction="sendonly")
    bob.core.hangup(incoming, net.now)
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and ended.by == "remote"
    result = next(e for e in alice.of(Completed) if e.request == request)
    assert result.status == 481  # type: ignore[attr-defined]
    assert "481 Call/Transaction Does Not Exist" in ladder(net)  # the late re-INVITE


def test_an_invite_without_sdp_is_offered_in_the_200_and_answered_in_the_ack(
        net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob", codecs=("pcmu",))
    handle, incoming = connect(net, alice, bob, with_offer=False)
    invite = next(d for d in bob.received if d.startswith(b"INVITE"))
    ack = next(d for d in bob.received if d.startswith(b"ACK"))
    assert invite.endswith(b"\r\n\r\n") and b"m=audio" in ack
    assert media_of(alice, handle)[-1].media.codec.key == "pcmu"  # from Bob's offer
    assert media_of(bob, incoming)[-1].media.codec.key == "pcmu"


def test_a_reinvite_without_sdp_gets_our_offer_and_the_ack_answers(
        net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    call = alice.core.calls[handle]
    assert call.dialog is not None
    reinvite = call.dialog.create_request("INVITE")
    call.core.exchange(reinvite, call.dialog.next_hop, lambda r: None, None, net.now)
    net.run(seconds=1)
    answer = next(d for d in alice.received if d.startswith(b"SIP/2.0 200 OK")
                  and b"CSeq: 2 INVITE" in d)
    assert b"m=audio" in answer
    media = len(media_of(bob, incoming))
    offer = parse(answer)
    session = call.session
    assert session is not None
    session.state = OfferState.NONE
    session.take_offer(offer.body)
    ack = call.dialog.create_ack(2, session.answer(), "application/sdp")
    call.core.send_stateless(ack, call.dialog.next_hop, bob.peer)
    net.run(seconds=1)
    assert len(media_of(bob, incoming)) == media + 1


# --- forking --------------------------------------------------------------------------------

def test_a_second_fork_answering_is_acked_and_ended_with_bye(net: VirtualNetwork) -> None:
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    handle, incoming = connect(net, alice, bob)
    first = parse(next(d for d in alice.received if d.startswith(b"SIP/2.0 200")))
    other = bytes(first).replace(first.to_address.tag.encode(), b"forkedtag") \
        .replace(f"@{bob.host}:{bob.port}>".encode(), f"@{carol.host}:{carol.port}>".encode())
    net.inject(other, bob.peer, alice.peer)
    net.run(seconds=2)
    to_carol = [d.split(b"\r\n")[0] for d in carol.received]
    assert to_carol[:2] == [b"ACK sip:bob@10.0.0.3:5060 SIP/2.0",
                            b"BYE sip:bob@10.0.0.3:5060 SIP/2.0"]
    net.inject(other, bob.peer, alice.peer)  # that 2xx again: the ACK again, no new BYE
    net.run(seconds=2)
    assert [d.split(b" ")[0] for d in carol.received].count(b"BYE") == 1
    assert [d.split(b" ")[0] for d in carol.received].count(b"ACK") == 2
    assert alice.core.calls[handle].state is CallState.ANSWERED  # the first 2xx won


# --- in-dialog requests ------------------------------------------------------------------------

def in_dialog(call: CoreCall, method: str, cseq: int | None = None) -> bytes:
    assert call.dialog is not None
    request = call.dialog.create_request(method, cseq=cseq)
    peer = call.core.points["udp"]
    return bytes(request).replace(
        b"\r\n", f"\r\nVia: SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{method}"
                 f"{cseq}\r\n".encode(), 1)


def test_in_dialog_requests_get_the_rfc_answers(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    call = alice.core.calls[handle]
    net.inject(in_dialog(call, "PUBLISH"), alice.peer, bob.peer)
    net.inject(in_dialog(call, "INFO", cseq=7), alice.peer, bob.peer)
    net.run(seconds=1)
    net.inject(in_dialog(call, "INFO", cseq=5), alice.peer, bob.peer)  # below the last
    strange = in_dialog(call, "OPTIONS").replace(call.local_tag.encode(), b"unknowntag")
    net.inject(strange, alice.peer, bob.peer)
    net.run(seconds=1)
    answers = [d.split(b"\r\n")[0] for d in alice.received]
    assert b"SIP/2.0 405 Method Not Allowed" in answers
    assert b"SIP/2.0 500 CSeq out of order" in answers
    assert b"SIP/2.0 481 Call/Transaction Does Not Exist" in answers
    refusal = next(d for d in alice.received if d.startswith(b"SIP/2.0 405"))
    assert (b"Allow: ACK, BYE, CANCEL, INFO, INVITE, MESSAGE, NOTIFY, OPTIONS, PRACK, REFER, "
            b"UPDATE") in refusal


def test_a_second_invite_while_the_first_is_unanswered_gets_500_with_retry_after(
        net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.core.ring(incoming, net.now)
    net.run(seconds=0.5)
    early = next(iter(alice.core.calls.values())).early
    assert early
    dialog = next(iter(early.values()))
    second = dialog.create_request("INVITE")
    data = bytes(second).replace(b"\r\n", f"\r\nVia: SIP/2.0/UDP {alice.host}:5060;"
                                          "branch=z9hG4bKsecond\r\n".encode(), 1)
    net.inject(data, alice.peer, bob.peer)
    net.run(seconds=1)
    refusal = next(d for d in alice.received if d.startswith(b"SIP/2.0 500"))
    assert b"Retry-After: " in refusal


def test_the_call_api_refuses_what_a_state_does_not_allow(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    with pytest.raises(LocalProtocolError, match="answered cannot be answered"):
        bob.answer(incoming)
    with pytest.raises(LocalProtocolError, match="cannot be rejected"):
        bob.core.reject(incoming, net.now)
    alice.core.reinvite(handle, net.now, direction="sendonly")
    with pytest.raises(LocalProtocolError, match="already under way"):
        alice.core.reinvite(handle, net.now)
    with pytest.raises(LocalProtocolError, match="no call"):
        alice.core.ring("nonsense", net.now)


# --- UA timers ----------------------------------------------------------------------------

def test_ring_timeout_answer_after_and_duration_are_core_timers(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri, ring_timeout=3.0, duration=2.0)
    assert alice.core.get_timer() is not None
    net.run(until=lambda: bool(bob.incoming()))
    incoming = bob.incoming()[0]
    bob.answer(incoming, after=1.0)  # rings now, answers in a second
    assert bob.core.timers.armed(bob.core.calls[incoming], "answer_after") == \
        pytest.approx(net.now + 1.0)
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and (ended.status, ended.by) == (200, "local")
    assert ended.duration == pytest.approx(2.0, abs=0.02)  # the duration timer hung up
    assert "180 Ringing" in ladder(net)


def test_an_unanswered_ring_times_out_into_cancel(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri, ring_timeout=3.0)
    net.run(until=lambda: bool(bob.incoming()))
    bob.core.ring(bob.incoming()[0], net.now)
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and ended.status == 487
    assert [t for t, _, _, d in net.log if d.startswith(b"CANCEL")][0] == pytest.approx(
        3.0, abs=0.01)


def test_a_call_nobody_answers_gets_480_after_the_unanswered_timeout(
        net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob", unanswered_timeout=20.0)
    handle = alice.call(bob.uri)
    net.run()
    ended = alice.ended(handle)
    assert ended is not None and ended.status == 480
    assert net.now >= 20.0


def test_rtp_inactivity_is_a_core_timer_asking_the_shell(net: VirtualNetwork) -> None:
    alice = net.agent("alice", rtp_timeout=5.0, hangup_on_rtp_timeout=True)
    bob = net.agent("bob")
    handle, incoming = connect(net, alice, bob)
    alice.last_packet[handle] = net.now + 3.0  # media flowed for 3 more seconds, then not
    net.run(until=lambda: alice.ended(handle) is not None)
    checks = [e for e in alice.events if isinstance(e, MediaCheck)]
    assert len(checks) >= 2  # asked at 5 s (fine: heard at 3 s), again at 8 s
    timeout = next(e for e in alice.events if isinstance(e, MediaTimeout))
    assert timeout.seconds >= 5.0
    ended = alice.ended(handle)
    assert ended is not None and ended.reason.startswith("No RTP for")


def test_every_event_is_consumed_and_the_core_is_left_clean(net: VirtualNetwork) -> None:
    alice, bob = net.agent("alice"), net.agent("bob")
    for _ in range(3):
        handle, incoming = connect(net, alice, bob)
        alice.core.hangup(handle, net.now)
        net.run()
    assert not alice.core.calls and not bob.core.calls
    assert not alice.core._calls_by_dialog and not bob.core._calls_by_invite
    assert all(isinstance(e.ended.status, int) for e in alice.of(CallGone))  # type: ignore


def test_a_kept_fork_becomes_a_call_of_its_own(net: VirtualNetwork) -> None:
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    handle, incoming = connect(net, alice, bob, keep_forks=True)
    first = parse(next(d for d in alice.received if d.startswith(b"SIP/2.0 200")))
    other = bytes(first).replace(first.to_address.tag.encode(), b"keptfork") \
        .replace(f"@{bob.host}:{bob.port}>".encode(), f"@{carol.host}:{carol.port}>".encode())
    net.inject(other, bob.peer, alice.peer)
    net.run(seconds=1)
    fork = f"{alice.core.calls[handle].call_id}#keptfork"
    assert fork in alice.core.calls and alice.core.calls[fork].state is CallState.ANSWERED
    assert [d.split(b" ")[0] for d in carol.received] == [b"ACK"]  # kept: no BYE
    alice.core.hangup(fork, net.now)
    net.run(seconds=1)
    assert [d.split(b" ")[0] for d in carol.received] == [b"ACK", b"BYE"]
    assert alice.core.calls[handle].state is CallState.ANSWERED
