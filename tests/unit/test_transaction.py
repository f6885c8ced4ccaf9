"""Transaction layer on a virtual clock: every RFC 3261 timer, retransmission and match."""

from __future__ import annotations

from softphone.sip import Headers, Request, Response, parse, parse_sip_uri
from softphone.sip.builder import make_cancel, make_response, new_branch
from softphone.sip.transaction import (
    AckNotReceived,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
)

ALICE = Peer("udp", "127.0.0.1", 5060)
BOB = Peer("udp", "127.0.0.2", 5070)


def request(method: str = "OPTIONS", branch: str | None = None, cseq: int = 1,
            transport: str = "UDP", to_tag: str | None = None,
            call_id: str = "call-1@test") -> Request:
    to = "<sip:bob@127.0.0.2:5070>" + (f";tag={to_tag}" if to_tag else "")
    return Request(method, parse_sip_uri("sip:bob@127.0.0.2:5070"), Headers([
        ("Via", f"SIP/2.0/{transport} 127.0.0.1:5060;branch={branch or new_branch()};rport"),
        ("Max-Forwards", "70"), ("From", "<sip:alice@127.0.0.1>;tag=a1"), ("To", to),
        ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
    ]))


def drain(layer: TransactionLayer) -> list[TransactionEvent]:
    events = []
    while (event := layer.next_event()) is not None:
        events.append(event)
    return events


def sent(layer: TransactionLayer) -> list[Request | Response]:
    return [parse(data) for data, _ in layer.datagrams_to_send()]


def run_until(layer: TransactionLayer, end: float) -> list[float]:
    """Fire every timer up to ``end``; returns the times at which something was sent."""
    times = []
    while (deadline := layer.get_timer()) is not None and deadline <= end:
        layer.handle_timer(deadline)
        if layer.datagrams_to_send():
            times.append(round(deadline, 3))
    return times


def test_non_invite_timer_e_backs_off_to_t2_then_timer_f_times_out() -> None:
    layer = TransactionLayer()
    key = layer.send_request(request(), BOB, now=0.0)
    assert len(layer.datagrams_to_send()) == 1
    assert run_until(layer, 31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert drain(layer) == []
    layer.handle_timer(32.0)
    (event,) = drain(layer)
    assert isinstance(event, TransactionTimedOut) and event.transaction == key
    assert not layer.client and layer.get_timer() is None


def test_non_invite_in_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer()
    req = request()
    layer.send_request(req, BOB, now=0.0)
    layer.datagrams_to_send()
    layer.receive(make_response(req, 180), BOB, now=0.1)
    assert run_until(layer, 10.0) == [0.5, 4.5, 8.5]


def test_non_invite_final_then_timer_k_and_absorbed_retransmission() -> None:
    layer = TransactionLayer()
    req = request()
    layer.send_request(req, BOB, now=0.0)
    ok = make_response(req, 200, to_tag="b1")
    layer.receive(ok, BOB, now=0.2)
    (event,) = drain(layer)
    assert isinstance(event, ResponseReceived) and event.response.status == 200
    layer.receive(ok, BOB, now=0.3)
    assert drain(layer) == []
    assert layer.get_timer() == 0.2 + 5.0  # Timer K = T4
    layer.handle_timer(5.2)
    assert not layer.client


def test_invite_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    layer = TransactionLayer()
    layer.send_request(request("INVITE"), BOB, now=0.0)
    layer.datagrams_to_send()
    assert run_until(layer, 31.9) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    layer.handle_timer(32.0)
    assert isinstance(drain(layer)[0], TransactionTimedOut)


def test_invite_provisional_stops_retransmission_and_failure_is_acked() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    layer.send_request(invite, BOB, now=0.0)
    layer.datagrams_to_send()
    layer.receive(make_response(invite, 180, to_tag="b1"), BOB, now=0.1)
    assert run_until(layer, 60.0) == []  # no Timer A, no Timer B in Proceeding
    busy = make_response(invite, 486, to_tag="b1")
    layer.receive(busy, BOB, now=1.0)
    (ack,) = sent(layer)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.top_via.branch == invite.top_via.branch and ack.to_address.tag == "b1"
    assert [e.response.status for e in drain(layer) if isinstance(e, ResponseReceived)] == [
        180, 486]
    layer.receive(busy, BOB, now=2.0)  # our ACK was lost
    assert [m.method for m in sent(layer) if isinstance(m, Request)] == ["ACK"]
    assert drain(layer) == []
    layer.handle_timer(1.0 + 32.0)  # Timer D
    assert not layer.client


def test_invite_2xx_enters_accepted_and_passes_retransmissions_up() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    layer.send_request(invite, BOB, now=0.0)
    ok = make_response(invite, 200, to_tag="b1")
    layer.receive(ok, BOB, now=0.1)
    layer.receive(ok, BOB, now=0.6)
    assert [e.response.status for e in drain(layer) if isinstance(e, ResponseReceived)] == [
        200, 200]
    assert not [m for m in sent(layer)[1:]]  # no ACK from the transaction for a 2xx
    layer.handle_timer(0.1 + 32.0)  # Timer M
    assert not layer.client
    layer.receive(ok, BOB, now=40.0)  # after M: still reaches the TU, with no transaction
    (late,) = drain(layer)
    assert isinstance(late, ResponseReceived) and late.transaction is None


def test_invite_over_tcp_arms_no_retransmission_timer() -> None:
    layer = TransactionLayer()
    tcp = Peer("tcp", "127.0.0.2", 5070)
    layer.send_request(request("INVITE", transport="TCP"), tcp, now=0.0)
    layer.datagrams_to_send()
    assert run_until(layer, 31.9) == []
    layer.handle_timer(32.0)
    assert isinstance(drain(layer)[0], TransactionTimedOut)


def test_server_invite_sends_100_repeats_it_and_retransmits_failure_until_ack() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    layer.receive(invite, ALICE, now=0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    (trying,) = sent(layer)
    assert isinstance(trying, Response) and trying.status == 100
    layer.receive(invite, ALICE, now=0.3)  # retransmitted INVITE: the 100 again, no event
    assert [m.status for m in sent(layer) if isinstance(m, Response)] == [100]
    assert drain(layer) == []
    layer.respond(event.transaction, make_response(event.request, 486, to_tag="b1"), now=1.0)
    assert [m.status for m in sent(layer) if isinstance(m, Response)] == [486]
    assert run_until(layer, 4.9) == [1.5, 2.5, 4.5]  # Timer G: T1, 2T1, 4T1 ...
    ack = request("ACK", branch=invite.top_via.branch)
    layer.receive(ack, ALICE, now=5.0)
    assert drain(layer) == []  # absorbed by the transaction
    assert run_until(layer, 9.9) == []  # Confirmed: no more retransmissions
    layer.handle_timer(10.0)  # Timer I = T4
    assert not layer.server


def test_server_invite_timer_h_reports_missing_ack() -> None:
    layer = TransactionLayer()
    layer.receive(request("INVITE"), ALICE, now=0.0)
    (event,) = drain(layer)
    assert event.transaction is not None and isinstance(event, RequestReceived)
    layer.respond(event.transaction, make_response(event.request, 603, to_tag="b1"), now=0.0)
    run_until(layer, 40.0)
    (missing,) = drain(layer)
    assert isinstance(missing, AckNotReceived) and missing.status == 603


def test_server_2xx_is_retransmitted_until_the_dialog_ack_arrives() -> None:
    layer = TransactionLayer()
    layer.receive(request("INVITE"), ALICE, now=0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.datagrams_to_send()
    layer.respond(event.transaction, make_response(event.request, 200, to_tag="b1"), now=0.0)
    assert run_until(layer, 3.6) == [0.5, 1.5, 3.5]
    ack = request("ACK", to_tag="b1")  # a new branch: an end-to-end ACK
    layer.receive(ack, ALICE, now=3.6)
    (acked,) = drain(layer)
    assert isinstance(acked, RequestReceived) and acked.transaction is None
    assert run_until(layer, 31.0) == []
    layer.handle_timer(32.0)  # Timer L
    assert drain(layer) == [] and not layer.server


def test_server_2xx_without_ack_is_reported() -> None:
    layer = TransactionLayer()
    layer.receive(request("INVITE"), ALICE, now=0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.respond(event.transaction, make_response(event.request, 200, to_tag="b1"), now=0.0)
    run_until(layer, 33.0)
    (missing,) = drain(layer)
    assert isinstance(missing, AckNotReceived) and missing.status == 200


def test_server_non_invite_absorbs_then_repeats_final_until_timer_j() -> None:
    layer = TransactionLayer()
    options = request()
    layer.receive(options, ALICE, now=0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.receive(options, ALICE, now=0.1)
    assert sent(layer) == [] and drain(layer) == []  # Trying: absorbed
    layer.respond(event.transaction, make_response(options, 200, to_tag="x"), now=0.2)
    layer.receive(options, ALICE, now=0.3)
    assert [m.status for m in sent(layer) if isinstance(m, Response)] == [200, 200]
    layer.handle_timer(32.2)
    assert not layer.server


def test_a_finished_server_transaction_keeps_its_answer_as_bytes_not_the_messages() -> None:
    """A server transaction lives on 32 s after its answer to absorb retransmissions: it
    lets the parsed request go as soon as nothing can ask for it (a non-INVITE's final
    response; an INVITE's ACK) and repeats the answer's very bytes, so what an agent holds
    per finished call is a few small objects, not messages the collector walks."""
    layer = TransactionLayer()
    bye, invite = request("BYE", to_tag="b1"), request("INVITE", call_id="call-2@test")
    for message in (bye, invite):
        layer.receive(message, ALICE, now=0.0)
    answered = {}
    for event in drain(layer):
        assert isinstance(event, RequestReceived) and event.transaction is not None
        status = 200 if event.request.method == "BYE" else 486
        layer.respond(event.transaction, make_response(event.request, status, to_tag="b1"),
                      now=0.0)
        answered[event.request.method] = layer.server[event.transaction]
    first = {data for data, _ in layer.datagrams_to_send()}
    assert answered["BYE"].request is None  # final answer: let go
    assert answered["INVITE"].request is not None  # Timer H would name it if no ACK came
    layer.receive(request("ACK", branch=invite.top_via.branch, to_tag="b1",
                          call_id="call-2@test"), ALICE, now=0.1)
    assert answered["INVITE"].request is None  # its ACK came: nothing will name it now
    for message in (bye, invite):  # late retransmissions: the same bytes again
        layer.receive(message, ALICE, now=0.2)
    repeated = layer.datagrams_to_send()
    assert {data for data, _ in repeated} <= first and len(repeated) == 1  # confirmed: quiet
    layer.handle_timer(40.0)
    assert not layer.server and not layer._awaiting_ack and not layer._merge_index


def test_an_answered_client_transaction_lets_its_request_go() -> None:
    """After a 2xx to our INVITE (Timer M runs) or a final response to another request
    (Timer K), nothing sends or names the request again: it is let go, a 2xx repeated by
    the peer still reaches the TU, and a transport failure then fails nothing."""
    layer = TransactionLayer()
    invite, options = request("INVITE"), request()
    invite_key = layer.send_request(invite, BOB, now=0.0)
    options_key = layer.send_request(options, BOB, now=0.0)
    layer.datagrams_to_send()
    assert not layer.client[invite_key].answered and layer.client[invite_key].request is invite
    layer.receive(make_response(invite, 180, to_tag="b1"), BOB, now=0.1)
    assert not layer.client[invite_key].answered  # a provisional: Timer B's 408 may yet come
    for message in (invite, options):
        layer.receive(make_response(message, 200, to_tag="b1"), BOB, now=0.2)
    assert layer.client[invite_key].answered and layer.client[options_key].answered
    drain(layer)
    layer.receive(make_response(invite, 200, to_tag="b1"), BOB, now=0.3)
    (repeated,) = drain(layer)
    assert isinstance(repeated, ResponseReceived) and repeated.transaction == invite_key
    for key in (invite_key, options_key):
        layer.transport_error(key, "connection refused")
    assert drain(layer) == [] and not layer.client


def test_cancel_is_matched_to_its_invite() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    layer.receive(invite, ALICE, now=0.0)
    (invite_event,) = drain(layer)
    layer.receive(make_cancel(invite), ALICE, now=0.5)
    (cancel_event,) = drain(layer)
    assert isinstance(cancel_event, RequestReceived)
    assert cancel_event.cancels == invite_event.transaction
    layer.receive(make_cancel(request("INVITE")), ALICE, now=0.6)
    (orphan,) = drain(layer)
    assert isinstance(orphan, RequestReceived) and orphan.cancels is None


def test_merged_request_gets_482() -> None:
    layer = TransactionLayer()
    layer.receive(request("INVITE", branch="z9hG4bKpath1"), ALICE, now=0.0)
    drain(layer)
    layer.datagrams_to_send()
    layer.receive(request("INVITE", branch="z9hG4bKpath2"), ALICE, now=0.1)
    assert drain(layer) == []
    statuses = [m.status for m in sent(layer) if isinstance(m, Response)]
    assert statuses == [100, 482]


def test_responses_follow_rport_and_received() -> None:
    layer = TransactionLayer()
    nat = Peer("udp", "192.0.2.9", 40000)
    layer.receive(request(), nat, now=0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    via = event.request.top_via
    assert (via.received, via.rport) == ("192.0.2.9", 40000)
    layer.respond(event.transaction, make_response(event.request, 200), now=0.0)
    ((data, peer),) = layer.datagrams_to_send()
    assert peer == nat
    response = parse(data)
    assert response.top_via.received == "192.0.2.9"


def test_server_transactions_are_bounded() -> None:
    layer = TransactionLayer(max_server_transactions=3)
    for n in range(5):
        layer.receive(request(cseq=n + 1, call_id=f"flood-{n}"), ALICE, now=0.0)
    assert len(layer.server) == 3 and len(drain(layer)) == 3
    statuses = [m.status for m in sent(layer) if isinstance(m, Response)]
    assert statuses == [503, 503]


def test_two_layers_complete_a_call_over_a_lossy_virtual_network() -> None:
    """INVITE/200/ACK/BYE/200 between two layers, dropping the first copy of every message."""
    alice, bob = TransactionLayer(), TransactionLayer()
    seen: set[bytes] = set()
    now = 0.0

    def pump() -> None:
        for src, dst, peer in ((alice, bob, ALICE), (bob, alice, BOB)):
            for data, _ in src.datagrams_to_send():
                if data not in seen:
                    seen.add(data)  # lose the first copy
                    continue
                dst.receive(parse(data), peer, now)

    invite = request("INVITE")
    alice.send_request(invite, BOB, now)
    answered = False
    for _ in range(200):
        pump()
        for event in drain(bob):
            if isinstance(event, RequestReceived) and event.request.method == "INVITE":
                assert event.transaction is not None
                bob.respond(event.transaction,
                            make_response(event.request, 200, to_tag="b1"), now)
        for event in drain(alice):
            if isinstance(event, ResponseReceived) and event.response.status == 200:
                answered = True
                alice.send_stateless(request("ACK", to_tag="b1"), BOB)
        deadline = alice.get_timer() or bob.get_timer()
        if deadline is None:
            break
        now = min(filter(None, [alice.get_timer(), bob.get_timer()]))
        alice.handle_timer(now)
        bob.handle_timer(now)
    assert answered
    assert not alice.client and not bob.server  # every transaction reaped
