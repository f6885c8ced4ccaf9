"""Message waiting indication (RFC 3842 over RFC 6665) on the virtual clock: SUBSCRIBE and
its refresh, NOTIFYs in the dialog (also one that overtakes the 2xx), a terminated
subscription started afresh, unsolicited NOTIFYs, other event packages refused, and the
summary body read with its counts."""

from __future__ import annotations

from softphone.core.network import VirtualAgent, VirtualNetwork
from softphone.core.subscription import MessageSummary
from softphone.events import Mwi
from softphone.sip import Headers, Request, Response, parse
from softphone.sip.builder import make_response
from softphone.sip.transaction import Peer

SERVER = ("10.0.9.9", 5060)
SUMMARY = (b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@10.0.9.9\r\n"
           b"Voice-Message: 2/8 (1/0)\r\n")


class Notifier:
    """A voicemail server: answers SUBSCRIBE (200 with its tag and Expires), keeps them."""

    def __init__(self, status: int = 200, expires: int = 600) -> None:
        self.subscribes: list[Request] = []
        self.status, self.expires = status, expires

    def __call__(self, request: Request, source: Peer) -> list[Response]:
        self.subscribes.append(request)
        tag = request.to_address.tag or "vm1"
        return [make_response(request, self.status, to_tag=tag,
                              extra=Headers([("Expires", str(self.expires)),
                                             ("Contact", "<sip:vm@10.0.9.9:5060>")]))]


def notify(subscribe: Request, body: bytes = SUMMARY, state: str = "active;expires=600",
           cseq: int = 1, to_tag: str | None = None, event: str = "message-summary") -> bytes:
    tag = subscribe.from_address.tag if to_tag is None else to_tag
    to = f"<{subscribe.from_address.uri}>" + (f";tag={tag}" if tag else "")
    return (f"NOTIFY {subscribe.from_address.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.9.9:5060;branch=z9hG4bKnotify{cseq}{state[:3]}\r\n"
            f"From: <sip:vm@10.0.9.9>;tag=vm1\r\nTo: {to}\r\n"
            f"Call-ID: {subscribe.call_id}\r\nCSeq: {cseq} NOTIFY\r\n"
            f"Contact: <sip:vm@10.0.9.9:5060>\r\nEvent: {event}\r\n"
            f"Subscription-State: {state}\r\n"
            f"Content-Type: application/simple-message-summary\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def setup(notifier: Notifier) -> tuple[VirtualNetwork, VirtualAgent]:
    net = VirtualNetwork()
    alice = net.agent("alice", domain="10.0.9.9")
    net.responder(*SERVER, notifier)
    return net, alice


def mwi_of(agent: VirtualAgent) -> list[Mwi]:
    return [e for e in agent.of(Mwi) if isinstance(e, Mwi)]


def test_subscribe_notify_and_refresh_before_the_granted_time() -> None:
    notifier = Notifier()
    net, alice = setup(notifier)
    alice.core.subscribe_mwi(None, net.now)
    net.run(seconds=1)
    first = notifier.subscribes[0]
    assert str(first.uri) == "sip:alice@10.0.9.9"
    assert first.headers.get("Event") == "message-summary"
    assert first.headers.get("Accept") == "application/simple-message-summary"
    net.inject(notify(first), Peer("udp", *SERVER), alice.peer)
    net.run(seconds=1)
    assert [(m.waiting, m.new, m.old, m.urgent_new, m.account) for m in mwi_of(alice)] == [
        (True, 2, 8, 1, "sip:alice@10.0.9.9")]
    assert any(d.startswith(b"SIP/2.0 200") and b"NOTIFY" in d
               for d in alice.sent)
    net.run(seconds=600)
    refresh = notifier.subscribes[1]
    assert refresh.to_address.tag == "vm1" and refresh.cseq.number > first.cseq.number
    assert refresh.call_id == first.call_id and len(notifier.subscribes) == 2


def test_a_notify_that_overtakes_the_2xx_is_taken() -> None:
    notifier = Notifier(status=202)
    net, alice = setup(notifier)
    net.delay(lambda data, source, destination: data.startswith(b"SIP/2.0 202"), 0.5)
    alice.core.subscribe_mwi(None, net.now)
    net.run(seconds=0.1)
    net.inject(notify(notifier.subscribes[0]), Peer("udp", *SERVER),
               alice.peer)
    net.run(seconds=2)
    assert len(mwi_of(alice)) == 1
    assert not any(d.startswith(b"SIP/2.0 481") for d in alice.sent)


def test_a_terminated_subscription_is_started_afresh() -> None:
    notifier = Notifier()
    net, alice = setup(notifier)
    alice.core.subscribe_mwi(None, net.now)
    net.run(seconds=1)
    first = notifier.subscribes[0]
    net.inject(notify(first, state="terminated;reason=timeout"), Peer("udp", *SERVER),
               alice.peer)
    net.run(seconds=40)
    again = notifier.subscribes[1]
    assert again.to_address.tag is None  # a new subscription, not a refresh
    assert again.from_address.tag != first.from_address.tag


def test_a_rejected_subscription_is_not_retried_after_terminated_rejected() -> None:
    notifier = Notifier()
    net, alice = setup(notifier)
    alice.core.subscribe_mwi(None, net.now)
    net.run(seconds=1)
    net.inject(notify(notifier.subscribes[0], body=b"", state="terminated;reason=rejected"),
               Peer("udp", *SERVER), alice.peer)
    net.run(seconds=3600)
    assert len(notifier.subscribes) == 1


def test_unsolicited_notifies_are_taken_and_other_packages_refused() -> None:
    net = VirtualNetwork()
    alice = net.agent("alice")
    server = Peer("udp", *SERVER)
    fake = parse(b"SUBSCRIBE sip:alice@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.9.9;"
                 b"branch=z9hG4bKx\r\nFrom: <sip:alice@10.0.0.1>\r\nTo: <sip:alice@10.0.0.1>"
                 b"\r\nCall-ID: unsolicited@10.0.9.9\r\nCSeq: 1 SUBSCRIBE\r\n"
                 b"Content-Length: 0\r\n\r\n")
    assert isinstance(fake, Request)
    net.inject(notify(fake, to_tag=""), server, alice.peer)
    net.inject(notify(fake, to_tag="", event="presence", cseq=2), server, alice.peer)
    net.run(seconds=1)
    assert [m.new for m in mwi_of(alice)] == [2]
    answers = [d.split(b"\r\n")[0] for d in alice.sent]
    assert b"SIP/2.0 200 OK" in answers and b"SIP/2.0 489 Bad Event" in answers


def test_unsubscribe_sends_expires_zero_in_the_dialog() -> None:
    notifier = Notifier()
    net, alice = setup(notifier)
    number, _ = alice.core.subscribe_mwi(None, net.now)
    net.run(seconds=1)
    alice.core.unsubscribe(number, net.now)
    net.run(seconds=1)
    last = notifier.subscribes[-1]
    assert last.headers.get("Expires") == "0" and last.to_address.tag == "vm1"
    assert not alice.core.subscriptions
    net.run(seconds=3600)
    assert len(notifier.subscribes) == 2  # no refresh after the end


def test_the_summary_body_with_and_without_urgent_counts() -> None:
    summary = MessageSummary.parse(SUMMARY)
    assert (summary.waiting, summary.new, summary.old, summary.urgent_new,
            summary.urgent_old) == (True, 2, 8, 1, 0)
    plain = MessageSummary.parse(b"Messages-Waiting: no\r\nVoice-Message: 0/3\r\n")
    assert (plain.waiting, plain.new, plain.old, plain.account) == (False, 0, 3, None)
    assert MessageSummary.parse(b"garbage") == MessageSummary(False, None, 0, 0, 0, 0)
