"""Reliable provisional responses (RFC 3262), early media (RFC 3960) and UPDATE (RFC 3311)
in early and confirmed dialogs, on the virtual clock:
PRACK and RAck, retransmission until the PRACK and 504 without one, retransmitted 1xx
discarded, offer/answer in a 183 and its PRACK, the 2xx that waits for that PRACK, and the
modes off/supported/required against each other."""

from __future__ import annotations

import pytest

from softphone.core.events import Completed, MediaReady
from softphone.core.network import VirtualAgent, VirtualNetwork, is_request, is_response
from softphone.core.reliable import RAck, ReliableSender
from softphone.events import Answered, EarlyMedia, Hold
from softphone.sip import parse
from softphone.sip.builder import make_response
from softphone.sip.errors import LocalProtocolError, ParseError


def sent(agent: VirtualAgent, start: bytes) -> list[bytes]:
    return [data for data in agent.sent if data.startswith(start)]


def invite_to(net: VirtualNetwork, alice: VirtualAgent, bob: VirtualAgent,
              **options: object) -> tuple[str, str]:
    handle = alice.call(bob.uri, **options)
    net.run(until=lambda: bool(bob.incoming()))
    return handle, bob.incoming()[-1]


def test_a_reliable_180_is_pracked_with_its_rseq_and_not_resent_after() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    invite = parse(sent(alice, b"INVITE")[0])
    assert {"100rel", "timer"} <= set(invite.tokens("Supported"))
    bob.core.ring(incoming, net.now)
    net.run(seconds=10)
    ringing = [parse(d) for d in sent(bob, b"SIP/2.0 180")]
    assert len(ringing) == 1  # acknowledged at once: never resent
    assert ringing[0].tokens("Require") == ["100rel"]
    rseq = int(ringing[0].headers.get("RSeq") or 0)
    assert 1 <= rseq < 2**31
    pracks = [parse(d) for d in sent(alice, b"PRACK")]
    assert len(pracks) == 1
    assert pracks[0].headers.get("RAck") == f"{rseq} {invite.cseq.number} INVITE"
    assert pracks[0].cseq.number == invite.cseq.number + 1
    assert any(d.startswith(b"SIP/2.0 200") and b"PRACK" in d for d in bob.sent)
    bob.answer(incoming)
    net.run(seconds=1)
    alice.core.hangup(handle, net.now)
    net.run()
    bye = parse(sent(alice, b"BYE")[0])
    assert bye.cseq.number > pracks[0].cseq.number  # the dialog goes on from the PRACK's
    ended = bob.ended(incoming)
    assert ended is not None and (ended.status, ended.by) == (200, "remote")


def test_without_prack_the_1xx_is_resent_doubling_and_the_invite_fails_with_504() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("PRACK"), times=None)
    handle, incoming = invite_to(net, alice, bob)
    start = net.now
    bob.core.ring(incoming, net.now)
    net.run(seconds=40)
    ringing = sent(bob, b"SIP/2.0 180")
    assert len(ringing) == 7  # at 0, then T1 doubling: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert len(set(ringing)) == 1  # the same response, RSeq and all
    assert len(set(sent(alice, b"PRACK"))) == 1  # resends of a PRACKed RSeq: discarded
    mine, theirs = bob.ended(incoming), alice.ended(handle)
    assert mine is not None and mine.status == 504 and mine.by == "error"
    assert theirs is not None and theirs.status == 504
    assert sent(bob, b"SIP/2.0 504")
    assert net.now - start >= 32  # 64*T1


def test_a_lost_prack_is_recovered_by_the_1xx_resend_or_the_prack_retransmission() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("PRACK"), times=1)
    handle, incoming = invite_to(net, alice, bob)
    bob.core.ring(incoming, net.now)
    net.run(seconds=3)
    assert any(d.startswith(b"SIP/2.0 200") and b"PRACK" in d for d in bob.sent)
    resends = len(sent(bob, b"SIP/2.0 180"))
    net.run(seconds=30)
    assert len(sent(bob, b"SIP/2.0 180")) == resends  # acknowledged: no more
    assert bob.ended(incoming) is None and alice.ended(handle) is None


def test_early_media_in_a_reliable_183_plays_before_the_answer_and_the_2xx_keeps_it() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=1)
    progress = parse(sent(bob, b"SIP/2.0 183")[0])
    assert progress.body.startswith(b"v=0") and progress.tokens("Require") == ["100rel"]
    early = [e for e in alice.of(EarlyMedia) if isinstance(e, EarlyMedia)]
    assert [(e.status, e.codec) for e in early] == [(183, "opus/48000")]
    assert [e for e in alice.of(MediaReady)]  # the shell starts playing now
    assert not alice.of(Answered)
    assert sent(alice, b"PRACK") and not parse(sent(alice, b"PRACK")[0]).body
    bob.answer(incoming)
    net.run(seconds=1)
    ok = parse(next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d))
    assert ok.body == b""  # the reliable 183 agreed the session: no SDP again
    assert alice.of(Answered) and not parse(sent(alice, b"ACK")[0]).body
    call = alice.call_state(handle)
    assert call is not None and call.session is not None and call.session.media is not None
    assert call.session.media.codec.key == "opus"


def test_an_unreliable_183_previews_the_answer_and_the_2xx_repeats_it() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice", rel100="off"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    assert "100rel" not in parse(sent(alice, b"INVITE")[0]).tokens("Supported")
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=1)
    progress = parse(sent(bob, b"SIP/2.0 183")[0])
    assert progress.body and "RSeq" not in progress.headers
    assert alice.of(EarlyMedia) and not sent(alice, b"PRACK")
    bob.answer(incoming)
    net.run(seconds=1)
    ok = parse(next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d))
    assert ok.body == progress.body  # RFC 3261 13.2.1: the same answer again
    assert alice.of(Answered) and alice.ended(handle) is None


def test_an_offer_in_a_reliable_183_is_answered_in_the_prack() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob, with_offer=False)
    assert not parse(sent(alice, b"INVITE")[0]).body
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=1)
    prack = parse(sent(alice, b"PRACK")[0])
    assert prack.body.startswith(b"v=0")  # our answer to the 183's offer
    assert bob.of(MediaReady) and alice.of(MediaReady)
    codecs = [e.codec for e in bob.of(EarlyMedia) if isinstance(e, EarlyMedia)]
    assert codecs == [None, "opus/48000"]  # offered in the 183, agreed by the PRACK
    bob.answer(incoming)
    net.run(seconds=1)
    assert alice.of(Answered) and not parse(sent(alice, b"ACK")[0]).body


def test_an_answer_waits_for_the_prack_of_a_183_that_carries_sdp() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("PRACK"), times=1)
    handle, incoming = invite_to(net, alice, bob)
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=0.05)
    bob.answer(incoming)  # the PRACK was lost: the 2xx must wait for it (RFC 3262 3)
    net.run(seconds=0.1)
    assert not any(d.startswith(b"SIP/2.0 200") and b"INVITE" in d for d in bob.sent)
    net.run(seconds=3)
    assert any(d.startswith(b"SIP/2.0 200") and b"INVITE" in d for d in bob.sent)
    assert alice.of(Answered) and bob.ended(incoming) is None


def test_a_180_then_a_183_wait_their_turns() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.delay(is_request("PRACK"), 0.3)
    handle, incoming = invite_to(net, alice, bob)
    bob.core.ring(incoming, net.now)
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=0.1)
    assert len(sent(bob, b"SIP/2.0 183")) == 0  # the 180 is not PRACKed yet
    net.run(seconds=1)
    rseqs = [int(parse(d).headers.get("RSeq") or 0) for d in sent(bob, b"SIP/2.0 18")]
    assert sorted(set(rseqs)) == [rseqs[0], rseqs[0] + 1]
    assert len(sent(alice, b"PRACK")) == 2 and alice.of(EarlyMedia)


@pytest.mark.parametrize(("caller", "callee", "status"), [
    ("off", "required", 421), ("required", "off", 420)])
def test_a_required_100rel_the_other_side_does_not_do_fails_the_call(
        caller: str, callee: str, status: int) -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice", rel100=caller), net.agent("bob", rel100=callee)
    handle = alice.call(bob.uri)
    net.run(seconds=2)
    ended = alice.ended(handle)
    assert ended is not None and ended.status == status and not bob.incoming()
    response = parse(next(d for d in bob.sent if d.startswith(f"SIP/2.0 {status}".encode())))
    if status == 421:
        assert response.tokens("Require") == ["100rel"]
    else:
        assert response.tokens("Unsupported") == ["100rel"]


def test_required_100rel_on_both_sides_makes_every_1xx_reliable() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice", rel100="required"), net.agent("bob", rel100="required")
    handle, incoming = invite_to(net, alice, bob)
    assert parse(sent(alice, b"INVITE")[0]).tokens("Require") == ["100rel"]
    bob.core.ring(incoming, net.now)
    bob.answer(incoming, after=1)
    net.run(seconds=3)
    assert sent(alice, b"PRACK") and alice.of(Answered)


def test_a_duplicated_reliable_1xx_gets_one_prack() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.duplicate(is_response(180), times=3)
    handle, incoming = invite_to(net, alice, bob)
    bob.core.ring(incoming, net.now)
    net.run(seconds=2)
    assert len(sent(alice, b"PRACK")) == 1


def test_a_prack_naming_no_pending_1xx_gets_481_and_a_bad_rack_400() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    bob.core.ring(incoming, net.now)
    net.run(seconds=1)
    prack = sent(alice, b"PRACK")[0]
    rack = parse(prack).headers.get("RAck") or ""
    rseq = int(rack.split()[0])
    for wrong, status in ((f"{rseq + 5} ", 481), ("x ", 400)):
        forged = prack.replace(f"RAck: {rseq} ".encode(), f"RAck: {wrong}".encode()) \
            .replace(b"CSeq: 2 ", b"CSeq: 3 " if status == 481 else b"CSeq: 4 ") \
            .replace(b"branch=z9hG4bK", b"branch=z9hG4bKx" + str(status).encode())
        net.inject(forged, alice.peer, bob.peer)
        net.run(seconds=0.5)
        assert any(d.startswith(f"SIP/2.0 {status}".encode()) and b"PRACK" in d
                   for d in bob.sent), status


def test_the_sender_names_rseqs_in_order_and_matches_only_the_pending_one() -> None:
    invite = parse(b"INVITE sip:bob@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                   b"From: <sip:a@h>;tag=1\r\nTo: <sip:bob@h>\r\nCall-ID: c\r\n"
                   b"CSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n")
    sender = ReliableSender(next_rseq=41, t1=0.5)
    first = make_response(invite, 180, to_tag="t")
    sender.send(first, now=10.0)
    assert first.headers.get("RSeq") == "41" and sender.next_due(10.0) == 10.5
    assert sender.acknowledge(RAck(41, 6, "INVITE"), 7) is None
    assert sender.acknowledge(RAck(40, 7, "INVITE"), 7) is None
    assert sender.acknowledge(RAck(41, 7, "INVITE"), 7) is not None
    assert sender.pending is None and sender.next_rseq == 42
    with pytest.raises(ParseError):
        RAck.parse(invite)


def test_update_in_the_early_dialog_both_ways_changes_the_early_session() -> None:
    """UPDATE (RFC 3311) before the answer: once the 183 agreed a session, either side may
    offer anew in the early dialog, and the other answers in the 2xx."""
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    net.run(seconds=1)
    bob.core.update(incoming, net.now, "sendonly")  # the callee holds the early media
    net.run(seconds=1)
    update = parse(sent(bob, b"UPDATE")[0])
    assert b"a=sendonly" in update.body
    answer = parse(next(d for d in alice.sent if d.startswith(b"SIP/2.0 200")
                        and b"UPDATE" in d.split(b"\r\n\r\n")[0]))
    assert b"a=recvonly" in answer.body
    assert [(e.held, e.by) for e in alice.of(Hold) if isinstance(e, Hold)] == [(True, "remote")]
    alice.core.update(handle, net.now)  # and the caller offers back in the same dialog
    net.run(seconds=1)
    assert sent(alice, b"UPDATE") and not alice.of(Answered)
    bob.answer(incoming)
    net.run(seconds=1)
    assert alice.of(Answered) and alice.ended(handle) is None


def test_update_in_the_confirmed_dialog_holds_without_a_reinvite() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    bob.answer(incoming)
    net.run(seconds=1)
    request = alice.core.update(handle, net.now, "sendonly")
    net.run(seconds=1)
    done = [e for e in alice.events if isinstance(e, Completed) and e.request == request]
    assert [e.status for e in done] == [200]
    assert len(sent(alice, b"INVITE")) == 1  # no re-INVITE
    assert [(e.held, e.by) for e in bob.of(Hold) if isinstance(e, Hold)] == [(True, "remote")]


def test_an_update_before_any_session_is_a_local_error() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle, incoming = invite_to(net, alice, bob)
    with pytest.raises(LocalProtocolError):
        alice.core.update(handle, net.now)


def test_an_answer_before_the_queued_183_left_carries_its_sdp_in_the_2xx() -> None:
    """A 183 with SDP queued behind an unacknowledged 180 never went out when the call is
    answered: the 2xx carries the SDP, so the caller still gets its answer."""
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    net.lose(is_request("PRACK"), times=None)
    handle, incoming = invite_to(net, alice, bob)
    bob.core.ring(incoming, net.now)
    bob.core.early_media(incoming, net.now, bob.rtp_port())
    bob.answer(incoming)
    net.run(seconds=2)
    assert not sent(bob, b"SIP/2.0 183")
    ok = parse(next(d for d in bob.sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d))
    assert ok.body.startswith(b"v=0")
    assert alice.of(Answered) and alice.of(MediaReady)
