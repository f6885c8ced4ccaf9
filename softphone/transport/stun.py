"""STUN binding requests (RFC 5389), to learn the address a NAT shows the world for one of
our UDP sockets: the SIP socket (for Contact) and each call's RTP socket (for the SDP).

The messages and their retransmission are aioice's (``aioice.stun``); this only sends them
on our own sockets and hands back the responses the socket's protocol recognises, since a
NAT maps each socket separately and only that socket's request can learn its mapping.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aioice import stun

STUN_PORT = 3478
HEADER = 20


def is_stun(data: bytes) -> bool:
    """A STUN message (RFC 5389 6): top two bits zero and the magic cookie; RTP and SIP
    never look like this (RTP's version bits are 10, SIP starts with a letter)."""
    return len(data) >= HEADER and data[0] < 2 and \
        int.from_bytes(data[4:8], "big") == stun.COOKIE


class StunClient:
    """Binding requests over a socket whose ``send`` is given; feed it every datagram that
    ``is_stun`` with ``received``."""

    def __init__(self, send: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._send = send
        self._pending: dict[bytes, stun.Transaction] = {}

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        self._send(bytes(message), addr)  # aioice's TransactionSender: our socket sends

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error):  # aioice's: what it checks, a truncated attribute
            return  # anyone can send anything: not an answer of ours
        transaction = self._pending.get(message.transaction_id)
        if transaction is not None:
            transaction.response_received(message, addr)

    async def mapped_address(self, server: tuple[str, int],
                             retransmissions: int = 4) -> tuple[str, int]:
        """Our address as ``server`` sees it (XOR-MAPPED-ADDRESS). OSError on no answer."""
        request = stun.Message(message_method=stun.Method.BINDING,
                               message_class=stun.Class.REQUEST)
        transaction = stun.Transaction(request, server, self, retransmissions)
        self._pending[request.transaction_id] = transaction
        try:
            response, _ = await transaction.run()
        except (TimeoutError, stun.TransactionError) as error:
            raise OSError(f"no STUN answer from {server[0]}:{server[1]} ({error})") from None
        finally:
            del self._pending[request.transaction_id]
        return _mapped(response, server)


def _mapped(response: stun.Message, server: tuple[str, int]) -> tuple[str, int]:
    """The address a binding answer gives: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from a
    server of RFC 3489's day; OSError naming the server when it gives neither."""
    for name in ("XOR-MAPPED-ADDRESS", "MAPPED-ADDRESS"):
        mapped = response.attributes.get(name)
        if mapped is not None:
            host, port = mapped
            return str(host), int(port)
    raise OSError(f"the STUN answer from {server[0]}:{server[1]} gives no mapped address")


def parse_server(text: str) -> tuple[str, int]:
    """``host[:port]`` of a STUN server (port 3478 when not given)."""
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return text.strip("[]"), STUN_PORT
