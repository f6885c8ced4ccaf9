"""Why a call went wrong, in one line: from how it ended (status, who ended it), its RTP and
RTCP figures and what its audio sounded like. It answers the first question of whoever reads
a failed test or a load row: auth, codec, timeout, no RTP, one-way audio (which way),
silence, clipping, loss, late media or poor quality. A call with nothing to say gets None.

The thresholds are those a VoIP engineer would flag: over 5% lost or late packets is audible,
over 1% of samples at full scale is audible clipping, a MOS under 3.1 is "many users
dissatisfied" in G.107's terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

SILENT_PEAK = 100  # -50 dBFS: a call whose loudest sample stays under this heard nothing
SILENT_FRAMES = 100  # ... over at least 2 s of 20 ms frames
MEDIA_SECONDS = 1.0  # an answered call shorter than this may end before RTP flows
CLIPPED_LEVEL = 32000  # this loud was clipped by someone's gain (G.711 tops out at 32124)
CLIPPED_SHARE = 0.01
LOSS_SHARE = 0.05
LATE_SHARE = 0.05
POOR_MOS = 3.1
REFUSED_AUTH = (401, 407)
CODEC_REFUSALS = (415, 488, 606)


@dataclass
class HeardAudio:
    """What a call's decoded audio sounded like: its peak and how much of it was clipped
    (kept as it is played; two comparisons a frame)."""

    frames: int = 0
    samples: int = 0
    peak: int = 0
    clipped: int = 0

    def add(self, frame: Samples) -> None:
        if not len(frame):
            return
        self.frames += 1
        self.samples += len(frame)
        peak = max(int(frame.max()), -int(frame.min()))
        self.peak = max(self.peak, peak)
        if peak >= CLIPPED_LEVEL:
            self.clipped += int(np.count_nonzero((frame >= CLIPPED_LEVEL)
                                                 | (frame <= -CLIPPED_LEVEL)))

    def to_json(self) -> dict[str, int]:
        return {"frames": self.frames, "peak": self.peak, "clipped": self.clipped}


@dataclass(frozen=True)
class CallFacts:
    """What a diagnosis looks at: how the call ended (``by``: local, remote or error),
    whether and how long it was answered, the media direction at the end (ours: a call on
    hold sends or hears nothing by design), its RTP figures (StreamStats.to_json) and audio."""

    status: int
    reason: str
    by: str
    answered: bool
    talked: float = 0.0
    direction: str = "sendrecv"
    rtp: dict[str, float | int | None] | None = None
    heard: HeardAudio | None = None
    had_credentials: bool = False


def diagnose(call: CallFacts) -> str | None:
    """The one-line diagnosis of a call, or None when nothing went wrong."""
    if not call.answered:
        return _unanswered(call.status, call.reason, call.by, call.had_credentials)
    if call.by == "error":
        return f"local failure after the answer: {call.reason}"
    if call.rtp is None or call.direction != "sendrecv" or call.talked < MEDIA_SECONDS:
        return None  # no media negotiated, on hold, or too short for RTP to tell anything
    return _media(call.rtp, call.heard)


def _unanswered(status: int, reason: str, by: str, had_credentials: bool) -> str | None:
    if status in REFUSED_AUTH:
        return (f"authentication failed: {status} {reason} (the credentials were refused)"
                if had_credentials else
                f"authentication required: {status} {reason} and no credentials given")
    if status in CODEC_REFUSALS:
        return f"codec mismatch: {status} {reason} (no codec in common, or SDP refused)"
    if status == 408:
        return f"timeout: {reason} (no answer, or no response to the INVITE)"
    if status == 487:
        return None  # cancelled: asked for, not a fault
    if by == "error":
        return f"local failure: {reason}"
    if status >= 300:
        return f"refused: {status} {reason}"
    return None


def _media(rtp: dict[str, float | int | None], heard: HeardAudio | None) -> str | None:
    sent, received = int(rtp.get("packets_sent") or 0), int(rtp.get("packets_received") or 0)
    lost, late = int(rtp.get("packets_lost") or 0), int(rtp.get("late") or 0)
    remote_loss = rtp.get("remote_loss")
    if not sent and not received:
        return "no RTP at all: neither side sent audio"
    if not received:
        return f"one-way audio: nothing heard from the far end (we sent {sent} packets)"
    if not sent:
        return f"one-way audio: we sent nothing (received {received} packets)"
    if remote_loss is not None and float(remote_loss) >= 0.99:
        return "one-way audio: the far end hears nothing of ours (its RTCP reports all lost)"
    if heard is not None and heard.frames >= SILENT_FRAMES and heard.peak < SILENT_PEAK:
        return f"silence: {received} RTP packets arrived but carried no sound"
    if heard is not None and heard.samples and heard.clipped / heard.samples > CLIPPED_SHARE:
        return f"clipped audio: {heard.clipped / heard.samples:.0%} of samples at full scale"
    if lost / (lost + received) > LOSS_SHARE:
        return f"packet loss: {lost / (lost + received):.0%} of the far end's packets lost"
    if late / received > LATE_SHARE:
        return (f"late media: {late / received:.0%} of packets came too late to play "
                f"(jitter {rtp.get('jitter_ms')} ms)")
    mos = rtp.get("mos")
    if mos is not None and float(mos) < POOR_MOS:
        return f"poor quality: MOS {mos}"
    return None
