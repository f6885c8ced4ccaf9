"""Choosing where a 3xx sends the call next."""

from __future__ import annotations

from softphone.core.requests import redirect_target
from softphone.sip import Headers, Response, parse_sip_uri


def redirect(*contacts: str, status: int = 302) -> Response:
    return Response(status, "Moved", Headers([("Contact", c) for c in contacts]))


def test_highest_q_first_then_listed_order() -> None:
    response = redirect("<sip:a@h1>;q=0.5", "<sip:b@h2>;q=0.9", "<sip:c@h3>", "<sip:d@h4>;q=0.9")
    assert redirect_target(response, set()) == parse_sip_uri("sip:c@h3")  # no q means 1.0
    visited = {parse_sip_uri("sip:c@h3")}
    assert redirect_target(response, visited) == parse_sip_uri("sip:b@h2")
    visited.add(parse_sip_uri("sip:b@h2"))
    assert redirect_target(response, visited) == parse_sip_uri("sip:d@h4")


def test_loops_non_sip_contacts_and_non_3xx_give_nothing() -> None:
    assert redirect_target(redirect("<sip:a@h1>"), {parse_sip_uri("sip:a@h1")}) is None
    assert redirect_target(redirect("<tel:+1555>", "<mailto:x@y>"), set()) is None
    assert redirect_target(redirect("<sip:a@h1>", status=486), set()) is None
    assert redirect_target(redirect("<sip:a@h1>;q=bogus", "<sip:b@h2>"), set()) == \
        parse_sip_uri("sip:b@h2")
