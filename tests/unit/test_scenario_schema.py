"""The published scenario schema: generated from the loader's own table, kept in docs/, and
in agreement with the loader when an independent validator (jsonschema) applies it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from softphone.bundled import EXAMPLES as EXAMPLES_DIR
from softphone.scenario.model import ACTIONS, ScenarioError, load_scenario, scenario_schema
from tests.conftest import REPO

PUBLISHED = REPO / "docs" / "scenario.schema.json"
EXAMPLES = sorted((EXAMPLES_DIR / "scenarios").glob("*.toml"))
HEAD = 'name = "t"\n[[legs]]\nname = "a"\n'


def test_the_published_schema_is_the_generated_one() -> None:
    """docs/scenario.schema.json is `softphone test --schema`; regenerate it when this fails."""
    assert json.loads(PUBLISHED.read_text()) == scenario_schema()
    jsonschema.Draft202012Validator.check_schema(scenario_schema())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_against_the_schema(path: Path) -> None:
    jsonschema.validate(tomllib.loads(path.read_text()), scenario_schema())


@pytest.mark.parametrize("steps", [
    '[[steps]]\nleg = "a"\naction = "anwser"\n',
    '[[steps]]\nleg = "a"\naction = "call"\n',
    '[[steps]]\nleg = "a"\naction = "reject"\nstatus = 99\n',
    '[[steps]]\nleg = "a"\naction = "reject"\nstatus = "486"\n',
    '[[steps]]\nleg = "a"\naction = "expect_tone"\nhz = 440\nsecond = 1\n',
    '[[steps]]\nleg = "a"\naction = "expect_tone"\nhz = 0\n',
    '[[steps]]\nleg = "a"\naction = "expect_similar"\nfile = "x.wav"\nthreshold = 1.5\n',
    '[[steps]]\nleg = "a"\naction = "play"\n',
    '[[steps]]\nleg = "a"\naction = "play"\ntone = 440\nfile = "x.wav"\n',
    '[[steps]]\nleg = "a"\naction = "send_dtmf"\ndigits = "12x"\n',
    '[[steps]]\nleg = "a"\naction = "wait_call"\nwithin = -1\n',
    '[[steps]]\naction = "answer"\n',
    '[[steps]]\naction = "wait"\nseconds = true\n',
    'timeout = 0\n[[steps]]\naction = "wait"\nseconds = 1\n',
    'colour = "red"\n[[steps]]\naction = "wait"\nseconds = 1\n',
    '[[legs]]\nname = "b"\ncodecs = ["g729"]\n[[steps]]\naction = "wait"\nseconds = 1\n',
    '[[legs]]\nname = "b"\nlisten = "5060"\n[[steps]]\naction = "wait"\nseconds = 1\n',
    '[[legs]]\nname = "b"\ndtmf_method = "inband"\n[[steps]]\naction = "wait"\nseconds = 1\n',
    '[[legs]]\ncodecs = ["pcmu"]\n[[steps]]\naction = "wait"\nseconds = 1\n',
])
def test_loader_and_schema_reject_the_same_mistakes(tmp_path: Path, steps: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + steps)
    with pytest.raises(ScenarioError):
        load_scenario(path)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tomllib.loads(path.read_text()), scenario_schema())


def test_every_action_is_documented_with_its_keys() -> None:
    text = (REPO / "docs" / "SCENARIOS.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines()
            if line.startswith("| `")}
    assert set(rows) >= set(ACTIONS)
    for name, action in ACTIONS.items():
        for key in (*action.required, *action.optional):
            assert f"`{key}`" in rows[name], f"{name}'s row does not mention {key}"


def test_the_cli_prints_the_schema_and_wants_a_file_otherwise() -> None:
    printed = subprocess.run([sys.executable, "-m", "softphone", "test", "--schema"],
                             capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0 and json.loads(printed.stdout) == scenario_schema()
    bare = subprocess.run([sys.executable, "-m", "softphone", "test"], capture_output=True,
                          text=True, timeout=30)
    assert bare.returncode == 2 and "name at least one scenario file" in bare.stderr
