"""A listening-quality estimate from RTP statistics: the E-model of ITU-T G.107 in the
simplified form VoIP monitors use (only delay and packet loss impair; echo, noise and
loudness at their defaults), mapped to a MOS of 1 to 4.5.

  R = 93.2 - Id - Ie_eff
  Id = 0.024 d + 0.11 (d - 177.3) when d > 177.3 ms   (d: one-way delay, mouth to ear)
  Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)            (Ppl: loss in percent, random loss)
  MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R)

Ie and Bpl per codec come from ITU-T G.113 Appendix I (G.711 with packet loss concealment:
Ie 0, Bpl 25.1). Wideband codecs are scored on this narrowband scale too, with G.711's
values: the figure is then a floor, comparable across calls, not their full quality.
The delay is half the RTCP round trip when known (else a LAN's 1 ms), plus twice the
measured jitter (what the jitter buffer holds back) and one packet time.
"""

from __future__ import annotations

IMPAIRMENTS = {  # codec key -> (Ie, Bpl), G.113 Appendix I
    "pcmu": (0.0, 25.1), "pcma": (0.0, 25.1), "g722": (0.0, 25.1), "opus": (0.0, 25.1),
}
R0 = 93.2  # the basic signal-to-noise ratio with G.107's default parameters


def r_factor(codec: str, loss_fraction: float, delay_ms: float) -> float:
    """G.107's transmission rating R for ``loss_fraction`` (0..1) and a one-way delay."""
    ie, bpl = IMPAIRMENTS.get(codec, (0.0, 25.1))
    ppl = 100.0 * max(0.0, min(1.0, loss_fraction))
    ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl)
    idd = 0.024 * delay_ms + (0.11 * (delay_ms - 177.3) if delay_ms > 177.3 else 0.0)
    return R0 - idd - ie_eff


def mos_from_r(r: float) -> float:
    """G.107 Annex B: R to the MOS a listening test would give (1 to 4.5)."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def estimate_mos(codec: str, received: int, lost: int, jitter_ms: float,
                 rtt_ms: float | None, ptime_ms: float = 20.0) -> float | None:
    """MOS of what we heard, or None when nothing was heard to judge."""
    if received + lost == 0:
        return None
    delay = (rtt_ms / 2 if rtt_ms is not None else 1.0) + 2 * jitter_ms + ptime_ms
    return round(mos_from_r(r_factor(codec, lost / (received + lost), delay)), 2)
