"""MESSAGE (RFC 3428) on the virtual network: pager mode outside any call, inside a call,
a challenge answered, a type we cannot show refused with 415 and what we accept."""

from __future__ import annotations

from softphone.core.agent import Credentials
from softphone.core.events import Completed
from softphone.core.guard import GuardSettings
from softphone.core.network import VirtualAgent, VirtualNetwork
from softphone.events import MessageReceived
from softphone.sip.transaction import Peer


def received(agent: VirtualAgent) -> list[MessageReceived]:
    return [e for e in agent.of(MessageReceived) if isinstance(e, MessageReceived)]


def completed(agent: VirtualAgent, number: int) -> Completed:
    done = [e for e in agent.of(Completed) if isinstance(e, Completed) and e.request == number]
    assert len(done) == 1
    return done[0]


def test_a_message_outside_any_call_is_delivered_and_answered_200() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    number = alice.core.message(bob.uri, "héllo, bob", net.now)
    net.run()
    assert completed(alice, number).status == 200
    [message] = received(bob)
    assert message.text == "héllo, bob" and message.content_type == "text/plain"
    assert message.sender.startswith("<sip:alice@") and message.call_id is None
    sent = next(d for d in alice.sent if d.startswith(b"MESSAGE"))
    assert b"Content-Type: text/plain;charset=UTF-8" in sent
    assert not bob.core.calls  # no dialog: pager mode
    net.run(seconds=40)
    assert not bob.core.layer.server


def test_a_message_inside_a_call_names_the_call() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    handle = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=1)
    number = alice.core.call_message(handle, net.now, "in the call")
    net.run(seconds=1)
    assert completed(alice, number).status == 200
    [message] = received(bob)
    assert (message.text, message.call_id) == ("in the call", bob.incoming()[0])


def test_a_message_to_a_guarded_agent_answers_its_challenge() -> None:
    net = VirtualNetwork()
    bob = net.agent("bob", guard=GuardSettings(callers={"alice": "pw"}))
    alice = net.agent("alice", credentials=Credentials("alice", "pw"))
    mallory = net.agent("mallory")
    answered = alice.core.message(bob.uri, "it is me", net.now)
    refused = mallory.core.message(bob.uri, "let me in", net.now)
    net.run()
    assert completed(alice, answered).status == 200
    assert completed(mallory, refused).status == 401
    assert [m.text for m in received(bob)] == ["it is me"]


def test_a_body_we_cannot_show_gets_415_with_what_we_accept() -> None:
    net = VirtualNetwork()
    bob = net.agent("bob")
    stranger = Peer("udp", "10.9.9.9", 5060)
    body = b"<html>hi</html>"
    net.inject((f"MESSAGE {bob.uri} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKhtml\r\nMax-Forwards: 70\r\n"
                f"From: <sip:m@10.9.9.9>;tag=1\r\nTo: <{bob.uri}>\r\nCall-ID: html\r\n"
                "CSeq: 1 MESSAGE\r\nContent-Type: text/html\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body, stranger, bob.peer)
    net.run()
    answer = next(data for _, _, to, data in net.log if to.host == stranger.host)
    assert answer.startswith(b"SIP/2.0 415 ")
    assert b"text/plain" in answer.split(b"Accept: ", 1)[1].split(b"\r\n", 1)[0]
    assert not received(bob)
