"""Every `softphone ...` command line in the README parses against the real CLI, so the README
cannot drift from the options (the examples themselves mirror commands the suite runs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from softphone.cli.main import cli
from softphone.media.wav import WavSink
from tests.conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.split("#")[0].strip().rstrip("&").strip()
            for line in joined.splitlines() if line.strip().startswith("softphone ")]


def test_the_readme_has_examples_for_every_use() -> None:
    used = {shlex.split(line)[1] for line in readme_commands()}
    assert {"call", "answer", "register", "options", "test", "load"} <= used


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse (not run) the command: unknown options and bad values fail here."""
    monkeypatch.chdir(tmp_path)
    for name in ("prompt.wav", "reply.wav", "announcement.wav"):  # files the examples play
        WavSink(tmp_path / name).close()
    for name in ("cert.pem", "key.pem", "corp-ca.pem"):  # files the TLS examples read
        (tmp_path / name).write_text("")
    args: list[str] = []
    for token in shlex.split(line)[1:]:
        args += sorted(str(p) for p in REPO.glob(token)) if "*" in token else [token]
    command = cli.commands[args[0]]
    with command.make_context(args[0], args[1:]) as context:
        assert isinstance(context, click.Context)
