"""SIP over TLS (RFC 3261 26, RFC 5630, RFC 5922), through Python's ``ssl``: a TCP transport
whose connections are TLS.

The server's certificate is verified against the system's trust store by default (or the
CA file given), and its name against the SIP domain we asked for (RFC 5922): the peer's
``name``, set by RFC 3263 resolution to the URI's host, or the address itself for an
address URI. ``insecure`` turns verification off, for labs. A certificate of our own is
presented to servers that ask for one, and is what lets us accept TLS connections (answer):
without one, TLS is client-only, and requests reach us over the connections we opened (the
registration's, RFC 5626). A failed handshake becomes one sentence naming the reason.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from softphone.sip.transaction import Peer
from softphone.transport.base import MessageSink
from softphone.transport.tcp import TcpTransport


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str | None = None    # trust these CAs instead of the system store
    cert_file: str | None = None  # our certificate: client certificate, server certificate
    key_file: str | None = None   # its private key (None: in cert_file)
    insecure: bool = False        # no verification at all (labs only)
    port: int | None = None       # where to accept TLS (None: the SIP port + 1; 0: any)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def server_context(self) -> ssl.SSLContext | None:
        if not self.cert_file:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
            context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is welcome
        return context


class TlsTransport(TcpTransport):
    name = "tls"
    via = "TLS"
    uri_transport: str | None = None  # a TLS contact is a sips: URI (RFC 5630)
    secure = True

    def __init__(self, sink: MessageSink, settings: TlsSettings | None = None) -> None:
        super().__init__(sink)
        self.settings = settings or TlsSettings()
        self._client = self.settings.client_context()
        self._server_ssl = self.settings.server_context()

    def _server_context(self) -> ssl.SSLContext | None:
        return self._server_ssl

    async def start(self, host: str, port: int) -> None:
        """Accept TLS when we have a certificate, on ``settings.port`` or the SIP port + 1
        (``port`` is the UDP/TCP port); without one only the address is noted."""
        self._closed = False  # (started again after a failed bind)
        chosen = self.settings.port if self.settings.port is not None else (
            port + 1 if port else 0)
        if self._server_ssl is None:
            self.host, self.port = host, chosen or port
            return
        await super().start(host, chosen)

    async def _open(self, peer: Peer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(peer.host, peer.port, ssl=self._client,
                                             server_hostname=peer.name or peer.host)

    def _failure(self, error: OSError, peer: Peer) -> str:
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"TLS handshake with {peer} failed: {error.verify_message}"
        if isinstance(error, ssl.SSLError):
            return f"TLS handshake with {peer} failed: {error.reason or error}"
        return super()._failure(error, peer)
