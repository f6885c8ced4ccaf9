"""Per-packet Python benchmark: what a G.711 stream's tick and its peer's receive cost,
without sockets, against the Python floor in the same run.

bench_media.py counts the streams one process carries over real sockets; a shared VM's
neighbours move that count by +-15% between runs, more than a change to the per-packet
Python can. This benchmark times that Python alone, so such a change can be measured:
pairs of streams hand each other their packets directly (the endpoint's ``sendto`` is
replaced by a function that keeps the packet; the peer's receive is called with it), each
stream ticking and receiving once a round, in two layouts:

- in cache: one pair, round after round (the code's own cost);
- spread: many pairs ticked in turn, as the media clock ticks a load test's streams, so
  each stream's objects have left the CPU's nearer caches by its next turn (what the same
  code costs in a loaded process, where a kernel's network path also runs between two
  streams' callbacks).

Baselines, same run and harness: "hand-over", the harness alone (keep the packet, count
it); the "Python floor" of bench_media.py (pack a header with its counters; on arrival
unpack it and keep RFC 3550's statistics). Figures: microseconds per stream-tick (one
packet sent and one received), best of --repeat timings, and each less the hand-over, as
a ratio against the floor's.

    .venv/bin/python scripts/bench_packet.py [--pairs N] [--rounds N] [--repeat N]

The timings still move with the VM (the spread layout most, the caches being shared);
cachegrind's counts do not. ``--only KIND`` runs one side's spread layout untimed, with
the collector off, for valgrind: the difference between two runs of 2 and 32 rounds,
divided by 30 x 2 x pairs, is the instructions and simulated cache misses (D1 64 KB; the
"last level" set to this machine's 1 MB L2, so its misses are what reaches the L3) of one
stream-tick:

    valgrind --tool=cachegrind --cache-sim=yes --D1=65536,8,64 --LL=1048576,8,64 \
        .venv/bin/python scripts/bench_packet.py --only stream --rounds 2   # then 32
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable

from softphone.media.clock import MediaClock
from softphone.media.ports import Discard, Tone
from softphone.media.stream import MediaStream
from softphone.rtp.packet import RTP_HEADER
from softphone.rtp.stats import ReceiverStats
from softphone.sdp.negotiation import CODECS, NegotiatedMedia
from softphone.transport.rtp import RtpEndpoint

Tick = Callable[[float], None]
Receive = Callable[[bytes, tuple[str, int]], None]
_FLOOR_PAYLOAD = bytes(160)


class Mailbox:
    """Where a stream's packet waits for its peer: the harness's ``sendto``."""

    __slots__ = ("packet",)

    def __init__(self) -> None:
        self.packet = b""

    def keep(self, data: bytes, destination: tuple[str, int]) -> None:
        self.packet = data


class HandOver:
    """The harness alone: a send that only keeps its packet, a receive that counts it."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.send = mailbox.keep
        self.received = 0

    def tick(self, now: float) -> None:
        self.send(_FLOOR_PAYLOAD, ("127.0.0.1", 5004))

    def receive(self, data: bytes, source: tuple[str, int]) -> None:
        self.received += 1


class Floor(HandOver):
    """bench_media.py's Python floor, with the same harness."""

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(mailbox)
        self.stats = ReceiverStats(8000)
        self.sequence = self.timestamp = 0

    def tick(self, now: float) -> None:
        self.send(RTP_HEADER.pack(0x80, 0, self.sequence, self.timestamp, 1) + _FLOOR_PAYLOAD,
                  ("127.0.0.1", 5004))
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + 160) & 0xFFFFFFFF

    def receive(self, data: bytes, source: tuple[str, int]) -> None:
        _, _, sequence, timestamp, _ = RTP_HEADER.unpack_from(data)
        self.stats.update(sequence, timestamp, time.monotonic())
        self.received += 1


class Stream:
    """A real MediaStream (G.711, a tone sent, what arrives discarded), its endpoint's
    ``sendto`` the harness's, its arrivals handed to its handler as an IPv4 socket's are,
    and the clock never started."""

    def __init__(self, mailbox: Mailbox, clock: MediaClock) -> None:
        endpoint = RtpEndpoint()
        host = "".join(("127.0.0.", "1"))  # a string of its own, as each call's SDP gives
        media = NegotiatedMedia(CODECS["pcmu"], 0, host, 5004, 101, "sendrecv")
        self.stream = MediaStream(endpoint, media, Tone(440), Discard(), clock=clock)
        self.stream.start()  # sends its first packet, as a call's stream does
        clock.remove(self.stream)  # the harness ticks it
        endpoint.sendto = mailbox.keep
        self.tick: Tick = self.stream.tick
        # what the transport calls for each datagram on IPv4: the stream's handler itself
        handler = endpoint.handler
        assert handler is not None
        self.receive: Receive = handler


Side = HandOver | Stream
Pair = tuple[Tick, Receive, Mailbox, Tick, Receive, Mailbox]
Maker = Callable[[Mailbox, MediaClock], Side]


def pairs_of(make: Maker, count: int, clock: MediaClock) -> list[Pair]:
    """Each pair as the harness calls it: the first side's tick, the second's receive, the
    first's mailbox, and the same the other way (bound methods made once, not per call)."""
    made: list[Pair] = []
    for _ in range(count):
        first_box, second_box = Mailbox(), Mailbox()
        first, second = make(first_box, clock), make(second_box, clock)
        made.append((first.tick, second.receive, first_box, second.tick, first.receive,
                     second_box))
    return made


def per_stream_tick(make: Maker, pairs: int, rounds: int, repeat: int,
                    clock: MediaClock) -> float:
    """Microseconds per stream-tick: each stream ticks, and its packet is received by its
    peer, ``rounds`` times; the best of ``repeat`` timings. The ticks' clock is virtual,
    20 ms a round, so the chores every stream does now and then (RTCP, the jitter buffer's
    depth) come as often per tick as in a call."""
    made = pairs_of(make, pairs, clock)
    best, now = float("inf"), time.monotonic()
    for _ in range(repeat):
        start = time.perf_counter()
        now = run_rounds(made, rounds, now)
        best = min(best, time.perf_counter() - start)
    return best * 1e6 / (rounds * pairs * 2)


def run_rounds(made: list[Pair], rounds: int, now: float) -> float:
    """Tick every stream and hand its packet to its peer, ``rounds`` times from ``now``;
    the clock's time after them."""
    source_a, source_b = ("127.0.0.1", 5004), ("127.0.0.1", 5006)
    for _ in range(rounds):
        for tick_a, receive_b, box_a, tick_b, receive_a, box_b in made:
            tick_a(now)
            receive_b(box_a.packet, source_a)
            tick_b(now)
            receive_a(box_b.packet, source_b)
        now += 0.020
    return now


def untimed(make: Maker, pairs: int, rounds: int, clock: MediaClock) -> None:
    """The spread layout's rounds for cachegrind: three to warm up, then ``rounds``."""
    made = pairs_of(make, pairs, clock)
    gc.collect()
    gc.disable()  # a collection's cost is per object tracked, not per packet
    run_rounds(made, rounds, run_rounds(made, 3, time.monotonic()))


def make_hand_over(mailbox: Mailbox, clock: MediaClock) -> Side:
    return HandOver(mailbox)


def make_floor(mailbox: Mailbox, clock: MediaClock) -> Side:
    return Floor(mailbox)


def make_stream(mailbox: Mailbox, clock: MediaClock) -> Side:
    return Stream(mailbox, clock)


MAKERS: dict[str, Maker] = {"hand-over": make_hand_over, "floor": make_floor,
                            "stream": make_stream}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000,
                        help="stream pairs ticked in turn for the spread layout")
    parser.add_argument("--rounds", type=int, default=200,
                        help="stream-ticks per stream in one timing of the spread layout")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=sorted(MAKERS),
                        help="one side's spread layout, untimed (for cachegrind)")
    args = parser.parse_args()
    clock = MediaClock(asyncio.get_running_loop())
    if args.only:
        untimed(MAKERS[args.only], args.pairs, args.rounds, clock)
        return
    layouts = (("in cache", 1, args.rounds * args.pairs), ("spread", args.pairs, args.rounds))
    for name, pairs, rounds in layouts:
        figures = {label: per_stream_tick(make, pairs, rounds, args.repeat, clock)
                   for label, make in MAKERS.items()}
        harness = figures["hand-over"]
        floor, stream = figures["floor"] - harness, figures["stream"] - harness
        print(f"{name:>8} ({pairs} pair{'s' * (pairs > 1)}): hand-over {harness:.3f} us, "
              f"floor {figures['floor']:.3f} us, G.711 stream {figures['stream']:.3f} us a "
              f"stream-tick; less the hand-over: floor {floor:.3f} us, stream {stream:.3f} "
              f"us = {stream / floor:.2f} x the floor's")


if __name__ == "__main__":
    from softphone.loop import run

    run(main())
