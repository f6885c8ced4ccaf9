"""Locust (softphone.locust) spreads callers over a master and two workers, through Kamailio to
a registered ``softphone answer``: the CSV statistics show the answered calls with their
media figures and the failed ones by status."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from softphone.bundled import find_example
from tests.peers import Kamailio, free_port, kamailio, stop

pytestmark = pytest.mark.peers

SOFTPHONE = [sys.executable, "-m", "softphone"]
LOCUST = str(Path(sys.executable).parent / "locust")

# A second kind of user, beside the example's callers: it calls someone nobody registered.
STRANGERS = """
from locust import constant
from softphone.locust import SipUser


class Stranger(SipUser):
    wait_time = constant(0.5)
    target = "sip:nobody@127.0.0.1:{port}"
"""


def registered_answerer(proxy: Kamailio) -> subprocess.Popen[str]:
    """bob, registered with Kamailio, answering every call."""
    bob = subprocess.Popen(
        [*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", "--null-audio", "--auto-answer",
         "--registrar", proxy.uri, "--user", "bob", "--password", Kamailio.USERS["bob"],
         "--json"], stdout=subprocess.PIPE, text=True)
    assert bob.stdout is not None
    for line in bob.stdout:
        if json.loads(line)["event"] == "registered":
            return bob
    raise AssertionError("bob never registered")


def statistics(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with Path(f"{prefix}_stats.csv").open() as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def test_a_master_and_two_workers_call_through_kamailio(tmp_path: Path) -> None:
    with kamailio() as proxy:
        bob = registered_answerer(proxy)
        strangers = tmp_path / "strangers.py"
        strangers.write_text(STRANGERS.format(port=proxy.port))
        locustfiles = f"{find_example('locustfile').path},{strangers}"
        master_port, prefix = free_port(), tmp_path / "calls"
        master = subprocess.Popen(
            [LOCUST, "-f", locustfiles, "--master", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(master_port), "--headless", "--expect-workers", "2",
             "--users", "4", "--spawn-rate", "4", "--run-time", "8s", "--csv", str(prefix),
             "--host", f"sip:bob@127.0.0.1:{proxy.port}",
             "--sip-options", f"--user alice --password {Kamailio.USERS['alice']} --codec pcmu"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        workers = [subprocess.Popen(
            [LOCUST, "-f", locustfiles, "--worker", "--master-host", "127.0.0.1",
             "--master-port", str(master_port)], cwd=tmp_path, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            output, _ = master.communicate(timeout=120)
            for worker in workers:
                assert worker.wait(timeout=30) == 0
        finally:
            for process in (master, *workers, bob):
                stop(process)
            assert bob.stdout is not None
            bob.stdout.close()
    assert master.returncode == 1, output  # Locust's exit status when requests failed
    stats = statistics(prefix)
    answered, refused = stats[("INVITE", "200 OK")], stats[("INVITE", "404 Not Found")]
    assert int(answered["Request Count"]) >= 4 and answered["Failure Count"] == "0"
    assert int(refused["Request Count"]) >= 4
    assert refused["Failure Count"] == refused["Request Count"]
    mos = stats[("RTP", "MOS x100")]
    assert mos["Request Count"] == answered["Request Count"] and mos["Failure Count"] == "0"
    assert float(mos["Min Response Time"]) >= 400  # every call heard its media (E-model)
    assert float(stats[("RTP", "loss per mille")]["Max Response Time"]) == 0
    with Path(f"{prefix}_failures.csv").open() as handle:
        failures = list(csv.DictReader(handle))
    assert [(row["Method"], row["Name"]) for row in failures] == [("INVITE", "404 Not Found")]
    assert "CallFailed" in failures[0]["Error"] and "404 Not Found" in failures[0]["Error"]


SCENARIO = """
name = "answered and heard"
timeout = 10

[[legs]]
name = "caller"
codecs = ["pcmu"]

[[steps]]
leg = "caller"
action = "call"
to = "${LOCUST_HOST}"

[[steps]]
leg = "caller"
action = "expect_answered"

[[steps]]
leg = "caller"
action = "expect_status"
status = 486
"""

SCENARIO_USERS = """
from locust import constant
from softphone.locust import SipUser


class Tester(SipUser):
    wait_time = constant(0.2)
    scenario = "scenario.toml"
"""


def test_scenario_users_report_the_scenario_and_each_step(tmp_path: Path) -> None:
    """A scenario file as what each user runs, its target Locust's --host: its steps are
    rows of their own, the failing one (a call answered where 486 was expected) a failure."""
    callee = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", "--null-audio",
                               "--auto-answer", "--duration", "0.3", "--json"],
                              stdout=subprocess.PIPE, text=True)
    assert callee.stdout is not None
    port = json.loads(callee.stdout.readline())["port"]
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(SCENARIO_USERS)
    try:
        result = subprocess.run(
            [LOCUST, "-f", "locustfile.py", "--headless", "--users", "1", "--spawn-rate", "1",
             "--run-time", "5s", "--csv", "out", "--host", f"sip:bob@127.0.0.1:{port}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        stop(callee)
        callee.stdout.close()
    stats = statistics(tmp_path / "out")
    scenario = stats[("SCENARIO", "answered and heard")]
    assert int(scenario["Request Count"]) >= 1, result.stderr
    assert scenario["Failure Count"] == scenario["Request Count"]
    answered = stats[("STEP", "answered and heard: caller: expect_answered")]
    assert answered["Failure Count"] == "0" and int(answered["Request Count"]) >= 1
    status = stats[("STEP", "answered and heard: caller: expect_status (status=486)")]
    assert status["Failure Count"] == status["Request Count"]


def test_the_engine_answers_each_request_and_names_bad_ones() -> None:
    engine = subprocess.run(
        [*SOFTPHONE, "engine", "--codec", "pcmu"], input="\n".join([
            "not json", '{"id": 1, "op": "dance"}', '{"id": 2, "op": "call"}',
            '{"id": 3, "op": "call", "uri": "sip:x@127.0.0.1:5", "duration": -1}',
            '{"id": 4, "op": "scenario", "path": "missing.toml"}']) + "\n",
        capture_output=True, text=True, timeout=30)
    assert engine.returncode == 0, engine.stderr
    answers = [json.loads(line) for line in engine.stdout.splitlines()]
    assert answers[0]["event"] == "ready" and answers[0]["port"] > 0
    by_id = {answer["id"]: answer for answer in answers[1:]}
    assert by_id[None]["error"].startswith("bad request: Expecting value")
    assert by_id[1]["error"] == "bad request: unknown op 'dance': call or scenario"
    assert by_id[2]["error"] == "bad request: a call needs a uri (none given, and no --target)"
    assert by_id[3]["error"].startswith("bad request: duration must be")
    assert by_id[4]["outcome"] == "error" and "missing.toml" in by_id[4]["why"]
