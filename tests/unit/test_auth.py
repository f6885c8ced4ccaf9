"""Digest authentication against the worked examples of RFC 2617 and RFC 7616 3.9.1."""

from __future__ import annotations

import pytest

from softphone.sip.auth import (
    Challenge,
    DigestInput,
    authorize,
    choose_challenge,
    compute_response,
    parse_challenge,
    parse_credentials,
    verify,
)
from softphone.sip.errors import AuthError

RFC7616 = dict(username="Mufasa", password="Circle of Life", realm="http-auth@example.org",
               nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", method="GET",
               uri="/dir/index.html", qop="auth", nc="00000001",
               cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_section_3_9_1(algorithm: str, expected: str) -> None:
    assert compute_response(DigestInput(algorithm=algorithm, **RFC7616)) == expected


def test_rfc2617_section_3_5() -> None:
    response = compute_response(DigestInput(
        username="Mufasa", password="Circle Of Life", realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET", uri="/dir/index.html",
        qop="auth", nc="00000001", cnonce="0a4f113b"))
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess",
                                       "SHA-512-256", "SHA-512-256-sess"])
@pytest.mark.parametrize("qop", [(), ("auth",), ("auth-int",), ("auth", "auth-int")])
def test_authorize_then_verify_round_trip(algorithm: str, qop: tuple[str, ...]) -> None:
    challenge = Challenge(realm="example.com", nonce="abc", algorithm=algorithm, qop=qop,
                          opaque="op")
    parsed = parse_challenge(str(challenge))
    assert parsed == challenge
    credentials = authorize(parsed, "alice", "pw", "INVITE", "sip:bob@example.com", b"body")
    header = parse_credentials(str(credentials))
    assert header == credentials
    assert verify(header, "pw", "INVITE", b"body")
    assert not verify(header, "wrong", "INVITE", b"body")
    if credentials.qop == "auth-int":
        assert not verify(header, "pw", "INVITE", b"other body")


def test_kamailio_style_challenge_parses() -> None:
    challenge = parse_challenge(
        'Digest realm="127.0.0.1", nonce="Z2Zk1mdmZMrrA4ZmR+7gyx5n2u4zrUs8", qop="auth"')
    assert challenge.qop == ("auth",) and challenge.algorithm == "MD5"


def test_strongest_supported_challenge_is_chosen() -> None:
    values = ['Digest realm="r", nonce="1", algorithm=MD5',
              'Digest realm="r", nonce="2", algorithm=SHA-256',
              'Digest realm="r", nonce="3", algorithm=UNKNOWN-ALG',
              'Basic realm="r"']
    assert choose_challenge(values).nonce == "2"
    with pytest.raises(AuthError):
        choose_challenge(['Digest realm="r", nonce="3", algorithm=UNKNOWN-ALG'])
