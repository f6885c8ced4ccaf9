"""What ``softphone --version`` reports: the package and every library it found, since a
bug report that says "Opus sounds wrong" needs the libopus version beside ours."""

from __future__ import annotations

import importlib.metadata
import platform

from softphone import __version__
from softphone.loop import loop_name


def _libopus() -> str:
    try:
        import opuslib.api.info
    except Exception:  # noqa: BLE001  (any loader error means: not found)
        return "not found (Opus is off; Debian package libopus0)"
    version: bytes = opuslib.api.info.get_version_string()
    return version.decode().removeprefix("libopus ")


def _portaudio() -> str:
    try:
        import sounddevice
    except Exception:  # noqa: BLE001
        return "not found (no sound card; Debian package libportaudio2)"
    text: str = sounddevice.get_portaudio_version()[1]
    return text.removeprefix("PortAudio ").split(",")[0]


def _libsndfile() -> str:
    try:
        import soundfile
    except Exception:  # noqa: BLE001
        return "not found (no WAV files; Debian package libsndfile1)"
    version: str = soundfile.__libsndfile_version__
    return version


def _uvloop() -> str:
    try:
        return importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (pip install 'softphone[fast]')"


def version_report() -> str:
    rows = [("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
            ("libopus", _libopus()), ("PortAudio", _portaudio()),
            ("libsndfile", _libsndfile()), ("uvloop", _uvloop()),
            ("event loop", loop_name())]
    return "\n".join([f"softphone {__version__}", *(f"  {name}: {value}" for name, value
                                                     in rows)])
