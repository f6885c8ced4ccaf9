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

from softphone.media.speech import DEFAULT_MAX_WER, DEFAULT_VOICE, VOICES
from softphone.sdp.negotiation import CODECS, DEFAULT_CODECS
from softphone.transport.rtp import Impairment

DEFAULT_WITHIN = 10.0
CODEC_NAMES = tuple(CODECS)
DTMF_METHODS = ("auto", "rfc4733", "info")

# What each value may be, as JSON Schema fragments: the published schema is built from them
# and the loader checks values against them (conforms()), so the two cannot disagree.
SECONDS: dict[str, Any] = {"type": "number", "minimum": 0}
KINDS: dict[str, dict[str, Any]] = {
    "to": {"type": "string", "minLength": 1,
           "description": "a leg's name, or a SIP URI; ${VAR} takes it from the environment"},
    "status": {"type": "integer", "minimum": 100, "maximum": 699},
    "expect_status": {"type": "integer", "minimum": 100, "maximum": 699,
                      "description": "the final status the call must end with"},
    "file": {"type": "string", "minLength": 1,
             "description": "a WAV file, relative to the scenario file"},
    "tone": {"type": "number", "exclusiveMinimum": 0, "description": "Hz"},
    "hz": {"type": "number", "exclusiveMinimum": 0},
    "digits": {"type": "string", "pattern": "^[0-9*#A-Da-d]+$"},
    "text": {"type": "string", "description": "a message's text, or the words to say or hear"},
    "min_mos": {"type": "number", "minimum": 1, "maximum": 4.5,
                "description": "the lowest E-model MOS (ITU-T G.107) that passes"},
    "voice": {"enum": list(VOICES), "description": f"Flite's voice (default {DEFAULT_VOICE})"},
    "max_wer": {"type": "number", "minimum": 0, "maximum": 1,
                "description": "the highest word error rate that still matches (default "
                               f"{DEFAULT_MAX_WER:g}; 0: every word must be heard)"},
    "new": {"type": "integer", "minimum": 0,
            "description": "new voice messages the summary must count"},
    "waiting": {"type": "boolean", "description": "whether messages must be waiting"},
    "parallel": {"type": "boolean",
                 "description": "run together with the neighbouring steps marked so; the "
                                "scenario goes on when all of them are done"},
    "seconds": {**SECONDS, "description": "how long the audio must hold, how long to wait, "
                                          "or the most a conversation timing may take"},
    "level": {"type": "number", "minimum": 0,
              "description": "the tone's floor in dB below full scale (default 40)"},
    "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                  "description": "least normalised correlation (default 0.8)"},
    "within": {**SECONDS, "description": f"seconds the step may take (default "
                                         f"{DEFAULT_WITHIN:g})"},
}


@dataclass(frozen=True)
class Action:
    summary: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {
    "call": Action("place a call", ("to",), ("expect_status",)),
    "wait_call": Action("wait for a call to arrive"),
    "ring": Action("send 180 Ringing for the incoming call"),
    "answer": Action("answer the incoming call"),
    "early_media": Action("send 183 with SDP and play the leg's audio before answering"),
    "reject": Action("reject the incoming call (default 486)", (), ("status",)),
    "hangup": Action("end the call (BYE, or CANCEL before an answer)"),
    "expect_ringing": Action("the far end rings (a 18x arrives)"),
    "expect_answered": Action("the call is answered"),
    "expect_early_media": Action("media starts before the answer (a 183 with SDP): the "
                                 "steps after it hear the ringback or announcement"),
    "expect_status": Action("the call ends with this final status (200: answered)",
                            ("status",)),
    "expect_hangup": Action("the far end ends the call"),
    "play": Action("send a WAV file or a tone (exactly one of them)", (), ("file", "tone")),
    "stop_audio": Action("send silence"),
    "record": Action("record what is heard to a WAV file", ("file",)),
    "send_dtmf": Action("send digits as RFC 4733 events (SIP INFO if not negotiated)",
                        ("digits",)),
    "expect_dtmf": Action("the next digits received are these", ("digits",)),
    "play_dtmf": Action("send digits as in-band tones", ("digits",)),
    "expect_inband_dtmf": Action("these digits are heard as tones", ("digits",),
                                 ("seconds",)),
    "expect_tone": Action("a tone of hz is heard for seconds (default 1)", ("hz",),
                          ("seconds", "level")),
    "expect_silence": Action("silence is heard for seconds (default 1)", (), ("seconds",)),
    "expect_speech": Action("speech energy is heard for seconds (default 1)", (),
                            ("seconds",)),
    "expect_similar": Action("the reference WAV file is heard intact", ("file",),
                             ("threshold",)),
    "say": Action("speak the text into the call (offline speech synthesis)", ("text",),
                  ("voice",)),
    "expect_words": Action("the far end says the text (offline speech recognition of what "
                           "was heard since the last words matched); the transcript goes "
                           "into the report", ("text",), ("max_wer",)),
    "expect_quality": Action("what the call heard so far scores at least min_mos (E-model "
                             "from its loss, jitter and delay; judged after 1 s of RTP)",
                             ("min_mos",)),
    "expect_first_words": Action("the far end starts speaking within seconds of the answer",
                                 ("seconds",)),
    "expect_response": Action("once this leg's words end, the far end starts speaking within "
                              "seconds (response latency)", ("seconds",)),
    "expect_barge_in": Action("when this leg talks over the far end, it stops within seconds",
                              ("seconds",)),
    "expect_max_dead_air": Action("since the answer, neither side was silent longer than "
                                  "seconds (checked when the step runs)", ("seconds",)),
    "expect_max_talk_over": Action("both sides spoke at once for at most seconds in all "
                                   "(checked when the step runs)", ("seconds",)),
    "message": Action("send a MESSAGE: to a leg or URI outside any call, else in the call",
                      ("text",), ("to",)),
    "expect_message": Action("the next MESSAGE that arrives carries this text", ("text",)),
    "transfer": Action("ask the call's peer to call a leg or URI (REFER: blind transfer); "
                       "expect_transfer waits for how it went", ("to",)),
    "expect_transfer": Action("the transfer ends with this status (default 200: the target "
                              "answered)", (), ("status",)),
    "expect_transferred": Action("the peer transferred this leg (REFER): the call it placed "
                                 "becomes the leg's call"),
    "hold": Action("put the peer on hold (re-INVITE, sendonly)"),
    "resume": Action("take the peer off hold (re-INVITE, sendrecv)"),
    "expect_hold": Action("the peer puts this leg on hold"),
    "expect_resume": Action("the peer takes this leg off hold"),
    "expect_mwi": Action("the leg's voicemail summary (it needs mwi = true) says this",
                         (), ("new", "waiting")),
    "wait": Action("let time pass (needs no leg)", ("seconds",)),
}
STEP_KEYS = ("action", "leg", "within", "parallel")
# loss=PERCENT% (or a fraction), jitter=MILLISECONDSms (or seconds), seed=N, comma-separated;
# the values' ranges are checked when the leg is read (Impairment.parse).
IMPAIR_PATTERN = (r"^\s*(loss|jitter|seed)\s*=\s*[0-9.]+(%|ms|s)?\s*"
                  r"(,\s*(loss|jitter|seed)\s*=\s*[0-9.]+(%|ms|s)?\s*)*$")
LEG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "codecs": {"type": "array", "items": {"enum": list(CODEC_NAMES)}, "minItems": 1,
                   "description": "in order of preference (default "
                                  f"{', '.join(DEFAULT_CODECS)})"},
        "user": {"type": "string", "minLength": 1},
        "listen": {"type": "string", "pattern": "^.+:[0-9]+$",
                   "description": "HOST:PORT (default 127.0.0.1:0, any free port)"},
        "dtmf_method": {"enum": list(DTMF_METHODS)},
        "registrar": {"type": "string", "minLength": 1,
                      "description": "register here first (a SIP URI; ${VAR} allowed); the "
                                     "leg is then called at its address of record"},
        "password": {"type": "string", "description": "digest password (${VAR} allowed)"},
        "proxy": {"type": "string", "minLength": 1,
                  "description": "outbound proxy for every request (default: the "
                                 "registrar, when there is one)"},
        "domain": {"type": "string", "minLength": 1,
                   "description": "domain of the address of record (default: the "
                                  "registrar's host)"},
        "transport": {"enum": ["udp", "tcp", "tls"]},
        "mwi": {"type": "boolean",
                "description": "subscribe to voicemail waiting indication once registered"},
        "impair": {"type": "string", "pattern": IMPAIR_PATTERN,
                   "description": "trouble on the RTP this leg sends, e.g. "
                                  "loss=5%,jitter=30ms,seed=1"},
    },
}
TOP_SCHEMA: dict[str, Any] = {
    "name": {"type": "string"},
    "timeout": {"type": "number", "exclusiveMinimum": 0,
                "description": "seconds for the whole scenario (default 60)"},
}


def conforms(value: Any, fragment: dict[str, Any]) -> bool:
    """Whether ``value`` meets one of the schema fragments above (the keywords they use)."""
    kind = fragment.get("type")
    if "enum" in fragment and value not in fragment["enum"]:
        return False
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str) and len(value) >= fragment.get("minLength", 0) and \
            ("pattern" not in fragment or re.search(fragment["pattern"], value) is not None)
    if kind == "array":
        return isinstance(value, list) and len(value) >= fragment.get("minItems", 0) and \
            all(conforms(item, fragment["items"]) for item in value)
    if kind in ("integer", "number"):
        numeric = isinstance(value, int) if kind == "integer" else isinstance(value, (int, float))
        return numeric and not isinstance(value, bool) and \
            value >= fragment.get("minimum", value) and \
            value <= fragment.get("maximum", value) and \
            value > fragment.get("exclusiveMinimum", value - 1)
    return True


# where a fragment's keywords would make a poor error message
WORDS = {"digits": "DTMF digits (0-9, *, #, A-D)", "status": "a SIP status",
         "parallel": "true or false", "waiting": "true or false", "mwi": "true or false",
         "expect_status": "a SIP status", "listen": "HOST:PORT",
         "impair": "loss=PERCENT%,jitter=MILLISECONDSms,seed=N"}


def expected(fragment: dict[str, Any]) -> str:
    """The words an error uses for what a fragment admits."""
    if "enum" in fragment:
        return "one of " + ", ".join(map(str, fragment["enum"]))
    if fragment.get("type") == "array" and "enum" in fragment["items"]:
        return "a list drawn from " + ", ".join(map(str, fragment["items"]["enum"]))
    if fragment.get("type") in ("integer", "number"):
        low = fragment.get("minimum", fragment.get("exclusiveMinimum"))
        high = fragment.get("maximum")
        span = f" from {low:g} to {high:g}" if high is not None else \
            (" above 0" if "exclusiveMinimum" in fragment else f" of at least {low:g}")
        return f"a number{span}"
    return "a non-empty string"


def scenario_schema() -> dict[str, Any]:
    """The scenario format as JSON Schema (draft 2020-12): TOML files map onto it as JSON."""
    steps = []
    for name, action in ACTIONS.items():
        keys = (*STEP_KEYS, *action.required, *action.optional)
        properties: dict[str, Any] = {"action": {"const": name}, "leg": {"type": "string"}}
        properties |= {key: KINDS[key] for key in keys if key in KINDS}
        step: dict[str, Any] = {
            "description": action.summary, "type": "object",
            "required": ["action", *([] if name == "wait" else ["leg"]), *action.required],
            "properties": properties, "additionalProperties": False}
        if name == "play":
            step["oneOf"] = [{"required": ["file"]}, {"required": ["tone"]}]
        steps.append(step)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "softphone call-test scenario",
        "description": "A TOML scenario file for `softphone test`: legs (user agents) and "
                       "steps run in order. Generated by `softphone test --schema`.",
        "type": "object",
        "required": ["steps"],
        "additionalProperties": False,
        "properties": {
            **TOP_SCHEMA,
            "legs": {"type": "array", "items": LEG_SCHEMA},
            "steps": {"type": "array", "minItems": 1, "items": {"oneOf": steps}},
        },
    }


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message is one line naming where."""


@dataclass(frozen=True)
class Leg:
    name: str
    codecs: tuple[str, ...] = DEFAULT_CODECS
    user: str | None = None
    listen: str = "127.0.0.1:0"
    dtmf_method: str = "auto"
    registrar: str | None = None  # an account: register here, be called at the AOR
    password: str | None = None
    proxy: str | None = None
    domain: str | None = None
    transport: str = "udp"
    mwi: bool = False
    impair: Impairment | None = None  # trouble on the RTP this leg sends


@dataclass(frozen=True)
class Step:
    number: int
    line: int
    action: str
    leg: str | None
    within: float
    args: dict[str, Any] = field(default_factory=dict)
    parallel: bool = False  # runs with its marked neighbours; all end before the next step

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
    _unknown(path, "", data, ("legs", "steps", *TOP_SCHEMA))
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
    for key, fragment in TOP_SCHEMA.items():
        _check(f"{path}", key, data, fragment)
    return Scenario(path, str(data.get("name", path.stem)), float(data.get("timeout", 60)),
                    legs, steps)


def _tables(path: Path, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ScenarioError(f"{path}: {key}: expected [[{key}]] tables")
    return tables


def _leg(path: Path, number: int, table: dict[str, Any]) -> Leg:
    where = f"{path}: leg {number}"
    properties = LEG_SCHEMA["properties"]
    _unknown(path, f"leg {number}: ", table, tuple(properties))
    if "name" not in table:
        raise ScenarioError(f"{where}: needs a 'name'")
    for key, fragment in properties.items():
        _check(where, key, table, fragment)
    if table.get("mwi") and "registrar" not in table:
        raise ScenarioError(f"{where}: mwi needs a registrar (the account's voicemail)")
    try:
        impair = Impairment.parse(table["impair"]) if "impair" in table else None
    except ValueError as error:
        raise ScenarioError(f"{where}: impair: {error}") from None
    return Leg(name=table["name"], codecs=tuple(table.get("codecs", DEFAULT_CODECS)),
               user=table.get("user"), listen=str(table.get("listen", "127.0.0.1:0")),
               dtmf_method=str(table.get("dtmf_method", "auto")),
               registrar=table.get("registrar"), password=table.get("password"),
               proxy=table.get("proxy"), domain=table.get("domain"),
               transport=str(table.get("transport", "udp")), mwi=bool(table.get("mwi", False)),
               impair=impair)


def _check(where: str, key: str, table: dict[str, Any], fragment: dict[str, Any]) -> None:
    if key in table and not conforms(table[key], fragment):
        raise ScenarioError(f"{where}: {key}: expected {WORDS.get(key) or expected(fragment)}, "
                            f"got {table[key]!r}")


def _step(path: Path, number: int, line: int, table: dict[str, Any],
          legs: list[str]) -> Step:
    where = f"{path}: step {number} (line {line})"
    action = table.get("action")
    if action not in ACTIONS:
        hint = _suggest(str(action), list(ACTIONS))
        raise ScenarioError(f"{where}: unknown action {action!r}{hint}")
    required, optional = ACTIONS[action].required, ACTIONS[action].optional
    allowed = (*STEP_KEYS, *required, *optional)
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
    for key in table:
        if key in KINDS:
            _check(where, key, table, KINDS[key])
    if action == "play" and ("file" in table) == ("tone" in table):
        raise ScenarioError(f"{where}: play needs one of 'file' or 'tone'")
    args = {k: v for k, v in table.items() if k not in ("action", "leg", "within",
                                                          "parallel")}
    if action in ("play", "expect_similar") and "file" in args:  # beside the scenario
        args["file"] = str((path.parent / str(args["file"])).resolve())
    return Step(number, line, str(action), leg, float(table.get("within", DEFAULT_WITHIN)),
                args, bool(table.get("parallel", False)))


def _unknown(path: Path, where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{path}: {where}unknown key {key!r}"
                                f"{_suggest(key, list(allowed))}")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
