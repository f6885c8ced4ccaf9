"""Single keys from the terminal, without Enter, for the live view.

The terminal is put in cbreak mode only while the view runs and is restored on every exit
path. Keys arrive through the event loop's reader on stdin: no thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def keys(handler: Callable[[str], None]) -> Iterator[bool]:
    """Feed each key pressed to ``handler``; yields False (and does nothing) without a TTY."""
    if not sys.stdin.isatty():
        yield False
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        data = os.read(fd, 32)
        for char in data.decode("utf-8", "ignore"):
            handler(char)

    try:
        tty.setcbreak(fd)
        loop.add_reader(fd, readable)
        yield True
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
