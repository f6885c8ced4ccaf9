"""Scenario files: every mistake is reported with the file, the step and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.bundled import EXAMPLES
from softphone.scenario.model import ScenarioError, load_scenario
from softphone.transport.rtp import Impairment

HEAD = 'name = "t"\n[[legs]]\nname = "a"\n[[legs]]\nname = "b"\n'


@pytest.mark.parametrize("path", sorted((EXAMPLES / "scenarios").glob("*.toml")),
                         ids=lambda p: p.name)
def test_examples_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.steps and scenario.name


@pytest.mark.parametrize(("steps", "message"), [
    ('[[steps]]\nleg = "a"\naction = "anwser"\n',
     "step 1 (line 6): unknown action 'anwser' (did you mean 'answer'?)"),
    ('[[steps]]\nleg = "a"\naction = "call"\n', "step 1 (line 6): call needs 'to'"),
    ('[[steps]]\nleg = "c"\naction = "answer"\n', "leg 'c' is not one of a, b"),
    ('[[steps]]\nleg = "a"\naction = "reject"\nstatus = 99\n', "status: expected a SIP status"),
    ('[[steps]]\nleg = "a"\naction = "expect_tone"\nhz = 440\nsecond = 1\n',
     "expect_tone takes no 'second' (did you mean 'seconds'?)"),
    ('[[steps]]\naction = "wait"\nseconds = 1\n[[steps]]\nleg = "a"\naction = "play"\n',
     "step 2 (line 9): play needs one of 'file' or 'tone'"),
    ('', "no [[steps]]"),
    ('[[steps]]\nleg = "a"\naction = "hangup"\nparallel = "yes"\n',
     "parallel: expected true or false"),
    ('[[steps]]\nleg = "a"\naction = "expect_mwi"\nnew = -1\n', "new: expected a number"),
])
def test_mistakes_name_the_step_and_line(tmp_path: Path, steps: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + steps)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_leg_account_is_read_and_mwi_needs_a_registrar(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[legs]]\nname = "a"\nregistrar = "${PBX}"\npassword = "pw"\n'
                    'transport = "tcp"\nmwi = true\n[[steps]]\nleg = "a"\n'
                    'action = "expect_mwi"\nnew = 2\nparallel = true\n')
    scenario = load_scenario(path)
    leg = scenario.legs[0]
    assert (leg.registrar, leg.password, leg.transport, leg.mwi) == ("${PBX}", "pw", "tcp", True)
    assert scenario.steps[0].parallel and scenario.steps[0].args == {"new": 2}
    path.write_text('[[legs]]\nname = "a"\nmwi = true\n[[steps]]\nleg = "a"\n'
                    'action = "hangup"\n')
    with pytest.raises(ScenarioError, match="mwi needs a registrar"):
        load_scenario(path)


@pytest.mark.parametrize(("spec", "impairment"), [
    ("loss=5%,jitter=30ms,seed=7", Impairment(0.05, 0.03, 7)),
    (" loss = 0.2 ", Impairment(0.2, 0.0, 1)),
    ("jitter=0.04s", Impairment(0.0, 0.04, 1)),
    ("jitter=15ms,loss=100%", Impairment(1.0, 0.015, 1)),
])
def test_impairment_specs_read(spec: str, impairment: Impairment) -> None:
    assert Impairment.parse(spec) == impairment


@pytest.mark.parametrize(("spec", "message"), [
    ("loss=150%", "loss='150%': expected a percentage 0-100%"),
    ("jitter=fast", "jitter='fast': expected milliseconds"),
    ("seed=1.5", "seed='1.5': expected a whole number"),
    ("delay=5ms", "'delay=5ms': expected loss=PERCENT%"),
    ("loss=1%,loss=2%", "'loss=2%': expected loss=PERCENT%, jitter=MILLISECONDSms or seed=N, "
                        "each once"),
    ("", "nothing to impair"),
])
def test_bad_impairment_specs_say_which_part(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Impairment.parse(spec)
    assert str(raised.value).startswith(message)


def test_a_leg_can_be_impaired(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[legs]]\nname = "a"\nimpair = "loss=10%,seed=3"\n[[steps]]\nleg = "a"\n'
                    'action = "hangup"\n')
    assert load_scenario(path).legs[0].impair == Impairment(0.1, 0.0, 3)
    path.write_text('[[legs]]\nname = "a"\nimpair = "loss=300%"\n[[steps]]\nleg = "a"\n'
                    'action = "hangup"\n')
    with pytest.raises(ScenarioError, match=r"leg 1: impair: loss='300%': expected"):
        load_scenario(path)
    path.write_text('[[legs]]\nname = "a"\nimpair = "lots"\n[[steps]]\nleg = "a"\n'
                    'action = "hangup"\n')
    with pytest.raises(ScenarioError, match="impair: expected loss=PERCENT%,jitter="):
        load_scenario(path)
