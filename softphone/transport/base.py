"""What the transports share: the callbacks that hand messages to the engine."""

from __future__ import annotations

import errno
from typing import Protocol

from softphone.sip import ParseError, Request, Response
from softphone.sip.errors import SipError
from softphone.sip.transaction import Peer
from softphone.sip.uri import format_host

_BIND_PROBLEMS = {errno.EADDRINUSE: "already in use",
                  errno.EADDRNOTAVAIL: "is not an address of this machine",
                  errno.EACCES: "needs privileges (a port below 1024)"}


class ListenError(SipError):
    """The address to listen on cannot be had; the message names it and why (a usage
    error for the CLI: the user chose the address)."""

    @classmethod
    def of(cls, host: str, port: int, error: OSError) -> ListenError:
        why = _BIND_PROBLEMS.get(error.errno or 0, error.strerror or str(error))
        return cls(f"address {format_host(host)}:{port} {why}")


class MessageSink(Protocol):
    """The engine side of a transport."""

    def message_received(self, message: Request | Response, source: Peer) -> None: ...

    def bad_message(self, data: bytes, error: ParseError, source: Peer) -> None: ...

    def trace(self, direction: str, data: bytes, peer: Peer) -> None:
        """Every SIP datagram or stream chunk, raw, as it crosses the socket."""
        ...
