"""What the transports share: the interface the engine sends through, the callbacks that
hand it messages, and the registry that names them.

The engine keeps one registry (transport name -> Transport) and never asks which transport
it holds: each says how its Via reads (``via``), what a Contact for it adds
(``uri_transport``), whether it is reliable, and sends bytes to a peer. UDP and TCP are
entries today; TLS and WebSocket plug in as new ones."""

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

    def transport_failed(self, peer: Peer, reason: str) -> None:
        """Bytes for ``peer`` could not be sent (connection refused, reset ...)."""
        ...

    def connection_lost(self, peer: Peer) -> None:
        """A connection (TCP, TLS) to ``peer`` closed."""
        ...

    def keepalive_answered(self, peer: Peer) -> None:
        """``peer`` answered our keep-alive (a CRLF pong, a STUN response)."""
        ...

    def trace(self, direction: str, data: bytes, peer: Peer) -> None:
        """Every SIP datagram or stream chunk, raw, as it crosses the socket."""
        ...


class Transport(Protocol):
    """One entry of the registry: a listening socket (or server) and how to send on it."""

    name: str                   # the registry's key and Peer.transport: udp, tcp ...
    via: str                    # in Via: SIP/2.0/UDP
    uri_transport: str | None   # transport=tcp in a Contact (None: UDP, the default)
    secure: bool                # its Contact is a sips: URI (TLS)
    host: str
    port: int
    reuse_port: bool            # SO_REUSEPORT: several processes listen on one port

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free one); OSError (with errno) if not."""
        ...

    def send(self, data: bytes, peer: Peer) -> None:
        """Send now or as soon as a connection is up; failures come back through the
        sink's ``transport_failed``."""
        ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...
