"""RTCP compound packets and report blocks."""

from __future__ import annotations

import pytest

from softphone.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    serialise,
)
from softphone.rtp.stats import ReceiverStats


def test_compound_round_trip() -> None:
    block = ReportBlock(ssrc=7, fraction_lost=64, cumulative_lost=-3, highest_sequence=70000,
                        jitter=12, last_sr=0x1234, delay_since_last_sr=65536)
    packets = [SenderReport(1, ntp_timestamp(1_700_000_000.5), 160, 50, 8000, [block]),
               SourceDescription(1, "softphone-abc"), Goodbye([1], "done")]
    data = serialise(packets)
    assert len(data) % 4 == 0 and data[1] == 200
    assert parse_compound(data) == packets
    assert parse_compound(serialise([ReceiverReport(9)])) == [ReceiverReport(9, [])]


def test_ntp_fixed_point() -> None:
    ntp = ntp_timestamp(0.5)
    assert ntp >> 32 == 2208988800 and (ntp & 0xFFFFFFFF) == 1 << 31
    assert ntp_middle(ntp) == ((2208988800 & 0xFFFF) << 16) | 0x8000


@pytest.mark.parametrize("data", [b"\x80\xc8", b"\x40\xc9\x00\x01\0\0\0\0",
                                  b"\x80\xc9\x00\x05\0\0\0\0", b"\x80\xcc\x00\x00"])
def test_bad_compounds(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_compound(data)


def test_report_block_loss_fraction_is_per_interval() -> None:
    stats = ReceiverStats(clock_rate=8000)
    for sequence in range(0, 100, 2):  # every other packet lost
        stats.update(sequence, sequence * 160, sequence * 0.02)
    first = stats.report_block(ssrc=5)
    assert first.fraction_lost == 126 and first.cumulative_lost == 49  # 49 of 99: 49*256//99
    for sequence in range(99, 200):  # none lost
        stats.update(sequence, sequence * 160, sequence * 0.02)
    second = stats.report_block(ssrc=5)
    assert second.fraction_lost == 0 and second.highest_sequence == 199
