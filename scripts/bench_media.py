"""Media benchmark.

1. Codec cost: microseconds to encode and decode one 20 ms frame, per codec.
2. Capacity: how many concurrent two-way streams (tone in, discard out, over loopback RTP)
   one process carries while the shared pacing clock's p99 lateness stays under 1 ms, with
   CPU time per stream; for PCMU and Opus.
Baseline, same run: a bare asyncio UDP echo loop (round trips per second).
Aims (issue 4): 500 G.711 streams per core on the default loop (1,000 with uvloop), 100 Opus.
The search doubles the stream count while at least 90% of the packets still arrive, and says
how many streams stayed within the 1 ms p99 pacing aim.

    .venv/bin/python scripts/bench_media.py [--seconds S] [--max-streams N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from bench_signalling import Echo  # the same bare UDP echo both baselines use

from softphone.media.clock import MediaClock
from softphone.media.codecs import make_codec
from softphone.media.ports import Discard, Tone
from softphone.media.stream import MediaStream
from softphone.sdp.negotiation import CODECS, NegotiatedMedia
from softphone.transport.rtp import RtpEndpoint

PAYLOAD_TYPES = {"pcmu": 0, "pcma": 8, "opus": 111}
DTMF_PAYLOAD_TYPE = 101


def codec_costs(frames: int = 2000) -> None:
    for key in ("pcmu", "pcma", "g722", "opus"):
        codec = make_codec(key)
        rate = CODECS[key].audio_rate
        # noise, not a tone: G.711 remembers the payloads of frames it has seen (a tone's
        # repeat every second), and this figure is the cost of a frame never seen before
        noise = np.random.default_rng(1).integers(-8000, 8000, rate // 50 * frames)
        tone = noise.astype(np.int16).reshape(frames, -1)
        start = time.perf_counter()
        payloads = [codec.encode(frame) for frame in tone]
        encode = (time.perf_counter() - start) / frames
        start = time.perf_counter()
        for payload in payloads:
            codec.decode(payload)
        decode = (time.perf_counter() - start) / frames
        print(f"{key:>5}: encode {encode * 1e6:7.1f} us/frame, decode {decode * 1e6:7.1f} "
              f"us/frame ({(encode + decode) / 0.02 * 100:.2f}% of one core per two-way stream)")


class Pinger(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.sendto(b"x" * 172)  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.count += 1
        self.transport.sendto(data)  # type: ignore[attr-defined]


async def echo_baseline(seconds: float = 2.0) -> float:
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    client, pinger = await loop.create_datagram_endpoint(
        Pinger, remote_addr=("127.0.0.1", port))
    await asyncio.sleep(seconds)
    client.close()
    server.close()
    return pinger.count / seconds


async def stream_pair(key: str) -> tuple[MediaStream, MediaStream, RtpEndpoint, RtpEndpoint]:
    a, b = RtpEndpoint(), RtpEndpoint()
    await a.open("127.0.0.1")
    await b.open("127.0.0.1")
    codec = CODECS[key]

    def media(port: int) -> NegotiatedMedia:
        return NegotiatedMedia(codec, PAYLOAD_TYPES[key], "127.0.0.1", port,
                               DTMF_PAYLOAD_TYPE, "sendrecv")

    return (MediaStream(a, media(b.port), Tone(440), Discard()),
            MediaStream(b, media(a.port), Tone(660), Discard()), a, b)


async def capacity(key: str, streams: int, seconds: float
                   ) -> tuple[float, float, float, int]:
    """(p50 and p99 pacing error in ms, CPU ms per stream-second, packets received) for
    ``streams`` two-way streams (each pair is two streams)."""
    clock = MediaClock(asyncio.get_running_loop())
    pairs = [await stream_pair(key) for _ in range(streams // 2)]
    for first, second, _, _ in pairs:
        first.clock = second.clock = clock
        first.start()
        second.start()
    await asyncio.sleep(0.5)  # warm-up
    clock.lateness.clear()
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    lateness = np.abs(np.array(clock.lateness)) * 1e3
    received = sum(s.stats.received for pair in pairs for s in pair[:2])
    for first, second, a, b in pairs:
        first.stop()
        second.stop()
        a.close()
        b.close()
    p50 = float(np.percentile(lateness, 50)) if len(lateness) else 0.0
    p99 = float(np.percentile(lateness, 99)) if len(lateness) else 0.0
    return p50, p99, cpu * 1e3 / (streams * seconds), received


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-streams", type=int, default=1200)
    args = parser.parse_args()
    baseline = await echo_baseline()
    print(f"baseline: bare asyncio UDP echo, {baseline:,.0f} round trips/s "
          f"({type(asyncio.get_running_loop()).__module__})")
    codec_costs()
    for key, start in (("pcmu", 50), ("opus", 10)):
        streams, within_aim, carried = start, 0, 0
        while streams <= args.max_streams:
            p50, p99, cpu_ms, received = await capacity(key, streams, args.seconds)
            expected = streams * 50 * (args.seconds + 0.5)
            delivered = received / expected
            print(f"{key:>5} x {streams:5d} streams: pacing error p50 {p50:5.2f} ms, "
                  f"p99 {p99:5.2f} ms, CPU {cpu_ms:5.2f} ms per stream-second, "
                  f"{delivered:6.1%} of packets delivered")
            if delivered < 0.9:
                break
            carried = streams
            within_aim = streams if p99 < 1.0 else within_aim
            streams *= 2
        print(f"{key:>5}: carried {carried} streams (>= 90% delivered); "
              f"{within_aim} with p99 pacing error < 1 ms")


if __name__ == "__main__":
    from softphone.loop import loop_name, run

    print(f"event loop: {loop_name()} (SOFTPHONE_LOOP=asyncio for the default one)")
    run(main())
