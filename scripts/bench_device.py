#!/usr/bin/env python3
"""The sound-card path's figures (issue 15), each against a baseline measured in the same run,
on a virtual card (softphone.media.virtual_card) so that they do not depend on the machine:

- drift: a device 300 ppm fast and slow for ten minutes, the rings' spread with the drift
  steering against without it;
- latency: a click through each direction, with the steering against the bare ring (the
  baseline: a block's worth, what any ring between two block clocks holds, and the call's
  rate converted to the card's 48 kHz), per call rate;
- echo: the far end's speech through a simulated room (40 ms, -6 dB, a reflection): the echo
  return loss enhancement (ERLE: the echo's power without cancellation over what is left
  with it), the near end's level while both talk, and the canceller's CPU per 20 ms frame as
  a share of the frame's own time;
- a real device, when PulseAudio is installed: a private server whose speaker is looped into
  its microphone (as tests/e2e/test_device.py sets it up), `softphone devices --latency`'s
  time to first audio, round trip and softphone's buffers, against the server's own time to
  deliver a recording client's first audio (parec), medians of three after a warm-up.

    .venv/bin/python scripts/bench_device.py
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from softphone.media.virtual_card import click_delay, run_drift, run_room, stand_in_sounddevice
from softphone.media.wav import load_wav

ROOT = Path(__file__).parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"


def power(samples: np.ndarray) -> float:
    return float(np.mean(samples.astype(np.float64) ** 2)) + 1e-9


def drift() -> None:
    print("drift, 10 minutes, rings' range over the second half (ms):")
    for ppm in (300, -300):
        for steered in (True, False):
            run = run_drift(ppm, 600, compensate=steered)
            print(f"  {ppm:+d} ppm {'steered' if steered else 'bare   '}: capture "
                  f"{run.capture_ms[0]:5.1f}-{run.capture_ms[1]:5.1f}, playback "
                  f"{run.playback_ms[0]:5.1f}-{run.playback_ms[1]:5.1f}, underruns "
                  f"{run.capture_underruns}/{run.playback_underruns}, correction "
                  f"{run.correction_ppm[0]:+.0f}/{run.correction_ppm[1]:+.0f} ppm")


def latency() -> None:
    print("latency added by softphone's side of the card, a click each way (ms):")
    for rate in (8000, 16000, 48000):
        steered = click_delay("capture", rate=rate) + click_delay("playback", rate=rate)
        bare = click_delay("capture", False, rate) + click_delay("playback", False, rate)
        print(f"  {rate:5d} Hz call, 48 kHz card: steered {steered:5.1f}, bare ring and rate "
              f"conversion {bare:5.1f}, added by the steering {steered - bare:5.1f} "
              f"(aim: under 60 in all)")


def echo() -> None:
    far, _ = load_wav(SPEECH / "far.wav")
    near_voice, _ = load_wav(SPEECH / "near.wav")
    silent = np.zeros(len(far))
    _, bare = run_room(far, silent, cancel=False)
    started = time.perf_counter()
    _, cancelled = run_room(far, silent, cancel=True)
    with_canceller = time.perf_counter() - started
    started = time.perf_counter()
    run_room(far, silent, cancel=False)
    without = time.perf_counter() - started
    settled = slice(len(far) // 3, len(bare))
    erle = 10 * np.log10(power(bare[settled]) / power(cancelled[settled]))
    near = np.zeros(len(far))
    start = len(far) // 2
    near[start:start + len(near_voice)] = near_voice[: len(far) - start]
    _, both = run_room(far, near, cancel=True)
    talking = slice(start, min(len(far), start + len(near_voice)) - 320)
    kept = 10 * np.log10(power(both[talking]) / power(near[talking]))
    frames = len(far) // 320
    share = (with_canceller - without) / frames / 0.02
    print(f"echo: ERLE {erle:.1f} dB (aim: 25 or more); near end while both talk {kept:+.1f} dB;"
          f" canceller CPU {share:.1%} of each frame's 20 ms")


def real_device() -> None:
    if shutil.which("pulseaudio") is None:
        print("real device: skipped (no pulseaudio; scripts/setup --test installs it)")
        return
    sys.path.insert(0, str(ROOT))
    from tests.peers import loop_speaker_into_microphone, pulseaudio

    with tempfile.TemporaryDirectory() as folder, pulseaudio(Path(folder)) as env:
        loop_speaker_into_microphone(env)
        _server_first_audio(env)  # the null sinks' first render waits up to 2 s: warm up
        _devices_latency(env)
        server = [_server_first_audio(env) for _ in range(3)]
        runs = [_devices_latency(env) for _ in range(3)]
    first = statistics.median(r["first_audio_ms"] for r in runs)
    print(f"real device (private PulseAudio through ALSA's pulse plugin, speaker looped into "
          f"the microphone):\n  first audio {first:.0f} ms after opening (aim: under 200), "
          f"the server's own {statistics.median(server):.0f} ms (parec), "
          f"ratio {first / max(1.0, statistics.median(server)):.1f}\n"
          f"  round trip {statistics.median(r['round_trip_ms'] for r in runs):.0f} ms, of "
          f"which softphone's buffers "
          f"{statistics.median(r['softphone_ms'] for r in runs):.0f} ms")


def _server_first_audio(env: dict[str, str]) -> float:
    """Milliseconds until a native PulseAudio client's recording gives its first bytes."""
    started = time.monotonic()
    recording = subprocess.Popen(["parec", "-d", "mic.monitor", "--latency-msec=20"],
                                 env=env, stdout=subprocess.PIPE)
    assert recording.stdout is not None
    recording.stdout.read(2)
    took = (time.monotonic() - started) * 1000
    recording.kill()
    recording.wait()
    recording.stdout.close()
    return took


def _devices_latency(env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-m", "softphone", "devices", "--latency",
                             "--seconds", "3", "--json"], env=env, capture_output=True,
                            text=True, check=True)
    measured: dict[str, float] = json.loads(result.stdout)
    return measured


def main() -> None:
    real_device()  # (before the stand-in replaces sounddevice in this process)
    sys.modules["sounddevice"] = stand_in_sounddevice()
    drift()
    latency()
    echo()


if __name__ == "__main__":
    main()
