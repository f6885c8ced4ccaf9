"""Signalling benchmark: complete INVITE/200/ACK/BYE/200 calls between two agents over
loopback UDP, with both agents in one process, then with the callee in a second process.

Prints calls per second, set-up latency (INVITE sent -> 200 OK received) p50/p99, and the same
run's baseline: a raw asyncio UDP request/response round trip of an INVITE-sized datagram.
Aims (issue 3): p50 set-up under 2 ms, at least 1,000 complete calls per second per core.

    .venv/bin/python scripts/bench_signalling.py [--calls N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from softphone.ua.agent import AgentConfig, UserAgent

PAYLOAD = b"x" * 900  # about an INVITE with SDP


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def baseline(rounds: int) -> list[float]:
    """Round-trip times of a raw UDP request/response on the same loop."""
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    client_transport, client = await loop.create_datagram_endpoint(
        Client, remote_addr=("127.0.0.1", port))
    times = []
    for _ in range(rounds):
        client.waiter = loop.create_future()
        start = time.perf_counter()
        client_transport.sendto(PAYLOAD)
        await client.waiter
        times.append(time.perf_counter() - start)
    client_transport.close()
    server.close()
    return times


async def auto_answer(agent: UserAgent) -> None:
    while True:
        call = await agent.incoming.get()
        await call.answer()


async def run_calls(alice: UserAgent, target: str, calls: int, concurrency: int
                    ) -> tuple[float, list[float], int]:
    """Complete ``calls`` calls, ``concurrency`` at a time; (seconds, set-up times, failed)."""
    setups: list[float] = []
    failed = 0
    remaining = iter(range(calls))

    async def worker() -> None:
        nonlocal failed
        for _ in remaining:
            start = time.perf_counter()
            call = await alice.call(target)
            if not await call.answered:
                failed += 1
                continue
            setups.append(time.perf_counter() - start)
            await call.hangup()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, setups, failed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, seconds: float, setups: list[float], failed: int, rtt: float) -> None:
    calls = len(setups)
    p50, p99 = percentile(setups, 0.5), percentile(setups, 0.99)
    print(f"{label}: {calls} calls in {seconds:.2f} s = {calls / seconds:,.0f} calls/s, "
          f"failed {failed}; set-up p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms "
          f"(p50 = {p50 / rtt:.1f}x the raw round trip)")


def quiet_config() -> AgentConfig:
    """Signalling only: SDP is still negotiated, but no RTP flows (bench_media measures it)."""
    return AgentConfig(listen_host="127.0.0.1", listen_port=0, codecs=("pcmu",), media=False)


async def one_process(calls: int, concurrency: int, rtt: float) -> None:
    async with UserAgent(quiet_config()) as alice, UserAgent(quiet_config()) as bob:
        answering = asyncio.ensure_future(auto_answer(bob))
        target = f"sip:bob@127.0.0.1:{bob.port}"
        await run_calls(alice, target, 20, 1)  # warm-up
        seconds, setups, failed = await run_calls(alice, target, calls, 1)
        report("one process, sequential ", seconds, setups, failed, rtt)
        seconds, setups, failed = await run_calls(alice, target, calls, concurrency)
        report(f"one process, {concurrency:3d} at once", seconds, setups, failed, rtt)
        answering.cancel()


async def two_processes(calls: int, concurrency: int, rtt: float) -> None:
    callee = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "softphone", "answer", "--null-audio", "--no-media",
        "--listen", "127.0.0.1:0", "--auto-answer", "--json", stdout=subprocess.PIPE)
    assert callee.stdout is not None
    port = json.loads(await callee.stdout.readline())["port"]
    drain = asyncio.ensure_future(callee.stdout.read())
    try:
        async with UserAgent(quiet_config()) as alice:
            target = f"sip:bob@127.0.0.1:{port}"
            await run_calls(alice, target, 20, 1)
            seconds, setups, failed = await run_calls(alice, target, calls, 1)
            report("two processes, sequential", seconds, setups, failed, rtt)
            seconds, setups, failed = await run_calls(alice, target, calls, concurrency)
            report(f"two processes, {concurrency:3d} at once", seconds, setups, failed, rtt)
    finally:
        callee.terminate()
        await callee.wait()
        drain.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    times = await baseline(2000)
    rtt = statistics.median(times)
    print(f"baseline raw UDP round trip: p50 {rtt * 1e6:.0f} us, "
          f"p99 {percentile(times, 0.99) * 1e6:.0f} us")
    await one_process(args.calls, args.concurrency, rtt)
    await two_processes(args.calls, args.concurrency, rtt)
    print("aims: set-up p50 < 2 ms; >= 1,000 complete calls/s per core (2 cores here; "
          "the two-process figures use both)")


if __name__ == "__main__":
    from softphone.loop import loop_name, run

    print(f"event loop: {loop_name()} (SOFTPHONE_LOOP=asyncio for the default one)")
    run(main())
