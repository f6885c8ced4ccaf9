"""Call transfer on the virtual clock (RFC 3515 REFER, RFC 3891 Replaces, RFC 3892
Referred-By, RFC 4488 norefersub): blind and attended, the target busy, a transfer
declined, NOTIFYs lost, Replaces that names nothing, and a REFER that wants no NOTIFY."""

from __future__ import annotations

from softphone.core.events import Completed
from softphone.core.network import VirtualAgent, VirtualNetwork, is_request
from softphone.core.transfer import Replaces, read_sipfrag
from softphone.events import Answered, TransferProgress, TransferRequested
from softphone.sip import parse


def connect(net: VirtualNetwork, caller: VirtualAgent,
            callee: VirtualAgent) -> tuple[str, str]:
    known = len(callee.incoming())
    handle = caller.call(callee.uri)
    net.run(until=lambda: len(callee.incoming()) > known)
    incoming = callee.incoming()[-1]
    callee.answer(incoming)
    net.run(seconds=1)
    return handle, incoming


def sent(agent: VirtualAgent, start: bytes) -> list[bytes]:
    return [data for data in agent.sent if data.startswith(start)]


def progress(agent: VirtualAgent) -> list[tuple[int, bool]]:
    return [(e.status, e.final) for e in agent.of(TransferProgress)
            if isinstance(e, TransferProgress)]


def test_a_blind_transfer_moves_the_call_to_the_target_and_reports_each_step() -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    to_bob, from_alice = connect(net, alice, bob)
    request = alice.core.transfer(to_bob, net.now, carol.uri)
    net.run(until=lambda: bool(carol.incoming()))
    refer = parse(sent(alice, b"REFER")[0])
    assert refer.headers.get("Refer-To") == f"<{carol.uri}>"
    assert refer.headers.get("Referred-By") == "<sip:alice@10.0.0.1>"
    requested = [e for e in bob.of(TransferRequested) if isinstance(e, TransferRequested)]
    assert [(e.target, e.attended) for e in requested] == [(carol.uri, False)]
    to_carol = parse(sent(bob, b"INVITE")[0])
    assert to_carol.headers.get("Referred-By") == "<sip:alice@10.0.0.1>"
    assert "Replaces" not in to_carol.headers
    from_bob = carol.incoming()[-1]
    carol.core.ring(from_bob, net.now)
    net.run(seconds=1)
    carol.answer(from_bob)
    net.run(seconds=5)
    notifies = [parse(d) for d in sent(bob, b"NOTIFY")]
    assert [read_sipfrag(n.body) for n in notifies] == [(100, "Trying"), (180, "Ringing"),
                                                        (200, "OK")]
    assert notifies[0].headers.get("Event") == "refer"
    assert notifies[-1].headers.get("Subscription-State") == "terminated;reason=noresource"
    assert progress(alice) == [(202, False), (100, False), (180, False), (200, True)]
    done = [e for e in alice.events if isinstance(e, Completed) and e.request == request]
    assert [(e.status, e.reason) for e in done] == [(200, "OK")]
    ended = alice.ended(to_bob)
    assert ended is not None and (ended.status, ended.reason, ended.by) == (
        200, "Remote hangup", "remote")
    mine = bob.ended(from_alice)
    assert mine is not None and (mine.reason, mine.by) == ("Transferred", "local")
    new_call = next(h for h in bob.core.calls if h != from_alice)
    assert bob.core.calls[new_call].state.value == "answered"
    assert carol.ended(from_bob) is None


def test_a_busy_target_fails_the_transfer_and_the_call_goes_on() -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    to_bob, from_alice = connect(net, alice, bob)
    alice.core.transfer(to_bob, net.now, carol.uri)
    net.run(until=lambda: bool(carol.incoming()))
    carol.core.reject(carol.incoming()[-1], net.now, 486)
    net.run(seconds=5)
    assert progress(alice)[-1] == (486, True)
    assert alice.ended(to_bob) is None and bob.ended(from_alice) is None
    assert not sent(alice, b"BYE") and not sent(bob, b"BYE")


def test_a_transfer_declined_by_the_transferee_gets_603_and_nothing_else() -> None:
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob", accept_transfers=False)
    carol = net.agent("carol")
    to_bob, _ = connect(net, alice, bob)
    alice.core.transfer(to_bob, net.now, carol.uri)
    net.run(seconds=2)
    assert progress(alice) == [(603, True)]
    assert not carol.incoming() and not sent(bob, b"NOTIFY")
    assert alice.ended(to_bob) is None


def test_an_attended_transfer_replaces_the_targets_call_with_the_transferees() -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    to_bob, from_alice_at_bob = connect(net, alice, bob)
    to_carol, from_alice_at_carol = connect(net, alice, carol)
    alice.core.transfer(to_bob, net.now, replacing=to_carol)
    net.run(seconds=5)
    refer = parse(sent(alice, b"REFER")[0])
    assert "?Replaces=" in (refer.headers.get("Refer-To") or "")
    invite = parse(sent(bob, b"INVITE")[0])
    dialog = alice.core.calls[to_carol].dialog if to_carol in alice.core.calls else None
    replaces = Replaces.parse(invite.headers.get("Replaces") or "")
    assert replaces.call_id == to_carol
    assert dialog is None  # alice's call with carol was replaced, and is over
    answered = [e for e in carol.of(Answered) if isinstance(e, Answered)]
    assert len(answered) == 2  # alice's call, then bob's that replaced it
    ended = carol.ended(from_alice_at_carol)
    assert ended is not None and ended.by == "remote" and "Replaced" in ended.reason
    gone = alice.ended(to_carol)
    assert gone is not None and gone.by == "remote"
    assert progress(alice)[-1] == (200, True)
    assert alice.ended(to_bob) is not None and bob.ended(from_alice_at_bob) is not None
    survivors = [c for c in carol.core.calls.values() if not c.is_over]
    assert len(survivors) == 1 and survivors[0].remote_uri == parse(
        sent(bob, b"INVITE")[0]).from_address.uri


def test_replaces_naming_no_call_gets_481() -> None:
    net = VirtualNetwork()
    alice, carol = net.agent("alice"), net.agent("carol")
    connect(net, alice, carol)
    invite = sent(alice, b"INVITE")[0]
    call_id = parse(invite).call_id
    forged = invite.replace(call_id.encode(), b"another-call@10.0.0.1") \
        .replace(b"branch=z9hG4bK", b"branch=z9hG4bKforged") \
        .replace(b"CSeq: 1 INVITE\r\n",
                 b"CSeq: 1 INVITE\r\nReplaces: nosuchcall@h;to-tag=a;from-tag=b\r\n")
    net.inject(forged, alice.peer, carol.peer)
    net.run(seconds=1)
    refusal = next(d for d in alice.received if d.startswith(b"SIP/2.0 481"))
    assert b"another-call@10.0.0.1" in refusal and len(carol.incoming()) == 1


def test_a_refer_without_subscription_gets_no_notify_and_the_old_call_ends_on_success(
        ) -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    to_bob, from_alice = connect(net, alice, bob)
    dialog = alice.core.calls[to_bob].dialog
    assert dialog is not None
    refer = dialog.create_request("REFER")
    refer.headers.add("Refer-To", f"<{carol.uri}>")
    refer.headers.add("Refer-Sub", "false")
    refer.headers.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnorefersub")
    net.inject(bytes(refer), alice.peer, bob.peer)
    net.run(until=lambda: bool(carol.incoming()))
    accepted = next(d for d in alice.received if d.startswith(b"SIP/2.0 202"))
    assert parse(accepted).headers.get("Refer-Sub") == "false"
    carol.answer(carol.incoming()[-1])
    net.run(seconds=3)
    assert not sent(bob, b"NOTIFY")
    assert bob.ended(from_alice) is not None


def test_without_a_final_notify_the_transfer_is_given_up_and_the_call_goes_on() -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    net.lose(is_request("NOTIFY"), times=None)
    to_bob, from_alice = connect(net, alice, bob)
    alice.core.transfer(to_bob, net.now, carol.uri)
    net.run(until=lambda: bool(carol.incoming()))
    carol.core.ring(carol.incoming()[-1], net.now)
    net.run(seconds=70)
    assert progress(alice) == [(202, False), (408, True)]
    assert alice.ended(to_bob) is None and bob.ended(from_alice) is None


def test_the_transferee_hanging_up_first_ends_the_transfer_too() -> None:
    net = VirtualNetwork()
    alice, bob, carol = net.agent("alice"), net.agent("bob"), net.agent("carol")
    net.lose(is_request("NOTIFY"), times=None)
    to_bob, from_alice = connect(net, alice, bob)
    alice.core.transfer(to_bob, net.now, carol.uri)
    net.run(until=lambda: bool(carol.incoming()))
    carol.answer(carol.incoming()[-1])
    net.run(seconds=40)  # its last NOTIFY timed out: BYE all the same
    assert bob.ended(from_alice) is not None
    assert progress(alice)[-1] == (481, True)


def test_allow_and_supported_list_exactly_what_is_implemented() -> None:
    net = VirtualNetwork()
    alice, plain = net.agent("alice"), net.agent("plain", rel100="off")
    offered = alice.core.capabilities()
    assert offered.get("Allow") == ("ACK, BYE, CANCEL, INFO, INVITE, MESSAGE, NOTIFY, OPTIONS, "
                                    "PRACK, REFER, UPDATE")
    assert offered.get("Supported") == "100rel, norefersub, replaces, timer"
    assert plain.core.capabilities().get("Supported") == "norefersub, replaces, timer"
