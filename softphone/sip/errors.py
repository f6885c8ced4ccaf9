"""Errors of the SIP core.

    SipError                 base class; the CLI catches only this
     +-- ParseError          the peer sent junk; carries the status a UA answers (400, 505, ...)
     +-- LocalProtocolError  our own misuse of the API (a bug in the caller, never the peer)
     +-- AuthError           a challenge we cannot answer

A ParseError's ``reason`` is short and printable so that it can be the reason phrase of the
400 response, which tells the peer what we did not like.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error the SIP core raises on purpose."""


class ParseError(SipError):
    """Bytes or a header value that is not valid SIP.

    ``status`` is the response a UA sends when the bad message was a request (400 unless the
    defect has a more specific code, such as 505 for an unknown SIP version).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class LocalProtocolError(SipError):
    """The caller asked the core for something SIP does not allow."""


class AuthError(SipError):
    """A challenge we cannot answer (unknown scheme or algorithm, or no usable qop)."""
