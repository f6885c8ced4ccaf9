"""RFC 4475 and RFC 5118 torture messages, each with the outcome its RFC asks for.

Every file in the corpus must have a row in OUTCOMES (a test checks that), so a message can
never be silently untested. Valid messages also get assertions on the values the RFC text
points at: a parser that merely "does not fail" would not pass them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from softphone.sip import AbsoluteUri, ParseError, Request, Response, SipUri, parse
from softphone.sip.validate import EndpointPolicy, check_request, check_response
from tests.conftest import TESTDATA

# name -> (what happens, status). "parse": ParseError with that status; "reject": parses, and
# the UA answers that status; "accept": parses and the UA processes it; "drop": a response the
# UA discards.
OUTCOMES: dict[str, tuple[str, int | None]] = {
    # 3.1.1 valid
    "wsinv.dat": ("accept", None), "intmeth.dat": ("reject", 501), "esc01.dat": ("accept", None),
    "escnull.dat": ("reject", 405), "esc02.dat": ("reject", 501), "lwsdisp.dat": ("accept", None),
    "longreq.dat": ("accept", None), "dblreq.dat": ("reject", 405),
    "semiuri.dat": ("accept", None), "transports.dat": ("accept", None),
    # a MESSAGE (which we take) with a multipart body (which we cannot show): 415 + Accept
    "mpart01.dat": ("reject", 415), "unreason.dat": ("accept", None),
    "noreason.dat": ("accept", None),
    # 3.1.2 invalid
    "badinv01.dat": ("parse", 400), "clerr.dat": ("parse", 400), "ncl.dat": ("parse", 400),
    "scalar02.dat": ("parse", 400), "scalarlg.dat": ("parse", 400),
    "quotbal.dat": ("parse", 400), "ltgtruri.dat": ("parse", 400),
    "lwsruri.dat": ("parse", 400), "lwsstart.dat": ("parse", 400), "trws.dat": ("parse", 400),
    "escruri.dat": ("parse", 400), "baddate.dat": ("parse", 400),
    "regbadct.dat": ("parse", 400), "badaspec.dat": ("parse", 400),
    "baddn.dat": ("parse", 400), "badvers.dat": ("parse", 505),
    "mismatch01.dat": ("reject", 400), "mismatch02.dat": ("reject", 501),
    "bigcode.dat": ("parse", 400),
    # 3.2 / 3.3 valid but semantically bad
    "badbranch.dat": ("reject", 400), "insuf.dat": ("reject", 400),
    "unkscm.dat": ("reject", 416), "novelsc.dat": ("reject", 416),
    "unksm2.dat": ("reject", 405), "bext01.dat": ("reject", 420), "invut.dat": ("reject", 415),
    "regaut01.dat": ("reject", 405), "multi01.dat": ("reject", 400),
    "mcl01.dat": ("parse", 400), "bcast.dat": ("drop", None), "zeromf.dat": ("accept", None),
    "cparam01.dat": ("reject", 405), "cparam02.dat": ("reject", 405),
    "regescrt.dat": ("reject", 405), "sdp01.dat": ("reject", 406),
    # 3.4 and the archive's unreferenced extra
    "inv2543.dat": ("accept", None), "test.dat": ("parse", 400),
}

RFC5118_OUTCOMES: dict[str, tuple[str, int | None]] = {
    # The REGISTERs are well-formed; a UA that is no registrar answers them 405.
    "ipv6-good.dat": ("reject", 405), "ipv6-bad.dat": ("parse", 400),
    "port-ambiguous.dat": ("reject", 405), "port-unambiguous.dat": ("reject", 405),
    "via-received-param-with-delim.dat": ("accept", None),
    "via-received-param-no-delim.dat": ("accept", None), "ipv6-in-sdp.dat": ("accept", None),
    "mult-ip-in-header.dat": ("accept", None), "mult-ip-in-sdp.dat": ("accept", None),
    "ipv4-mapped-ipv6.dat": ("accept", None), "ipv6-bug-abnf-3-colons.dat": ("accept", None),
    "ipv6-correct-abnf-2-colons.dat": ("accept", None),
}


def _rfc4475(name: str) -> bytes:
    return (TESTDATA / "rfc4475" / name).read_bytes()


def _rfc5118(name: str) -> bytes:
    """The CRLF copy, with the declared Content-Length corrected: these tests are about IPv6,
    not framing (tests/data/README.md)."""
    data = (TESTDATA / "rfc5118" / "wire" / name).read_bytes()
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length")]
    return b"\r\n".join([*lines, b"Content-Length: %d" % len(body)]) + sep + body


def _outcome(data: bytes) -> tuple[str, int | None]:
    try:
        message = parse(data)
    except ParseError as exc:
        return "parse", exc.status
    if isinstance(message, Response):
        return ("drop", None) if check_response(message) else ("accept", None)
    rejection = check_request(message, EndpointPolicy())
    return ("reject", rejection.status) if rejection else ("accept", None)


def test_every_corpus_file_has_an_expected_outcome() -> None:
    rfc4475 = {p.name for p in (TESTDATA / "rfc4475").glob("*.dat")}
    rfc5118 = {p.name for p in (TESTDATA / "rfc5118" / "wire").glob("*.dat")}
    assert rfc4475 == set(OUTCOMES)
    assert rfc5118 == set(RFC5118_OUTCOMES)


def test_outcomes_agree_with_the_manifest() -> None:
    """Manifest 'valid' never becomes a parse error; 'invalid' never passes unanswered."""
    manifest = TESTDATA / "rfc4475" / "MANIFEST.tsv"
    with manifest.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            kind, _ = OUTCOMES[row["name"]]
            if row["expected"] == "valid":
                assert kind != "parse", row["name"]
            elif row["expected"] == "invalid":
                assert kind in ("parse", "reject", "drop"), row["name"]


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_rfc4475_outcome(name: str) -> None:
    assert _outcome(_rfc4475(name)) == OUTCOMES[name]


@pytest.mark.parametrize("name", sorted(RFC5118_OUTCOMES))
def test_rfc5118_outcome(name: str) -> None:
    assert _outcome(_rfc5118(name)) == RFC5118_OUTCOMES[name]


def test_rfc5118_raw_lf_copies_parse_too() -> None:
    """The archive's bare-LF originals: tolerated line endings, same decoded Request-URI."""
    raw = (TESTDATA / "rfc5118" / "port-unambiguous.dat").read_bytes()
    message = parse(raw)
    assert isinstance(message, Request) and isinstance(message.uri, SipUri)
    assert (message.uri.host, message.uri.port) == ("2001:db8::10", 5070)


def test_baddn_is_rejected_for_its_display_names_not_only_its_framing() -> None:
    with pytest.raises(ParseError, match="Bad address"):
        parse(_rfc4475("baddn.dat") + b"\r\n")


# --- the decoded values each RFC section points at ------------------------------------------

def _request(data: bytes) -> Request:
    message = parse(data)
    assert isinstance(message, Request)
    return message


def _sip(uri: object) -> SipUri:
    assert isinstance(uri, SipUri)
    return uri


def check_wsinv(m: Request) -> None:
    assert m.method == "INVITE" and _sip(m.uri).has_param("unknownparam")
    assert str(m.to_address.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert m.to_address.tag == "1918181833n"
    assert m.from_address.display_name == 'J Rosenberg \\"'
    assert m.from_address.tag == "98asjd8"
    assert m.max_forwards == 68 and (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host) for v in m.vias] == [
        ("UDP", "192.0.2.2"), ("TCP", "spindle.example.com"), ("UDP", "192.168.255.111")]
    assert [v.branch for v in m.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = m.contacts[0]
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    route = _sip(m.routes[0].uri)
    assert route.has_param("lr") and route.param("unknownwith") == "value"
    assert len(m.body) == 150


def check_intmeth(m: Request) -> None:
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~" == m.cseq.method
    uri = _sip(m.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.to_address.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_address.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_address.tag == "_token~1'+`*%!-."
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def check_esc01(m: Request) -> None:
    assert _sip(m.uri).user == "sips:user@example.com"
    assert _sip(m.to_address.uri).user == "user"
    assert _sip(m.from_address.uri).user == "I have spaces"
    contact = _sip(m.contacts[0].uri)
    assert contact.user == "caller"
    assert contact.params == (("lr", None), ("name", "value%41"))  # unescaped once only


def check_escnull(m: Request) -> None:
    assert _sip(m.to_address.uri).user == "null-\x00-null"
    users = [_sip(c.uri).user for c in m.contacts]
    assert users == ["\x00", "\x00\x00"]
    assert m.contacts[0].uri != m.contacts[1].uri


def check_esc02(m: Request) -> None:
    assert m.method == "RE%47IST%45R" and m.method != "REGISTER"
    assert m.to_address.display_name == "%Z%45"
    assert len(m.contacts) == 2
    assert m.headers.get_all("C%6Fntact") == ["<sip:alias2@host2.example.com>"]


def check_lwsdisp(m: Request) -> None:
    assert m.from_address.display_name == "caller"


def check_longreq(m: Request) -> None:
    assert m.to_address.display_name is not None
    assert "extremeextreme" in m.to_address.display_name
    assert _sip(m.to_address.uri).port == 6000
    assert len(m.vias) == 34 and m.vias[-1].received == "192.0.2.5"
    assert m.from_address.tag is not None and len(m.from_address.tag) > 150


def check_dblreq(m: Request) -> None:
    assert m.method == "REGISTER" and m.body == b""


def check_semiuri(m: Request) -> None:
    uri = _sip(m.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", ())


def check_transports(m: Request) -> None:
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def check_mpart01(m: Request) -> None:
    assert len(m.body) == 553 and b"\x00" in m.body
    # The manifest's summary says multipart/signed; the archive's bytes say multipart/mixed.
    assert m.content_type is not None and m.content_type.mime == "multipart/mixed"
    assert dict(m.content_type.params)["boundary"] == "7a9cbec02ceef655"


def check_inv2543(m: Request) -> None:
    assert m.top_via.branch is None and m.from_address.tag is None
    assert m.body.startswith(b"v=0") and m.max_forwards is None


def check_unkscm(m: Request) -> None:
    assert isinstance(m.uri, AbsoluteUri) and m.uri.scheme == "nobodyKnowsThisScheme"


def check_unksm2(m: Request) -> None:
    assert [str(a.uri.scheme) for a in (m.to_address, m.from_address, m.contacts[0])] == [
        "isbn", "http", "name"]


def check_cparam01(m: Request) -> None:
    contact = m.contacts[0]
    assert contact.params == (("unknownparam", None),) and _sip(contact.uri).params == ()


def check_cparam02(m: Request) -> None:
    contact = m.contacts[0]
    assert contact.params == () and _sip(contact.uri).params == (("unknownparam", None),)


def check_regescrt(m: Request) -> None:
    assert _sip(m.contacts[0].uri).header("Route") == "<sip:sip.example.com>"


def check_zeromf(m: Request) -> None:
    assert m.max_forwards == 0


VALUE_CHECKS: dict[str, Callable[[Request], None]] = {
    "wsinv.dat": check_wsinv, "intmeth.dat": check_intmeth, "esc01.dat": check_esc01,
    "escnull.dat": check_escnull, "esc02.dat": check_esc02, "lwsdisp.dat": check_lwsdisp,
    "longreq.dat": check_longreq, "dblreq.dat": check_dblreq, "semiuri.dat": check_semiuri,
    "transports.dat": check_transports, "mpart01.dat": check_mpart01,
    "inv2543.dat": check_inv2543, "unkscm.dat": check_unkscm, "unksm2.dat": check_unksm2,
    "cparam01.dat": check_cparam01, "cparam02.dat": check_cparam02,
    "regescrt.dat": check_regescrt, "zeromf.dat": check_zeromf,
}


@pytest.mark.parametrize("name", sorted(VALUE_CHECKS))
def test_rfc4475_decoded_values(name: str) -> None:
    VALUE_CHECKS[name](_request(_rfc4475(name)))


def test_unreason_and_noreason_status_lines() -> None:
    unreason = parse(_rfc4475("unreason.dat"))
    assert isinstance(unreason, Response) and unreason.status == 200
    assert "простое" in unreason.reason
    noreason = parse(_rfc4475("noreason.dat"))
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")


def test_rejections_carry_the_headers_the_rfc_asks_for() -> None:
    bext = check_request(_request(_rfc4475("bext01.dat")), EndpointPolicy())
    assert bext is not None and dict(bext.headers)["Unsupported"] == (
        "nothingSupportsThis, nothingSupportsThisEither")
    intmeth = check_request(_request(_rfc4475("intmeth.dat")), EndpointPolicy())
    assert intmeth is not None and "INVITE" in dict(intmeth.headers)["Allow"]


def _rfc5118_request(name: str) -> Request:
    return _request(_rfc5118(name))


def test_rfc5118_decoded_addresses() -> None:
    good = _rfc5118_request("ipv6-good.dat")
    assert _sip(good.uri).host == "2001:db8::10" and good.top_via.host == "2001:db8::9:1"
    ambiguous = _sip(_rfc5118_request("port-ambiguous.dat").uri)
    assert (ambiguous.host, ambiguous.port) == ("2001:db8::10:5070", None)
    with_delim = _rfc5118_request("via-received-param-with-delim.dat").top_via
    no_delim = _rfc5118_request("via-received-param-no-delim.dat").top_via
    assert with_delim.received == no_delim.received == "2001:db8::9:255"
    mixed = _rfc5118_request("mult-ip-in-header.dat").vias
    assert [(v.host, v.port) for v in mixed] == [
        ("2001:db8::9:1", 6050), ("192.0.2.1", None), ("2001:db8::9:255", None)]
    assert mixed[2].received == "192.0.2.200"
    mapped = _rfc5118_request("ipv4-mapped-ipv6.dat")
    assert [(v.host, v.port) for v in mapped.vias] == [
        ("::ffff:192.0.2.10", 19823), ("::ffff:192.0.2.2", None)]
    three = _sip(_rfc5118_request("ipv6-bug-abnf-3-colons.dat").uri)
    assert three.host == "2001:db8:::192.0.2.1"


def test_ipv6_in_sdp_body_is_kept_unbracketed() -> None:
    message = _rfc5118_request("ipv6-in-sdp.dat")
    assert b"c=IN IP6 2001:db8::20" in message.body


def test_ipv6_in_sdp_as_shipped_declares_more_body_than_it_has() -> None:
    data = (TESTDATA / "rfc5118" / "wire" / "ipv6-in-sdp.dat").read_bytes()
    with pytest.raises(ParseError, match="Content-Length"):
        parse(data)


def test_corpus_round_trips_through_canonical_bytes() -> None:
    """Every message that parses serialises to bytes that parse to an equal message."""
    corpus: list[Path] = sorted((TESTDATA / "rfc4475").glob("*.dat"))
    for path in corpus:
        try:
            message = parse(path.read_bytes())
        except ParseError:
            continue
        assert parse(bytes(message)) == message, path.name
