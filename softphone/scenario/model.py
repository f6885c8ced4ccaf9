"""Scenario files: a call test as data (TOML).

    name = "busy line"
    timeout = 20                 # seconds for the whole scenario

    [[legs]]                     # user agents of the test, on loopback unless told
    name = "caller"
    codecs = ["pcmu"]

    [[legs]]
    name = "callee"

    [[steps]]                    # run in order; each waits at most its `within`
    leg = "caller"
    action = "call"
    to = "callee"                # a leg's name, or any SIP URI
    [[steps]]
    leg = "callee"
    action = "reject"
    status = 486
    [[steps]]
    leg = "caller"
    action = "expect_status"
    status = 486

Errors name the file, the step and its line: "busy.toml: step 2 (line 14): unknown action
'rejct' (did you mean 'reject'?)".
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_WITHIN = 10.0

# action -> (required keys, optional keys); every step also takes leg, action, within.
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "call": (("to",), ("expect_status",)),
    "wait_call": ((), ()),
    "ring": ((), ()),
    "answer": ((), ()),
    "reject": ((), ("status",)),
    "hangup": ((), ()),
    "expect_ringing": ((), ()),
    "expect_answered": ((), ()),
    "expect_status": (("status",), ()),
    "expect_hangup": ((), ()),
    "play": ((), ("file", "tone")),
    "stop_audio": ((), ()),
    "send_dtmf": (("digits",), ()),
    "expect_dtmf": (("digits",), ()),
    "play_dtmf": (("digits",), ()),
    "expect_inband_dtmf": (("digits",), ("seconds",)),
    "expect_tone": (("hz",), ("seconds", "level")),
    "expect_silence": ((), ("seconds",)),
    "expect_speech": ((), ("seconds",)),
    "expect_similar": (("file",), ("threshold",)),
    "record": (("file",), ()),
    "wait": (("seconds",), ()),
}
LEG_KEYS = ("name", "codecs", "user", "listen", "dtmf_method")
TOP_KEYS = ("name", "timeout", "legs", "steps")
NUMBER_KEYS = ("within", "seconds", "hz", "level", "tone", "threshold")
INTEGER_KEYS = ("status", "expect_status")


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message is one line naming where."""


@dataclass(frozen=True)
class Leg:
    name: str
    codecs: tuple[str, ...] = ("opus", "pcmu", "pcma")
    user: str | None = None
    listen: str = "127.0.0.1:0"
    dtmf_method: str = "auto"


@dataclass(frozen=True)
class Step:
    number: int
    line: int
    action: str
    leg: str | None
    within: float
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        detail = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.leg + ': ' if self.leg else ''}{self.action}" + (f" ({detail})"
                                                                         if detail else "")


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    timeout: float
    legs: tuple[Leg, ...]
    steps: tuple[Step, ...]


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    _unknown(path, "", data, TOP_KEYS)
    legs = tuple(_leg(path, i + 1, table) for i, table in enumerate(_tables(path, data, "legs")))
    names = [leg.name for leg in legs]
    if len(set(names)) != len(names):
        raise ScenarioError(f"{path}: two legs share a name")
    lines = [i + 1 for i, line in enumerate(text.splitlines())
             if re.match(r"\s*\[\[\s*steps\s*\]\]", line)]
    steps = tuple(_step(path, i + 1, lines[i] if i < len(lines) else 0, table, names)
                  for i, table in enumerate(_tables(path, data, "steps")))
    if not steps:
        raise ScenarioError(f"{path}: no [[steps]]")
    timeout = data.get("timeout", 60)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ScenarioError(f"{path}: timeout: expected a number of seconds, got {timeout!r}")
    return Scenario(path, str(data.get("name", path.stem)), float(timeout), legs, steps)


def _tables(path: Path, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ScenarioError(f"{path}: {key}: expected [[{key}]] tables")
    return tables


def _leg(path: Path, number: int, table: dict[str, Any]) -> Leg:
    where = f"{path}: leg {number}"
    _unknown(path, f"leg {number}: ", table, LEG_KEYS)
    if not isinstance(table.get("name"), str):
        raise ScenarioError(f"{where}: name: expected a string")
    codecs = table.get("codecs", ["opus", "pcmu", "pcma"])
    if not isinstance(codecs, list) or not all(c in ("opus", "pcmu", "pcma") for c in codecs):
        raise ScenarioError(f"{where}: codecs: expected a list of opus, pcmu, pcma")
    return Leg(name=table["name"], codecs=tuple(codecs), user=table.get("user"),
               listen=str(table.get("listen", "127.0.0.1:0")),
               dtmf_method=str(table.get("dtmf_method", "auto")))


def _step(path: Path, number: int, line: int, table: dict[str, Any],
          legs: list[str]) -> Step:
    where = f"{path}: step {number} (line {line})"
    action = table.get("action")
    if action not in ACTIONS:
        hint = _suggest(str(action), list(ACTIONS))
        raise ScenarioError(f"{where}: unknown action {action!r}{hint}")
    required, optional = ACTIONS[action]
    allowed = ("action", "leg", "within", *required, *optional)
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{where}: {action} takes no {key!r}"
                                f"{_suggest(key, list(allowed))}")
    for key in required:
        if key not in table:
            raise ScenarioError(f"{where}: {action} needs {key!r}")
    leg = table.get("leg")
    if action != "wait" and leg not in legs:
        raise ScenarioError(f"{where}: leg {leg!r} is not one of {', '.join(legs) or 'none'}")
    for key, value in table.items():
        if key in NUMBER_KEYS and (not isinstance(value, (int, float)) or value < 0):
            raise ScenarioError(f"{where}: {key}: expected a number, got {value!r}")
        if key in INTEGER_KEYS and (not isinstance(value, int) or not 100 <= value <= 699):
            raise ScenarioError(f"{where}: {key}: expected a SIP status, got {value!r}")
    if action == "play" and ("file" in table) == ("tone" in table):
        raise ScenarioError(f"{where}: play needs one of 'file' or 'tone'")
    args = {k: v for k, v in table.items() if k not in ("action", "leg", "within")}
    if action in ("play", "expect_similar") and "file" in args:  # beside the scenario
        args["file"] = str((path.parent / str(args["file"])).resolve())
    return Step(number, line, str(action), leg, float(table.get("within", DEFAULT_WITHIN)),
                args)


def _unknown(path: Path, where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{path}: {where}unknown key {key!r}"
                                f"{_suggest(key, list(allowed))}")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
