"""``softphone devices``: the sound devices PortAudio sees, defaults marked."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from softphone.cli.common import device_choice
from softphone.media.device import NoSoundDevice, SoundDevice, default_devices, list_devices
from softphone.media.ports import Tone
from softphone.media.quality import level_dbfs

TEST_RATE = 48000
TEST_TONE_HZ = 440.0
FRAME = TEST_RATE // 50  # 20 ms
REPORT_EVERY = 10  # frames: a mic level every 200 ms


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per device.")
@click.option("--test", "run_test", is_flag=True,
              help="Play a 440 Hz tone on the speaker and show the microphone's level.")
@click.option("--latency", "measure_latency", is_flag=True,
              help="Measure the round trip of clicks from the speaker back into the "
                   "microphone (hold them together, or loop the output back), softphone's "
                   "own buffering in it, and the time to first audio.")
@click.option("--seconds", type=click.FloatRange(0.2, 600), default=5.0, show_default=True,
              help="How long --test or --latency runs.")
@click.option("--device", metavar="NAME|INDEX", help="With --test: the device to try.")
@click.option("--capture-device", metavar="NAME|INDEX", help="With --test: the microphone's.")
@click.option("--playback-device", metavar="NAME|INDEX", help="With --test: the speaker's.")
def devices_command(as_json: bool, run_test: bool, measure_latency: bool, seconds: float,
                    device: str | None, capture_device: str | None,
                    playback_device: str | None) -> None:
    """List sound devices (index, name, input/output channels, default rate), or with
    --test check them: a tone out of the speaker, the microphone's level shown as it goes.

    \b
    Example:
      softphone devices
      softphone devices --test --seconds 3
      softphone devices --latency --json
      softphone call sip:bob@127.0.0.1:5062 --device 3
    """
    chosen = [device_choice(d) for d in (device, capture_device, playback_device)]
    if run_test:
        raise SystemExit(_test_devices(seconds, as_json, *chosen))
    if measure_latency:
        raise SystemExit(_measure_latency(seconds, as_json, *chosen))
    devices = list_devices()
    default_in, default_out = default_devices()
    if as_json:
        for index, found in enumerate(devices):
            click.echo(json.dumps({
                "index": index, "name": found["name"],
                "inputs": found["max_input_channels"], "outputs": found["max_output_channels"],
                "rate": found["default_samplerate"], "default_input": index == default_in,
                "default_output": index == default_out}))
        return
    if not devices:
        click.echo("no sound devices (use --play/--record or --null-audio for calls)")
        return
    table = Table("", "index", "name", "in", "out", "rate")
    for index, found in enumerate(devices):
        marks = ("<" if index == default_in else "") + (">" if index == default_out else "")
        table.add_row(marks, str(index), str(found["name"]),
                      str(found["max_input_channels"]), str(found["max_output_channels"]),
                      f"{found['default_samplerate']:.0f}")
    Console().print(table)
    click.echo("< default input, > default output")


def _exchange(seconds: float, device: str | int | None, capture: str | int | None,
              playback: str | int | None, outgoing: Callable[[int], np.ndarray],
              each: Callable[[int, np.ndarray, SoundDevice], None]) -> SoundDevice | None:
    """Frames to the speaker and from the microphone at their real pace for ``seconds``:
    ``outgoing(number)`` is written, ``each(number, heard, card)`` sees what came back. The
    card, closed, when done; None (said on stderr) when no device could be opened."""
    if not list_devices():
        click.echo("softphone: error: no sound devices: PortAudio sees none", err=True)
        return None
    card = SoundDevice(device, capture_device=capture, playback_device=playback)
    deadline = time.monotonic()
    try:
        for number in range(1, int(seconds * 50) + 1):
            card.write(outgoing(number), TEST_RATE)
            each(number, card.read(FRAME, TEST_RATE), card)
            deadline += FRAME / TEST_RATE
            time.sleep(max(0.0, deadline - time.monotonic()))
    except NoSoundDevice as error:
        click.echo(f"softphone: error: {error}", err=True)
        return None
    finally:
        card.close()
    return card


def _test_devices(seconds: float, as_json: bool, device: str | int | None,
                  capture: str | int | None, playback: str | int | None) -> int:
    """Play the tone and read the microphone for ``seconds``, a level line every 200 ms;
    exit status 0, or 2 when the devices cannot be opened."""
    tone = Tone(TEST_TONE_HZ, level_dbfs=-12)
    heard: list[np.ndarray] = []
    levels: list[float] = []
    started = time.monotonic()

    def show(number: int, frame: np.ndarray, card: SoundDevice) -> None:
        heard.append(frame)
        if number % REPORT_EVERY == 0:
            levels.append(level_dbfs(np.concatenate(heard[-REPORT_EVERY:])))
            _show_level(time.monotonic() - started, levels[-1], as_json)

    if _exchange(seconds, device, capture, playback, lambda _: tone.read(FRAME, TEST_RATE),
                 show) is None:
        return 2
    peak = max(levels, default=-96.0)
    if as_json:
        click.echo(json.dumps({"event": "device_test", "tone_hz": TEST_TONE_HZ,
                               "seconds": seconds, "mic_peak_dbfs": round(peak, 1)}))
    else:
        verdict = "the microphone hears something" if peak > -60 else \
            "the microphone is silent (muted, or not the device you speak into?)"
        click.echo(f"played {TEST_TONE_HZ:.0f} Hz for {seconds:g} s; microphone peak "
                   f"{peak:.1f} dBFS: {verdict}")
    return 0


def _show_level(at: float, level: float, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"event": "mic_level", "seconds": round(at, 2),
                               "dbfs": round(level, 1)}))
        return
    filled = max(0, min(30, int((level + 60) / 2)))
    click.echo(f"{at:5.1f} s  mic {level:6.1f} dBFS  {'#' * filled}{'.' * (30 - filled)}")


CLICK_EVERY = 25  # frames: a click every half second
CLICK_LEVEL = 16000


def _measure_latency(seconds: float, as_json: bool, device: str | int | None,
                     capture: str | int | None, playback: str | int | None) -> int:
    """Clicks out of the speaker every half second, found again in what the microphone
    brings back: the round trip, softphone's own part of it (what its two rings held), both
    medians over the second half, and how long the device took to deliver its first audio."""
    clicks: list[int] = []  # the sample each click was written at
    heard: list[np.ndarray] = []
    held: list[int] = []

    def outgoing(number: int) -> np.ndarray:
        frame = np.zeros(FRAME, dtype=np.int16)
        if number % CLICK_EVERY == 0:
            frame[: FRAME // 4] = CLICK_LEVEL  # a 5 ms pulse
            clicks.append((number - 1) * FRAME)
        return frame

    def note(number: int, frame: np.ndarray, card: SoundDevice) -> None:
        heard.append(frame)
        assert card.capture is not None and card.playback is not None
        held.append(card.capture.available + card.playback.available)

    opened = time.monotonic()
    card = _exchange(seconds, device, capture, playback, outgoing, note)
    if card is None:
        return 2
    first = card.first_audio()
    audio = np.concatenate(heard)
    trips = _round_trips(clicks, audio)
    # Both figures once settled, over the same second half: a late-starting device's
    # backlog is dropped within seconds, and the rings fill up to their targets meanwhile,
    # so a round trip from the first half can be shorter than what the rings hold later.
    settled_from = len(held) // 2 * FRAME
    settled = _round_trips([at for at in clicks if at >= settled_from], audio) or trips
    result = {"event": "device_latency", "clicks": len(clicks), "found": len(trips),
              "round_trip_ms": round(float(np.median(settled)), 1) if settled else None,
              "softphone_ms": round(float(np.median(held[len(held) // 2:])) * 1000
                                    / (card.rate or TEST_RATE), 1),  # (rings: card's rate)
              "first_audio_ms": round((first - opened) * 1000, 1) if first else None}
    if as_json:
        click.echo(json.dumps(result))
    elif trips:
        click.echo(f"round trip {result['round_trip_ms']} ms (median of {len(trips)} of "
                   f"{len(clicks)} clicks), of which softphone's buffers "
                   f"{result['softphone_ms']} ms; first audio "
                   f"{result['first_audio_ms']} ms after opening")
    else:
        click.echo(f"none of {len(clicks)} clicks came back: is the microphone near the "
                   "speaker (or the output looped back)?")
    return 0


def _round_trips(clicks: list[int], heard: np.ndarray) -> list[float]:
    """Milliseconds from each click to the next loud onset in what the microphone heard
    (before the following click)."""
    loud = np.flatnonzero(np.abs(heard.astype(np.int32)) > CLICK_LEVEL // 8)
    trips: list[float] = []
    for index, at in enumerate(clicks):
        until = clicks[index + 1] if index + 1 < len(clicks) else len(heard)
        onset = loud[(loud >= at) & (loud < until)]
        if len(onset):
            trips.append((int(onset[0]) - at) * 1000 / TEST_RATE)
    return trips
