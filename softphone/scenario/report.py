"""Reports of scenario runs: JSON (every step's timing, the SIP trace, each call's RTP
figures) and JUnit XML for CI systems, written with junitparser (a maintained JUnit
library) in the layout Jenkins' xunit plugin validates: a ``testsuites`` root, one
``testsuite`` with ``errors``/``skipped``/``timestamp``, a test case per scenario whose
``failure``, ``error`` or ``skipped`` carries a ``type``."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from softphone.scenario.runner import ScenarioResult
from softphone.ua.events import utc_timestamp

SUITE = "softphone"


def summary_counts(results: list[ScenarioResult]) -> dict[str, int]:
    return {outcome: sum(r.outcome == outcome for r in results)
            for outcome in ("passed", "failed", "error", "skipped")}


def write_json(results: list[ScenarioResult], path: Path) -> None:
    counts = summary_counts(results)
    data = {"timestamp": utc_timestamp(), "scenarios": [asdict(r) for r in results],
            "passed": counts["passed"], "failed": counts["failed"] + counts["error"],
            "errors": counts["error"], "skipped": counts["skipped"]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    suite = TestSuite(SUITE)
    suite.timestamp = results[0].timestamp if results else utc_timestamp()
    suite.hostname = socket.gethostname()
    for result in results:
        suite.add_testcase(_case(result))
    suite.update_statistics()  # type: ignore[no-untyped-call]
    document = JUnitXml(SUITE)
    document.add_testsuite(suite)
    # The root's totals by hand: junitparser would add a "skipped" the schema refuses there.
    document.tests, document.failures = suite.tests, suite.failures
    document.errors, document.time = suite.errors, suite.time
    document.write(str(path), pretty=True)


def _case(result: ScenarioResult) -> TestCase:
    case = TestCase(result.name, classname=Path(result.path).stem, time=result.seconds)
    steps = "\n".join(f"step {s.number} (line {s.line}) {'ok' if s.ok else 'FAILED'} "
                      f"{s.seconds:.3f}s {s.description} {s.message}"
                      + (f" [heard: {s.heard!r}]" if s.heard else "") for s in result.steps)
    why = result.error + (f" (calls: {result.diagnosis})" if result.diagnosis else "")
    if result.outcome == "failed":
        verdict: Failure | Error | Skipped = Failure(why, "expectation")
        verdict.text = steps
        case.result = [verdict]
    elif result.outcome == "error":
        verdict = Error(why, "error")
        verdict.text = steps
        case.result = [verdict]
    elif result.outcome == "skipped":
        case.result = [Skipped(result.error, "skipped")]
    # the Jenkins JUnit Attachments plugin's form; other readers see the paths
    attached = [f"[[ATTACHMENT|{path}]]" for path in result.attachments]
    case.system_out = "\n".join(result.sip_trace + attached)
    return case
