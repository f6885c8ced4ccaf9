"""Opus through opuslib (libopus): 48 kHz RTP clock (RFC 7587), mono, in-band FEC on, and
libopus's own packet loss concealment. opuslib is imported only when Opus is used, so the
G.711 path works on a machine without libopus."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
RATE = 48000


class Opus:
    def __init__(self, complexity: int = 5) -> None:
        import opuslib
        import opuslib.api.ctl
        import opuslib.api.encoder

        self._encoder: Any = opuslib.Encoder(RATE, 1, opuslib.APPLICATION_VOIP)
        state = self._encoder.encoder_state
        # opuslib 3.0's property setters for these drop their value; the ctl calls work.
        for request, value in ((opuslib.api.ctl.set_complexity, complexity),
                               (opuslib.api.ctl.set_inband_fec, 1),
                               (opuslib.api.ctl.set_packet_loss_perc, 5)):
            opuslib.api.encoder.encoder_ctl(state, request, value)
        self._decoder: Any = opuslib.Decoder(RATE, 1)

    def encode(self, frame: Samples) -> bytes:
        data: bytes = self._encoder.encode(frame.astype(np.int16).tobytes(), len(frame))
        return data

    def decode(self, payload: bytes) -> Samples:
        pcm = self._decoder.decode(payload, 5760)
        return np.frombuffer(pcm, dtype=np.int16).copy()

    def conceal(self, samples: int) -> Samples:
        pcm = self._decoder.decode(b"", samples)
        return np.frombuffer(pcm, dtype=np.int16).copy()

    def recover(self, next_payload: bytes, samples: int) -> Samples:
        """The lost frame rebuilt from the in-band FEC data of the packet after it."""
        pcm = self._decoder.decode(next_payload, samples, decode_fec=True)
        return np.frombuffer(pcm, dtype=np.int16).copy()
