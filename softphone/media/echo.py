"""Echo cancellation and noise suppression for the sound card: WebRTC's audio processing
module (AEC3, its noise suppressor and high-pass filter), through LiveKit's Python SDK.

Why that binding: it is the maintained one (LiveKit ships it in wheels for every platform
and keeps it current with WebRTC), where the Python speexdsp and webrtc-audio-processing
bindings are unmaintained source packages; and AEC3 cancels far more than speexdsp's MDF
(measured over a simulated speaker-to-microphone path: more than 60 dB of echo return loss
enhancement, near-end speech through at about its own level while both talk).

The module works on 10 ms frames at 8, 16, 32 or 48 kHz: what the call sends to the speaker
is its "reverse stream" (the far end, the echo's source), what the microphone captured its
"stream" (near end plus echo), cleaned in place.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

RATES = (8000, 16000, 32000, 48000)
MAX_DELAY_MS = 500
log = logging.getLogger("softphone.media")


class EchoCanceller:
    """One call's echo canceller: ``far`` with every frame sent to the speaker, ``near`` with
    every frame from the microphone (returns it cleaned); both at the call's rate. At a rate
    the module does not take, frames pass untouched (and it says so once)."""

    def __init__(self, noise_suppression: bool = True) -> None:
        from livekit import rtc  # loaded with the sound card only: a large library

        self._rtc = rtc
        self._module = rtc.AudioProcessingModule(echo_cancellation=True,
                                                 noise_suppression=noise_suppression,
                                                 high_pass_filter=True)
        self._warned = False

    def _usable(self, frame: Samples, rate: int) -> bool:
        if rate in RATES and len(frame) % (rate // 100) == 0:
            return True
        if not self._warned:
            log.warning("no echo cancellation for %d-sample frames at %d Hz (it takes 10 ms "
                        "pieces at %s)", len(frame), rate, RATES)
            self._warned = True
        return False

    def set_delay(self, milliseconds: float) -> None:
        """The delay from the speaker's frame to its echo in the microphone's, as far as the
        buffers tell (a hint: AEC3 finds the echo's delay itself); WebRTC takes 0-500 ms."""
        self._module.set_stream_delay_ms(int(max(0.0, min(MAX_DELAY_MS, milliseconds))))

    def far(self, frame: Samples, rate: int) -> None:
        if self._usable(frame, rate):
            for piece in self._pieces(frame, rate):
                self._module.process_reverse_stream(piece)

    def near(self, frame: Samples, rate: int) -> Samples:
        if not self._usable(frame, rate):
            return frame
        cleaned: list[Samples] = []
        for piece in self._pieces(frame, rate):
            self._module.process_stream(piece)  # in place
            cleaned.append(np.frombuffer(piece.data, dtype=np.int16).copy())
        return np.concatenate(cleaned)

    def _pieces(self, frame: Samples, rate: int) -> list[Any]:
        """The frame as 10 ms AudioFrames (a call's 20 ms frame is two)."""
        size = rate // 100
        data = np.ascontiguousarray(frame, dtype=np.int16)
        return [self._rtc.AudioFrame(data[start:start + size].tobytes(), rate, 1, size)
                for start in range(0, len(data) - size + 1, size)]
