"""Property tests: canonical bytes parse back to the same message, and no input whatever makes
the parser raise anything but ParseError."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.sip import Headers, ParseError, Request, Response, SipUri, StreamFramer, parse
from softphone.sip.headers import Address, Via
from tests.conftest import TESTDATA

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
labels = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=3).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["::1", "2001:db8::10", "fe80::1:2", "::ffff:192.0.2.1"])
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(1, 65535))
# Any text, including characters that must be escaped in a URI, except surrogates.
free_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
uri_params = st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3).map(tuple)

sip_uris = st.builds(SipUri, host=hosts, user=st.one_of(st.none(), free_text), port=ports,
                     params=uri_params, scheme=st.sampled_from(["sip", "sips"]))
display_names = st.one_of(st.none(), st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), max_size=12))
addresses = st.builds(Address, uri=sip_uris, display_name=display_names, params=uri_params)
vias = st.builds(Via, transport=st.sampled_from(["UDP", "TCP", "TLS"]), host=hosts,
                 port=ports, params=uri_params)
# "X-" names are never headers the parser validates or splits.
extension_names = tokens.map(lambda name: "X-" + name)
extension_values = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(
    str.strip)


@st.composite
def headers(draw: st.DrawFn) -> Headers:
    result = Headers()
    for via in draw(st.lists(vias, min_size=1, max_size=3)):
        result.add("Via", str(via))
    result.add("From", str(draw(addresses)))
    result.add("To", str(draw(addresses)))
    result.add("Call-ID", draw(tokens) + "@" + draw(hostnames))
    result.add("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {draw(tokens)}")
    for contact in draw(st.lists(addresses, max_size=2)):
        result.add("Contact", str(contact))
    for name, value in draw(st.lists(st.tuples(extension_names, extension_values), max_size=4)):
        result.add(name, value)
    return result


requests = st.builds(Request, method=tokens, uri=sip_uris, headers=headers(),
                     body=st.binary(max_size=64))
responses = st.builds(Response, status=st.integers(100, 699),
                      reason=st.text(st.characters(blacklist_categories=("Cs", "Cc")),
                                     max_size=20).map(str.strip),
                      headers=headers(), body=st.binary(max_size=64))


@given(st.one_of(requests, responses))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_parse_of_serialise_is_identity(message: Request | Response) -> None:
    assert parse(bytes(message)) == message


@given(st.one_of(requests, responses))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_stream_framer_reads_what_serialise_wrote(message: Request | Response) -> None:
    data = bytes(message)
    assert StreamFramer().feed(data + b"\r\n" + data) == [message, message]


@given(st.binary(max_size=512))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    try:
        parse(data)
    except ParseError:
        pass


_CORPUS = [p.read_bytes() for p in sorted((TESTDATA / "rfc4475").glob("*.dat"))]


@given(st.integers(0, len(_CORPUS) - 1), st.integers(0, 2**32 - 1), st.integers(1, 8))
@settings(max_examples=1000, deadline=None)
def test_mutated_torture_messages_raise_only_parse_error(index: int, seed: int,
                                                         mutations: int) -> None:
    data = bytearray(_CORPUS[index])
    rng = random.Random(seed)
    interesting = b'\r\n :;,<>"@%[]\\/=\x00\xff0123456789'
    for _ in range(mutations):
        position = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            data[position] = rng.choice(interesting)
        elif action == 1:
            del data[position]
        else:
            data.insert(position, rng.choice(interesting))
    try:
        message = parse(bytes(data))
    except ParseError:
        return
    # Whatever parsed must also serialise, and the views the stack reads must be safe.
    bytes(message)
    try:
        _ = (message.vias, message.contacts, message.cseq, message.call_id)
    except ParseError:
        pass
