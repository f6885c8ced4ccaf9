"""Dialog creation on both sides, route sets, loose and strict routing, CSeq rules."""

from __future__ import annotations

import pytest

from softphone.sip import Headers, Request, parse, parse_address, parse_sip_uri
from softphone.sip.builder import make_response
from softphone.sip.dialog import Dialog
from softphone.sip.errors import LocalProtocolError

INVITE = Request("INVITE", parse_sip_uri("sip:bob@example.com"), Headers([
    ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa"),
    ("From", '"Alice" <sip:alice@example.com>;tag=a1'), ("To", "<sip:bob@example.com>"),
    ("Call-ID", "c1@192.0.2.1"), ("CSeq", "7 INVITE"), ("Contact", "<sip:alice@192.0.2.1>"),
    ("Record-Route", "<sip:p2.example.com;lr>"), ("Record-Route", "<sip:p1.example.com;lr>"),
]))


def answered(to_tag: str = "b1", contact: str = "<sip:bob@192.0.2.2:5070>") -> Dialog:
    response = make_response(INVITE, 200, to_tag=to_tag,
                             extra=Headers([("Contact", contact)]))
    return Dialog.from_uac(INVITE, response)


def test_uas_copies_record_route_into_dialog_creating_responses() -> None:
    response = make_response(INVITE, 180, to_tag="b1")
    assert response.headers.get_all("Record-Route") == [
        "<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert make_response(INVITE, 486, to_tag="b1").headers.get_all("Record-Route") == []


@pytest.mark.parametrize("to", [
    "sip:bob@example.com;user=phone", 'Bob <sip:bob@example.com;transport=tcp>;x=1',
    '"B, ob" <sip:bob@example.com>'])
def test_responses_echo_the_to_as_it_came_with_our_tag_once(to: str) -> None:
    invite = parse(f"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx"
                   f"\r\nFrom: <sip:a@b>;tag=1\r\nTo: {to}\r\nCall-ID: c\r\nCSeq: 1 INVITE"
                   f"\r\n\r\n".encode())
    assert isinstance(invite, Request)
    ringing = parse(bytes(make_response(invite, 180, to_tag="t9")))
    assert ringing.headers.get("To") == f"{to};tag=t9"
    assert ringing.to_address.tag == "t9"
    assert ringing.to_address.uri == invite.to_address.uri
    assert ringing.to_address.display_name == invite.to_address.display_name
    assert parse(bytes(make_response(invite, 100, to_tag="t9"))).headers.get("To") == to
    tagged = parse(bytes(ringing).replace(b"SIP/2.0 180 Ringing", b"BYE sip:b SIP/2.0"))
    assert isinstance(tagged, Request)
    assert make_response(tagged, 200, to_tag="other").headers.get("To") == f"{to};tag=t9"
    assert [name for name, _ in ringing.headers] == ["Via", "From", "To", "Call-ID", "CSeq"]


def test_uac_dialog_reverses_the_route_set_and_targets_the_contact() -> None:
    dialog = answered()
    assert dialog.key == ("c1@192.0.2.1", "a1", "b1")
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.2:5070"
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.2:5070"  # loose routing: R-URI is the target
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.cseq.number == 8 and bye.from_address.tag == "a1" and bye.to_address.tag == "b1"
    assert dialog.next_hop.host == "p1.example.com"


def test_uas_dialog_keeps_the_route_set_order() -> None:
    dialog = Dialog.from_uas(INVITE, "b1", parse_address("<sip:bob@192.0.2.2>"))
    assert dialog.key == ("c1@192.0.2.1", "b1", "a1")
    assert [r.uri.host for r in dialog.route_set] == ["p2.example.com", "p1.example.com"]
    bye = dialog.create_request("BYE")
    assert bye.from_address.tag == "b1" and bye.to_address.tag == "a1"
    assert bye.from_address.uri == parse_sip_uri("sip:bob@example.com")


def test_strict_router_becomes_the_request_uri() -> None:
    dialog = answered()
    dialog.route_set = [parse_address("<sip:strict.example.com>"),
                        parse_address("<sip:p2.example.com;lr>")]
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>",
                                            "<sip:bob@192.0.2.2:5070>"]


def test_ack_reuses_the_invite_cseq_and_remote_cseq_must_grow() -> None:
    dialog = answered()
    assert dialog.create_ack(7).cseq.number == 7 and dialog.local_seq == 7
    uas = Dialog.from_uas(INVITE, "b1", parse_address("<sip:bob@192.0.2.2>"))
    late = INVITE.headers.copy()
    late.set("CSeq", "6 BYE")
    assert uas.accept_remote_request(Request("BYE", INVITE.uri, late)) == 500
    later = INVITE.headers.copy()
    later.set("CSeq", "9 INVITE")
    later.set("Contact", "<sip:alice@192.0.2.99>")
    assert uas.accept_remote_request(Request("INVITE", INVITE.uri, later)) is None
    assert uas.remote_seq == 9 and uas.remote_target.host == "192.0.2.99"


def test_ended_dialog_builds_nothing() -> None:
    dialog = answered()
    dialog.state = "terminated"
    with pytest.raises(LocalProtocolError):
        dialog.create_request("BYE")
