"""The sans-IO SIP core: messages, parser, URIs, header views and digest authentication.

Nothing here touches sockets, clocks or asyncio: bytes and parsed objects go in, messages and
decisions come out. ``parse`` is the one entry point for bytes off the wire.
"""

from softphone.sip.errors import LocalProtocolError, ParseError, SipError
from softphone.sip.headers import Address, CSeq, MediaType, Via, parse_address, parse_via
from softphone.sip.message import Headers, Message, Request, Response
from softphone.sip.parser import StreamFramer, parse
from softphone.sip.uri import URI, AbsoluteUri, SipUri, TelUri, parse_sip_uri, parse_uri

__all__ = [
    "URI", "AbsoluteUri", "Address", "CSeq", "Headers", "LocalProtocolError", "MediaType",
    "Message", "ParseError", "Request", "Response", "SipError", "SipUri", "StreamFramer",
    "TelUri", "Via", "parse", "parse_address", "parse_sip_uri", "parse_uri", "parse_via",
]
