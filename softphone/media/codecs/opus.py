"""Opus through opuslib (libopus): 48 kHz RTP clock (RFC 7587), mono, libopus's own packet
loss concealment, and in-band FEC. opuslib is imported only when Opus is used, so the G.711
path works on a machine without libopus.

The encoder follows what the peer's fmtp says it wants to receive (RFC 7587 6.1):
maxaveragebitrate caps the bit rate, maxplaybackrate the audio bandwidth, useinbandfec=1 asks
for FEC (our default when the peer does not say: it costs a little and saves lost frames),
usedtx=1 for discontinuous transmission, cbr=1 for a constant bit rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from softphone.sip.grammar import decimal

Samples = npt.NDArray[np.int16]
RATE = 48000  # the RTP clock, whatever rate the audio is coded at
# The rates libopus encodes from and decodes to. Below 48 kHz both cost less (measured: ~30%
# less to encode and ~67% less to decode at 16 kHz), so a call whose audio is narrower (a
# 16 kHz file, silence, a tone, a recording at 8 kHz) is coded at the narrowest rate that
# holds it; the stream sends the same packets and the RTP clock stays at 48 kHz.
AUDIO_RATES = (8000, 12000, 16000, 24000, 48000)
MIN_BITRATE, MAX_BITRATE = 6000, 510000
# maxplaybackrate -> the widest audio band worth sending (libopus's bandwidth constants)
_BANDS = ((8000, "BANDWIDTH_NARROWBAND"), (12000, "BANDWIDTH_MEDIUMBAND"),
          (16000, "BANDWIDTH_WIDEBAND"), (24000, "BANDWIDTH_SUPERWIDEBAND"))


def audio_rate_for(wanted: int) -> int:
    """The narrowest rate libopus codes at that holds audio of ``wanted`` Hz."""
    return next((rate for rate in AUDIO_RATES if rate >= wanted), RATE)

DEFAULT_COMPLEXITY = 5  # the encoder's effort (0-10): a call's own, when not under load


class Opus:
    """``rate`` is the audio's coded by the encoder (frames in), ``decode_rate`` the audio's
    the decoder gives out (``rate`` unless said); the packets are the same at any rate."""

    def __init__(self, complexity: int = DEFAULT_COMPLEXITY, peer: dict[str, str] | None = None,
                 rate: int = RATE, decode_rate: int | None = None) -> None:
        import opuslib
        import opuslib.api.encoder

        decode_rate = decode_rate or rate
        for asked in (rate, decode_rate):
            if asked not in AUDIO_RATES:
                raise ValueError(f"Opus codes audio at {AUDIO_RATES} Hz, not {asked}")
        self.rate, self.decode_rate = rate, decode_rate
        self.complexity = complexity
        self._encoder: Any = opuslib.Encoder(rate, 1, opuslib.APPLICATION_VOIP)
        # opuslib 3.0's property setters drop their value; the ctl calls work.
        for request, value in _settings(complexity, peer or {}):
            opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state, request, value)
        self._decoder: Any = opuslib.Decoder(decode_rate, 1)

    def set_complexity(self, complexity: int) -> None:
        """Trade quality for CPU (0-10) while the call goes on: the media clock lowers it
        when it falls behind and restores it when load drops."""
        import opuslib.api.ctl
        import opuslib.api.encoder

        if complexity != self.complexity:
            opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state,
                                            opuslib.api.ctl.set_complexity, complexity)
            self.complexity = complexity

    def setting(self, name: str) -> int:
        """An encoder setting as libopus reports it (``bitrate``, ``dtx``, ``inband_fec`` ...)."""
        import opuslib.api.ctl
        import opuslib.api.encoder

        request = getattr(opuslib.api.ctl, f"get_{name}")
        value: int = opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state, request)
        return value

    def encode(self, frame: Samples) -> bytes:
        data: bytes = self._encoder.encode(frame.astype(np.int16).tobytes(), len(frame))
        return data

    def decode(self, payload: bytes) -> Samples:
        pcm = self._decoder.decode(payload, 5760)
        return np.frombuffer(pcm, dtype=np.int16).copy()

    def conceal(self, samples: int) -> Samples:
        pcm = self._decoder.decode(b"", samples)
        return np.frombuffer(pcm, dtype=np.int16).copy()

    def samples(self, payload: bytes) -> int:
        return packet_samples(payload) * self.decode_rate // RATE

    def recover(self, next_payload: bytes, samples: int) -> Samples:
        """The lost frame rebuilt from the in-band FEC data of the packet after it."""
        pcm = self._decoder.decode(next_payload, samples, decode_fec=True)
        return np.frombuffer(pcm, dtype=np.int16).copy()


def _settings(complexity: int, wanted: dict[str, str]) -> list[tuple[Any, int]]:
    """The encoder ctl requests for our defaults and the peer's fmtp."""
    import opuslib
    import opuslib.api.ctl as ctl

    settings: list[tuple[Any, int]] = [
        (ctl.set_complexity, complexity), (ctl.set_packet_loss_perc, 5),
        (ctl.set_inband_fec, 0 if wanted.get("useinbandfec") == "0" else 1)]
    if wanted.get("usedtx") == "1":
        settings.append((ctl.set_dtx, 1))
    if wanted.get("cbr") == "1":
        settings.append((ctl.set_vbr, 0))
    bitrate = _number(wanted.get("maxaveragebitrate"))
    if bitrate is not None:
        settings.append((ctl.set_bitrate, max(MIN_BITRATE, min(MAX_BITRATE, bitrate))))
    playback = _number(wanted.get("maxplaybackrate"))
    if playback is not None:
        band = next((name for limit, name in _BANDS if playback <= limit), "BANDWIDTH_FULLBAND")
        settings.append((ctl.set_max_bandwidth, getattr(opuslib, band)))
    return settings


def _number(text: str | None) -> int | None:
    return decimal(text)


# Frame durations in 48 kHz samples by TOC configuration (RFC 6716 3.1): SILK-only 0-11,
# hybrid 12-15, CELT-only 16-31.
_FRAME_SAMPLES = ((480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4)


def packet_samples(payload: bytes) -> int:
    """How many 48 kHz samples an Opus packet holds, from its TOC byte (RFC 6716 3.1),
    without decoding it; 0 for a packet too short to say."""
    if not payload:
        return 0
    toc = payload[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = payload[1] & 0x3F if len(payload) > 1 else 0
    return _FRAME_SAMPLES[toc >> 3] * frames
