"""SRTP and SRTCP (RFC 3711, RFC 7714 AEAD) for one stream, through pylibsrtp (libsrtp 2):
no cipher is written here.

One libsrtp session protects what we send, with our key; another unprotects what arrives,
with the peer's. A packet that fails authentication or replay checks (tampered, replayed,
someone else's) is dropped and counted; it never reaches the jitter buffer.
"""

from __future__ import annotations

from softphone.sdp.negotiation import SrtpKeys


class SrtpContext:
    def __init__(self, keys: SrtpKeys) -> None:
        from pylibsrtp import Policy, Session  # imported only when a call uses SRTP

        profile = getattr(Policy, keys.suite.profile)
        self.keys = keys
        self._outbound = Session(policy=Policy(key=keys.local, srtp_profile=profile,
                                               ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        self._inbound = Session(policy=Policy(key=keys.remote, srtp_profile=profile,
                                              ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.rejected = 0  # packets that failed authentication, or were replays

    def protect(self, packet: bytes) -> bytes:
        protected: bytes = self._outbound.protect(packet)
        return protected

    def protect_rtcp(self, packet: bytes) -> bytes:
        protected: bytes = self._outbound.protect_rtcp(packet)
        return protected

    def unprotect(self, packet: bytes) -> bytes | None:
        """The plain packet, or None (counted) when it does not authenticate."""
        from pylibsrtp import Error

        try:
            plain: bytes = self._inbound.unprotect(packet)
        except Error:
            self.rejected += 1
            return None
        return plain

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        from pylibsrtp import Error

        try:
            plain: bytes = self._inbound.unprotect_rtcp(packet)
        except Error:
            self.rejected += 1
            return None
        return plain
