"""SRTP through pylibsrtp, checked against the RFCs' own numbers.

libsrtp derives session keys from a master key, while RFC 7714's packet examples start from
session keys, so the check runs in two steps: a small reference computation (AES from the
``cryptography`` package: RFC 3711's key derivation and counter mode, RFC 7714's AEAD) is
first shown to reproduce RFC 3711 B.2/B.3 and RFC 7714 16.1.1 exactly, and pylibsrtp's
protected packets must then equal the reference's, byte for byte, for both suites."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from softphone.media.srtp import SrtpContext
from softphone.sdp.crypto import SUITES
from softphone.sdp.negotiation import SrtpKeys
from tests.conftest import TESTDATA


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 4.3.1/4.3.3 with kdr 0: x = key_id XOR master salt (a 96-bit salt is padded
    to 112 bits, RFC 7714 errata 4938), AES-CM keystream from x * 2^16."""
    salt = master_salt.ljust(14, b"\x00")
    key_id = bytes([label]) + bytes(6)
    x = salt[:7] + bytes(a ^ b for a, b in zip(salt[7:], key_id, strict=True))
    return aes_ctr(master_key, x + b"\x00\x00", bytes(length))


def counter_iv(salt: bytes, ssrc: int, index: int) -> bytes:
    """RFC 3711 4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16)."""
    block = bytes(4) + struct.pack("!I", ssrc) + index.to_bytes(6, "big") + bytes(2)
    return bytes(a ^ b for a, b in zip(block, salt + bytes(2), strict=True))


def test_the_reference_derives_rfc_3711_b3() -> None:
    key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert derive(key, salt, 0, 16).hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert derive(key, salt, 2, 14).hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert derive(key, salt, 1, 20).hex().upper() == "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"


def test_the_reference_counter_mode_is_rfc_3711_b2() -> None:
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    salt = bytes.fromhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
    iv = counter_iv(salt, ssrc=0, index=0)
    assert iv.hex().upper() == "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"
    keystream = aes_ctr(key, iv, bytes(48))
    assert keystream[:16].hex().upper() == "E03EAD0935C95E80E166B16DD92B4EB4"
    assert keystream[16:32].hex().upper() == "D23513162B02D0F72A43A2FE4A5F97AB"
    assert keystream[32:48].hex().upper() == "41E95B3BB0A2E8DD477901E4FCA894C0"


def rfc7714_packets() -> tuple[bytes, bytes]:
    """The plain RTP packet and its AEAD_AES_128_GCM protection, from RFC 7714 16.1.1."""
    text = (TESTDATA / "rfc7714" / "rtp-vectors.txt").read_text()
    section = text[text.index("16.1.1."):text.index("16.1.2.")]

    def hexblock(after: str) -> bytes:
        start = section.index(after) + len(after)
        lines = []
        for line in section[start:].splitlines()[1:]:
            if not line.strip():
                if lines:
                    break
                continue
            lines.append(line.strip())
        return bytes.fromhex(re.sub(r"\s", "", "".join(lines)))

    return hexblock("Encrypting the following packet:"), hexblock("Encrypted and tagged packet:")


def test_the_reference_aead_reproduces_rfc_7714() -> None:
    plain, protected = rfc7714_packets()
    key = bytes(range(16))
    salt = b"Quid pro quo"
    header, payload = plain[:12], plain[12:]
    ssrc, sequence = struct.unpack("!I", plain[8:12])[0], struct.unpack("!H", plain[2:4])[0]
    iv = bytes(a ^ b for a, b in zip(bytes(2) + struct.pack("!I", ssrc) + bytes(4)
                                     + struct.pack("!H", sequence), salt, strict=True))
    assert iv.hex() == "51753c6580c2726f20718414"
    assert header + AESGCM(key).encrypt(iv, payload, header) == protected


def rtp(sequence: int, ssrc: int = 0x12345678, payload: bytes = b"\xd5" * 160) -> bytes:
    return struct.pack("!BBHII", 0x80, 8, sequence, sequence * 160, ssrc) + payload


MASTER = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139" "0EC675AD498AFEEBB6960B3AABE6")


def test_libsrtp_aes_cm_sha1_80_equals_the_reference() -> None:
    suite = SUITES["AES_CM_128_HMAC_SHA1_80"]
    context = SrtpContext(SrtpKeys(suite, MASTER, MASTER))
    key, salt = MASTER[:16], MASTER[16:]
    cipher_key, cipher_salt = derive(key, salt, 0, 16), derive(key, salt, 2, 14)
    auth_key = derive(key, salt, 1, 20)
    for sequence in (1, 2, 65535):
        plain = rtp(sequence)
        protected = context.protect(plain)
        keystream = aes_ctr(cipher_key, counter_iv(cipher_salt, 0x12345678, sequence),
                            bytes(160))
        body = plain[:12] + bytes(a ^ b for a, b in zip(plain[12:], keystream, strict=True))
        tag = hmac.new(auth_key, body + bytes(4), hashlib.sha1).digest()[:10]  # ROC 0
        assert protected == body + tag


def test_libsrtp_aead_aes_128_gcm_equals_the_reference() -> None:
    suite = SUITES["AEAD_AES_128_GCM"]
    material = MASTER[:28]
    context = SrtpContext(SrtpKeys(suite, material, material))
    key, salt = material[:16], material[16:]
    session_key, session_salt = derive(key, salt, 0, 16), derive(key, salt, 2, 12)
    for sequence in (7, 8):
        plain = rtp(sequence)
        iv = bytes(a ^ b for a, b in zip(bytes(2) + struct.pack("!I", 0x12345678) + bytes(4)
                                         + struct.pack("!H", sequence), session_salt,
                                         strict=True))
        expected = plain[:12] + AESGCM(session_key).encrypt(iv, plain[12:], plain[:12])
        assert context.protect(plain) == expected


@pytest.mark.parametrize("suite", list(SUITES))
def test_tampered_and_replayed_packets_are_dropped_and_counted(suite: str) -> None:
    chosen = SUITES[suite]
    ours, theirs = MASTER[:chosen.material_length], bytes(range(chosen.material_length))
    sender = SrtpContext(SrtpKeys(chosen, ours, theirs))
    receiver = SrtpContext(SrtpKeys(chosen, theirs, ours))
    first = sender.protect(rtp(1))
    assert receiver.unprotect(first) == rtp(1)
    tampered = bytearray(sender.protect(rtp(2)))
    tampered[20] ^= 0x01
    assert receiver.unprotect(bytes(tampered)) is None
    assert receiver.unprotect(first) is None  # a replay
    assert receiver.rejected == 2
    report = sender.protect_rtcp(bytes.fromhex("80c90001") + struct.pack("!I", 0x12345678))
    assert receiver.unprotect_rtcp(report) is not None
