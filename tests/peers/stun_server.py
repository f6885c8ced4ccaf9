"""A STUN server for the NAT tests (RFC 5389 binding requests only): it answers each one
with the address the request came from, which is all a client behind a NAT asks. Messages
are aioice's. Run: python stun_server.py HOST PORT (it serves until killed)."""

from __future__ import annotations

import asyncio
import sys

from aioice import stun


class StunServer(asyncio.DatagramProtocol):
    """``attribute``: where the answer puts the address (XOR-MAPPED-ADDRESS; MAPPED-ADDRESS
    as RFC 3489's servers did; None for an answer without one)."""

    def __init__(self, attribute: str | None = "XOR-MAPPED-ADDRESS") -> None:
        self.attribute = attribute

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = stun.parse_message(data)
        except ValueError:
            return
        if request.message_method != stun.Method.BINDING:
            return
        response = stun.Message(message_method=stun.Method.BINDING,
                                message_class=stun.Class.RESPONSE,
                                transaction_id=request.transaction_id)
        if self.attribute is not None:
            response.attributes[self.attribute] = addr
        self.transport.sendto(bytes(response), addr)  # type: ignore[attr-defined]


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(StunServer, local_addr=(host, port))
    print("serving", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
