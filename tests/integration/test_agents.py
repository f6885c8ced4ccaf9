"""Two (or three) user agents in one process over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from softphone.sdp.model import SessionDescription
from softphone.sip import parse_sip_uri
from softphone.sip.headers import Address
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Answered, Dtmf, Event, Hold, MediaTimeout, Ringing

FAST = dict(listen_host="127.0.0.1", listen_port=0)


async def wait_for(queue: asyncio.Queue[Event], kind: type[Event], timeout: float = 5.0,
                   ) -> Event:
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if isinstance(event, kind):
                return event


@pytest.fixture
async def pair() -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    alice = UserAgent(AgentConfig(user="alice", **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        yield alice, bob


async def answer_next(agent: UserAgent, ring: bool = True) -> Call:
    call = await asyncio.wait_for(agent.incoming.get(), 5)
    if ring:
        await call.ring()
    await call.answer()
    return call


async def test_call_answer_and_hang_up(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    alice_events = alice.subscribe()
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
    bob_call = await answer_next(bob)
    assert await asyncio.wait_for(call.answered, 5)
    await wait_for(alice_events, Ringing)
    answered = await wait_for(alice_events, Answered)
    assert isinstance(answered, Answered) and answered.codec == "opus/48000"
    assert call.dialog is not None and bob_call.dialog is not None
    assert call.dialog.remote_tag == bob_call.local_tag
    await call.hangup()
    bob_end = await asyncio.wait_for(bob_call.ended, 5)
    assert (bob_end.status, bob_end.by) == (200, "remote")
    alice_end = await asyncio.wait_for(call.ended, 5)
    assert (alice_end.status, alice_end.by) == (200, "local")
    assert not alice.calls and not bob.calls


async def test_an_agent_calling_itself_keeps_both_ends_apart_by_their_handles() -> None:
    """Both ends of a call to oneself share the Call-ID (their handles differ by a tag): the
    answer reaches both, each ends once, and the agent keeps neither afterwards."""
    async with UserAgent(AgentConfig(user="alice", **FAST)) as alice:  # type: ignore[arg-type]
        call = await alice.call(f"sip:alice@127.0.0.1:{alice.port}")
        incoming = await answer_next(alice)
        assert await asyncio.wait_for(call.answered, 5)
        assert call.call_id == incoming.call_id and call is not incoming
        assert call.answered_at is not None and incoming.answered_at is not None
        await call.hangup()
        ends = [await asyncio.wait_for(asyncio.shield(end.ended), 5) for end in (call, incoming)]
        assert [end.by for end in ends] == ["local", "remote"]
        await asyncio.sleep(0.1)
        assert not alice.calls


async def test_rejected_call_reports_the_status(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
    incoming = await asyncio.wait_for(bob.incoming.get(), 5)
    await incoming.reject(486)
    ended = await asyncio.wait_for(call.ended, 5)
    assert (ended.status, ended.reason, ended.by) == (486, "Busy Here", "remote")
    assert not await call.answered


async def test_cancel_before_answer(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
    incoming = await asyncio.wait_for(bob.incoming.get(), 5)
    await incoming.ring()
    await asyncio.sleep(0.05)
    await call.hangup()
    ended = await asyncio.wait_for(call.ended, 5)
    assert (ended.status, ended.by) == (487, "local")
    remote = await asyncio.wait_for(incoming.ended, 5)
    assert (remote.status, remote.by) == (487, "remote")


async def test_ring_timeout_cancels(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}", ring_timeout=0.3)
    incoming = await asyncio.wait_for(bob.incoming.get(), 5)
    await incoming.ring()
    ended = await asyncio.wait_for(call.ended, 5)
    assert ended.status == 487


async def test_redirect_is_followed(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    carol = UserAgent(AgentConfig(user="carol", **FAST))  # type: ignore[arg-type]
    async with carol:
        events = alice.subscribe()
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
        incoming = await asyncio.wait_for(bob.incoming.get(), 5)
        await incoming.redirect(f"sip:carol@127.0.0.1:{carol.port}")
        carol_call = await answer_next(carol)
        assert await asyncio.wait_for(call.answered, 5)
        assert str(carol_call.invite.uri if carol_call.invite else "").startswith("sip:carol@")
        redirected = [e for e in _drain(events) if e.name == "redirected"]
        assert len(redirected) == 1
        await call.hangup()


async def test_duration_hangs_up_after_answer(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}", duration=0.3)
    await answer_next(bob, ring=False)
    ended = await asyncio.wait_for(call.ended, 5)
    assert ended.by == "local" and 0.25 < ended.duration < 2.0


async def test_options_reports_capabilities(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    result = await alice.options(f"sip:bob@127.0.0.1:{bob.port}")
    assert result.status == 200
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"} <= set(result.allow)
    assert "application/sdp" in result.accept


async def test_options_over_tcp() -> None:
    alice = UserAgent(AgentConfig(user="alice", transport="tcp", **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        result = await alice.options(f"sip:bob@127.0.0.1:{bob.port};transport=tcp")
        assert result.status == 200


async def test_call_over_tcp() -> None:
    alice = UserAgent(AgentConfig(user="alice", transport="tcp", **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", transport="tcp", **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port};transport=tcp")
        incoming = await answer_next(bob)
        assert await asyncio.wait_for(call.answered, 5)
        await call.hangup()
        assert (await asyncio.wait_for(incoming.ended, 5)).by == "remote"


async def test_unanswered_request_times_out_as_408() -> None:
    from softphone.sip.transaction import TimerSettings

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    quick = TimerSettings(t1=0.01, t2=0.04, t4=0.05)
    async with UserAgent(AgentConfig(timers=quick, **FAST)) as alice:  # type: ignore[arg-type]
        result = await alice.options(f"sip:nobody@127.0.0.1:{port}")
        assert result.status == 408
    silent.close()


async def test_malformed_request_gets_400_and_the_agent_lives_on(
        pair: tuple[UserAgent, UserAgent]) -> None:
    _, bob = pair
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    bad = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: x\r\n"
           b"CSeq: 99999999999 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    sock.sendto(bad, ("127.0.0.1", bob.port))
    data, _ = await asyncio.get_running_loop().run_in_executor(None, sock.recvfrom, 65535)
    assert data.startswith(b"SIP/2.0 400 CSeq number too large")
    sock.sendto(b"\x00\xff garbage", ("127.0.0.1", bob.port))
    sock.close()
    result = await pair[0].options(f"sip:bob@127.0.0.1:{bob.port}")
    assert result.status == 200


def _drain(queue: asyncio.Queue[Event]) -> list[Event]:
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    return events


async def test_call_over_ipv6_loopback() -> None:
    alice = UserAgent(AgentConfig(user="alice", listen_host="::1", listen_port=0))
    bob = UserAgent(AgentConfig(user="bob", listen_host="::1", listen_port=0))
    async with alice, bob:
        call = await alice.call(f"sip:bob@[::1]:{bob.port}")
        incoming = await answer_next(bob)
        assert await asyncio.wait_for(call.answered, 5)
        assert call.media is not None and call.media.remote_address == "::1"
        await call.hangup()
        assert (await asyncio.wait_for(incoming.ended, 5)).by == "remote"


async def request_status(agent: UserAgent, method: str, target: str,
                         to_tag: str | None = None) -> int:
    uri = parse_sip_uri(target)
    to = Address(uri=uri, params=(("tag", to_tag),) if to_tag else ())
    response, _ = await agent.send_request(agent.new_request(method, uri, to=to),
                                           await agent.targets(uri))
    return response.status


async def test_unsupported_and_unknown_methods_and_strays(
        pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    target = f"sip:bob@127.0.0.1:{bob.port}"
    assert await request_status(alice, "PUBLISH", target) == 405
    assert await request_status(alice, "FROBNICATE", target) == 501
    assert await request_status(alice, "BYE", target, to_tag="nosuchdialog") == 481
    assert await request_status(alice, "INFO", target) == 481  # INFO outside any dialog


async def test_reinvite_and_info_inside_a_dialog(pair: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = pair
    call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
    incoming = await answer_next(bob)
    assert await asyncio.wait_for(call.answered, 5)
    assert call.dialog is not None
    info = call.dialog.create_request("INFO", b"Signal=5\r\nDuration=160\r\n",
                                      "application/dtmf-relay")
    response, _ = await alice.send_request(info, await alice.resolve(call.dialog.next_hop))
    assert response.status == 200
    hold = call.dialog.create_request("INVITE", content_type="application/sdp")
    offer = SessionDescription.parse(incoming_offer(call))
    offer.media[0].attributes = [a for a in offer.media[0].attributes
                                 if a[0] != "sendrecv"] + [("sendonly", None)]
    offer.session_version += 1
    hold.body = bytes(offer)
    response, _ = await alice.send_request(hold, await alice.resolve(call.dialog.next_hop))
    assert response.status == 200
    answer = SessionDescription.parse(response.body)
    assert answer.media[0].direction == "recvonly"  # bob follows the hold
    await call.hangup()
    assert (await asyncio.wait_for(incoming.ended, 5)).status == 200


def incoming_offer(call: Call) -> bytes:
    assert call.invite is not None
    return call.invite.body


async def test_unanswered_calls_are_bounded_and_time_out() -> None:
    bob = UserAgent(AgentConfig(user="bob", max_unanswered_calls=3, unanswered_timeout=0.5,
                                **FAST))  # type: ignore[arg-type]
    alice = UserAgent(AgentConfig(user="alice", **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        calls = [await alice.call(f"sip:bob@127.0.0.1:{bob.port}") for _ in range(6)]
        endings = [await asyncio.wait_for(c.ended, 5) for c in calls]
        statuses = sorted(e.status for e in endings)
        assert statuses == [480, 480, 480, 486, 486, 486]
        assert not bob.calls and not alice.calls
        assert bob.incoming.qsize() == 3  # offered to the application, which never took them


@pytest.mark.parametrize("method", ["rfc4733", "info"])
async def test_dtmf_digits_arrive_exactly_once_in_order(method: str) -> None:
    alice = UserAgent(AgentConfig(user="alice", dtmf_method=method, codecs=("pcmu",),
                                  **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        heard = bob.subscribe()
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
        incoming = await answer_next(bob, ring=False)
        assert await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(0.2)
        assert await call.send_dtmf("0123456789*#") == method
        digits = ""
        while len(digits) < 12:
            event = await wait_for(heard, Dtmf, timeout=10)
            assert isinstance(event, Dtmf) and event.method == method
            digits += event.digit
        assert digits == "0123456789*#"
        await asyncio.sleep(0.3)
        assert not any(isinstance(e, Dtmf) for e in _drain(heard))  # nothing twice
        await call.hangup()
        await asyncio.wait_for(incoming.ended, 5)


async def test_hold_and_resume_both_ways() -> None:
    alice = UserAgent(AgentConfig(user="alice", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        bob_events = bob.subscribe()
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
        incoming = await answer_next(bob, ring=False)
        assert await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(0.1)
        await call.hold()
        held = await wait_for(bob_events, Hold)
        assert isinstance(held, Hold) and held.held and held.by == "remote"
        assert call.stream is not None and call.stream.media.direction == "sendonly"
        assert incoming.stream is not None and incoming.stream.media.direction == "recvonly"
        await call.resume()
        resumed = await wait_for(bob_events, Hold)
        assert isinstance(resumed, Hold) and not resumed.held
        assert call.stream.media.direction == incoming.stream.media.direction == "sendrecv"
        await call.hangup()


async def test_rtp_that_stops_is_noticed_and_can_end_the_call() -> None:
    alice = UserAgent(AgentConfig(user="alice", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", codecs=("pcmu",), rtp_timeout=0.5,
                                hangup_on_rtp_timeout=True, **FAST))  # type: ignore[arg-type]
    async with alice, bob:
        bob_events = bob.subscribe()
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
        incoming = await answer_next(bob, ring=False)
        assert await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(0.8)
        assert not [e for e in _drain(bob_events) if isinstance(e, MediaTimeout)]
        assert call.stream is not None
        call.stream.stop()  # alice's media dies, her signalling lives on
        timeout = await wait_for(bob_events, MediaTimeout)
        assert isinstance(timeout, MediaTimeout) and timeout.seconds >= 0.5
        ended = await asyncio.wait_for(incoming.ended, 5)
        assert (ended.status, ended.by) == (408, "local")
        assert (await asyncio.wait_for(call.ended, 5)).by == "remote"


async def test_an_agent_on_the_wildcard_address_advertises_the_route_to_its_peer() -> None:
    """Listening on 0.0.0.0, the Via, Contact and SDP name the address packets to the peer
    leave from (here 127.0.0.1), never 0.0.0.0, both as caller and as callee."""
    import re

    from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent

    sent: list[bytes] = []
    wildcard = UserAgent(AgentConfig(listen_host="0.0.0.0", listen_port=0, codecs=("pcmu",),
                                     audio=AudioConfig(tone=440)))
    local = UserAgent(AgentConfig(listen_port=0, codecs=("pcmu",)))
    async with wildcard, local:
        wildcard.add_tracer(lambda direction, data, peer: sent.append(data)
                            if direction == "sent" else None)
        outgoing = await wildcard.call(f"sip:bob@127.0.0.1:{local.port}")
        incoming = await asyncio.wait_for(local.incoming.get(), 5)
        await incoming.answer()
        assert await asyncio.wait_for(asyncio.shield(outgoing.answered), 5)
        back = await local.call(f"sip:alice@127.0.0.1:{wildcard.port}")
        answering = await asyncio.wait_for(wildcard.incoming.get(), 5)
        await answering.answer()
        assert await asyncio.wait_for(asyncio.shield(back.answered), 5)
        await asyncio.sleep(0.3)
        assert incoming.stream is not None and incoming.stream.stats.received > 0
        await outgoing.hangup()
        await back.hangup()
    text = b"".join(sent).decode()
    assert "0.0.0.0" not in text
    assert re.search(r"Via: SIP/2.0/UDP 127\.0\.0\.1:\d+", text)
    assert re.search(r"Contact: <sip:softphone@127\.0\.0\.1:\d+>", text)
    assert "c=IN IP4 127.0.0.1" in text and "SIP/2.0 200 OK" in text


async def test_glare_on_real_sockets_ends_with_both_holds_applied() -> None:
    """Both ends put the call on hold at the same moment (RFC 3261 14.2). Each gets 491 and
    retries after its random wait; both end holding the call (inactive both ways). Before
    the core both got 200 and both were left sendonly, hearing nothing."""
    alice = UserAgent(AgentConfig(user="alice", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(user="bob", codecs=("pcmu",), **FAST))  # type: ignore[arg-type]
    statuses: list[bytes] = []
    async with alice, bob:
        alice.add_tracer(lambda direction, data, peer: statuses.append(data.split(b"\r\n")[0])
                         if direction == "received" else None)
        call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
        incoming = await answer_next(bob, ring=False)
        assert await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.gather(call.hold(), incoming.hold()), 10)
        assert b"SIP/2.0 491 Request Pending" in statuses
        assert call.media is not None and incoming.media is not None
        assert call.media.direction == incoming.media.direction == "inactive"
        assert call.stream is not None and call.stream.media.direction == "inactive"
        await call.hangup()
