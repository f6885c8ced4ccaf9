"""SDP Security Descriptions for media streams (RFC 4568, "SDES"): the ``a=crypto`` lines
that carry SRTP keys in the offer and the answer.

``a=crypto:<tag> <suite> inline:<base64 of key||salt>[|lifetime][|MKI:length]`` per suite
we offer; the answerer picks one (keeping its tag) and sends its own key. The suites are
AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568 6.2) and AEAD_AES_128_GCM (RFC 7714 12). Keys
come from ``secrets``; the cipher work itself is libsrtp's (``softphone.media.srtp``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from softphone.sip.grammar import decimal


@dataclass(frozen=True)
class Suite:
    name: str          # as SDP names it
    key_length: int    # master key bytes
    salt_length: int   # master salt bytes
    profile: str       # pylibsrtp's Policy constant

    @property
    def material_length(self) -> int:
        return self.key_length + self.salt_length


SUITES = {suite.name: suite for suite in (
    Suite("AES_CM_128_HMAC_SHA1_80", 16, 14, "SRTP_PROFILE_AES128_CM_SHA1_80"),
    Suite("AEAD_AES_128_GCM", 16, 12, "SRTP_PROFILE_AEAD_AES_128_GCM"),
    Suite("AES_CM_128_HMAC_SHA1_32", 16, 14, "SRTP_PROFILE_AES128_CM_SHA1_32"),
)}
DEFAULT_SUITES = tuple(SUITES)  # our offer's order: the most widely implemented first


@dataclass(frozen=True)
class Crypto:
    """One ``a=crypto`` line: a suite and its key material (key || salt)."""

    tag: int
    suite: Suite
    material: bytes

    @classmethod
    def new(cls, tag: int, suite: Suite) -> Crypto:
        return cls(tag, suite, secrets.token_bytes(suite.material_length))

    def __str__(self) -> str:
        inline = base64.b64encode(self.material).decode("ascii")
        return f"{self.tag} {self.suite.name} inline:{inline}"


def parse_crypto(value: str) -> Crypto | None:
    """A crypto attribute's value, or None when it is malformed, names a suite we do not
    have, or uses what we do not implement (several keys, MKIs): it is then ignored, as
    RFC 4568 6.1 lets an answerer ignore offered lines it cannot use."""
    parts = value.split()
    if len(parts) < 3 or parts[1] not in SUITES:
        return None
    tag, suite = decimal(parts[0]), SUITES[parts[1]]
    params = parts[2].split(";")  # several key-params: one key only here
    if tag is None or len(params) != 1 or not params[0].startswith("inline:"):
        return None
    key, _, extra = params[0][len("inline:"):].partition("|")
    if any(item.startswith("MKI") or ":" in item for item in extra.split("|") if item):
        return None  # an MKI: more than one key at once, which we do not do
    try:
        material = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(material) != suite.material_length:
        return None
    return Crypto(tag, suite, material)


def offer_cryptos(suites: tuple[str, ...] = DEFAULT_SUITES) -> list[Crypto]:
    """Fresh keys for every suite we offer, tagged 1, 2, 3 ... in preference order."""
    return [Crypto.new(tag, SUITES[name]) for tag, name in enumerate(suites, start=1)]


def choose(offered: list[Crypto], suites: tuple[str, ...] = DEFAULT_SUITES) -> Crypto | None:
    """The offered line we answer: the first (the offerer's preference) of a suite we take."""
    return next((crypto for crypto in offered if crypto.suite.name in suites), None)
