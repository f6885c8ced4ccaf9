"""Reports of scenario runs: JSON (every step's timing, the SIP trace, each call's RTP figures)
and JUnit XML (one test case per scenario, for CI systems)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

from softphone.scenario.runner import ScenarioResult


def write_json(results: list[ScenarioResult], path: Path) -> None:
    data = {"scenarios": [asdict(result) for result in results],
            "passed": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    suite = ET.Element("testsuite", name="softphone", tests=str(len(results)),
                       failures=str(sum(not r.ok for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=Path(result.path).stem,
                             name=result.name, time=f"{result.seconds:.3f}")
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.error)
            failure.text = "\n".join(
                f"step {s.number} (line {s.line}) {'ok' if s.ok else 'FAILED'} "
                f"{s.seconds:.3f}s {s.description} {s.message}" for s in result.steps)
        output = ET.SubElement(case, "system-out")
        output.text = "\n".join(result.sip_trace)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
