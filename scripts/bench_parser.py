"""Parser benchmark: parses and serialises a typical INVITE with an SDP body.

Prints messages per second and microseconds per message for parse, serialise and both, with
the ratio against a baseline measured in the same run: ``bytes.split(b"\\r\\n")`` over the same
message, the least any parser has to do. Aim (issue 2): >= 20,000 parses per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from softphone.sip import parse

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 96 0 8 101\r\n"
    b"a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: softphone/0.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP)
) + SDP


def rate(action: Callable[[], object], seconds: float = 1.5) -> float:
    """Operations per second of ``action``, timed over about ``seconds``."""
    count, batch = 0, 200
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            action()
        count += batch
    return count / elapsed


def main() -> None:
    # Each message is parsed from fresh bytes: the header-view caches would otherwise make
    # repeated parses of one identical message look faster than real traffic.
    counter = iter(range(10**9))

    def fresh() -> bytes:
        return INVITE.replace(b"3848276298220188511", str(next(counter)).encode().rjust(19, b"0"))

    parsed = parse(INVITE)
    baseline = rate(lambda: fresh().split(b"\r\n"))
    results = {
        "parse": rate(lambda: parse(fresh())),
        "serialise": rate(lambda: bytes(parsed)),
        "parse+serialise": rate(lambda: bytes(parse(fresh()))),
    }
    print(f"message: INVITE with SDP, {len(INVITE)} bytes")
    print(f"{'baseline split':>16}: {baseline:12,.0f} msg/s {1e6 / baseline:8.2f} us/msg")
    for name, value in results.items():
        print(f"{name:>16}: {value:12,.0f} msg/s {1e6 / value:8.2f} us/msg "
              f"(baseline/this = {baseline / value:6.1f}x slower)")
    verdict = "meets" if results["parse"] >= 20_000 else "misses"
    print(f"aim >= 20,000 parses/s: {verdict} ({results['parse']:,.0f})")


if __name__ == "__main__":
    main()
