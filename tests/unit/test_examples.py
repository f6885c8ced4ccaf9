"""The examples that ship inside the package: listed, located, copied, run by name."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from softphone.bundled import copy_examples, examples, find_example
from softphone.cli.main import cli


def test_every_bundled_file_is_an_example_with_a_summary() -> None:
    found = examples()
    assert {"loopback", "pbx", "kamailio"} <= {e.name for e in found if e.kind == "profile"}
    assert {"busy", "basic_call", "prompt_heard"} <= {e.name for e in found
                                                      if e.kind == "scenario"}
    assert all(e.summary and e.path.is_file() for e in found)


def test_examples_lists_them_as_json_lines() -> None:
    result = CliRunner().invoke(cli, ["examples", "--json"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {"name": "busy", "kind": "scenario"}.items() <= next(
        r for r in rows if r["name"] == "busy").items()


def test_examples_path_names_the_installed_file() -> None:
    result = CliRunner().invoke(cli, ["examples", "--path", "loopback"])
    assert result.exit_code == 0
    assert Path(result.output.strip()) == find_example("loopback").path


def test_an_unknown_example_is_a_usage_error_listing_the_choices() -> None:
    result = CliRunner().invoke(cli, ["test", "--example", "nope"])
    assert result.exit_code == 2
    assert "no example 'nope'" in result.output and "busy" in result.output


def test_copy_keeps_what_is_already_there(tmp_path: Path) -> None:
    (tmp_path / "pbx.toml").write_text("# mine\n")
    copied, kept = copy_examples(tmp_path)
    assert tmp_path / "pbx.toml" in kept
    assert (tmp_path / "pbx.toml").read_text() == "# mine\n"
    assert tmp_path / "scenarios" / "prompt.wav" in copied
