"""URI parsing, escaping and RFC 3261 19.1.4 equality, table-driven both ways."""

from __future__ import annotations

import pytest

from softphone.sip import AbsoluteUri, ParseError, SipUri, TelUri, parse_uri
from softphone.sip.uri import parse_sip_uri

# RFC 3261 19.1.4: pairs that are equivalent ...
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ("sip:[2001:db8::10]", "sip:[2001:DB8:0::10]"),
]
# ... and pairs that are not.
NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@example.com", "sips:alice@example.com"),
    ("sip:alice@example.com;user=phone", "sip:alice@example.com"),
    ("sip:alice@example.com;maddr=192.0.2.1", "sip:alice@example.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equivalent_uris(a: str, b: str) -> None:
    assert parse_uri(a) == parse_uri(b)
    assert hash(parse_uri(a)) == hash(parse_uri(b))


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_different_uris(a: str, b: str) -> None:
    assert parse_uri(a) != parse_uri(b)


@pytest.mark.parametrize(("text", "fields"), [
    ("sip:alice@example.com", dict(user="alice", host="example.com", port=None)),
    ("sips:bob:secret@[::1]:5061;transport=tcp",
     dict(scheme="sips", user="bob", password="secret", host="::1", port=5061)),
    ("sip:127.0.0.1:5080", dict(user=None, host="127.0.0.1", port=5080)),
    ("sip:%41lice@x.example", dict(user="Alice", host="x.example")),
])
def test_sip_uri_fields(text: str, fields: dict[str, object]) -> None:
    uri = parse_sip_uri(text)
    for name, value in fields.items():
        assert getattr(uri, name) == value


@pytest.mark.parametrize("text", [
    "sip:alice@example.com", "sips:bob:pw@[2001:db8::1]:5061;transport=tcp;lr",
    "sip:a%20b@example.com;x=%3B?subject=hi%20there&to=sip:x%40y",
    "sip:user;par=u%40example.net@example.com",
])
def test_serialise_then_parse_is_identity(text: str) -> None:
    uri = parse_uri(text)
    assert parse_uri(str(uri)) == uri


def test_escaping_is_applied_on_output_only_where_needed() -> None:
    uri = SipUri(host="example.com", user="a b@c", params=(("x", "1;2"),))
    assert str(uri) == "sip:a%20b%40c@example.com;x=1%3B2"


def test_tel_and_absolute_uris() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelUri) and tel.digits == "+12015550123"
    assert tel == parse_uri("tel:+12015550123;phone-context=example.com")
    assert isinstance(parse_uri("http://www.example.com/a"), AbsoluteUri)


@pytest.mark.parametrize("text", [
    "sip:", "sip:alice@", "sip:alice@exa mple.com", "sip:2001:db8::10", "sip:host:99999",
    "sip:[2001:db8::10", "sip:host;=x", "sip:host?noequals", "nocolon", "1sip:x",
    "sip:a@256.1.1.1", "tel:abc!",
])
def test_malformed_uris_raise_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


def test_address_of_record_drops_port_params_and_headers() -> None:
    uri = parse_sip_uri("sip:alice@example.com:5070;transport=tcp?x=y")
    assert str(uri.address_of_record) == "sip:alice@example.com"
