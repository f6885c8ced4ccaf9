"""What the transports share: the callbacks that hand messages to the engine."""

from __future__ import annotations

from typing import Protocol

from softphone.sip import ParseError, Request, Response
from softphone.sip.transaction import Peer


class MessageSink(Protocol):
    """The engine side of a transport."""

    def message_received(self, message: Request | Response, source: Peer) -> None: ...

    def bad_message(self, data: bytes, error: ParseError, source: Peer) -> None: ...

    def trace(self, direction: str, data: bytes, peer: Peer) -> None:
        """Every SIP datagram or stream chunk, raw, as it crosses the socket."""
        ...
