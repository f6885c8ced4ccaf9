"""What a pip user gets: the wheel built from this tree, installed into a fresh virtual
environment, used from a scratch directory that holds nothing of the repository.

The README's pytest example runs there exactly as a user would copy it (no pytest
configuration at all); the bundled examples are listed and a bundled scenario passes."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, REPO], cwd=out)
    return next(out.glob("softphone-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtual environment with ``softphone[pytest]`` from the wheel; its bin/."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    bin_dir = home / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[pytest]"], cwd=home)
    yield bin_dir


def test_the_wheel_carries_types_licence_metadata_and_examples(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "softphone/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for example in ("loopback.toml", "pbx.toml", "scenarios/busy.toml",
                    "scenarios/prompt.wav"):
        assert f"softphone/examples/{example}" in names
    assert "Project-URL: Homepage" in metadata
    assert "Classifier: Topic :: Communications :: Telephony" in metadata
    assert "Provides-Extra: pytest" in metadata


def readme_pytest_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
              if "sip_agents" in b]
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_pytest_example_runs_in_a_users_project(installed: Path,
                                                            tmp_path: Path) -> None:
    (tmp_path / "test_ivr.py").write_text(readme_pytest_example(), encoding="utf-8")
    output = _run([installed / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "test_ivr.py"], cwd=tmp_path, timeout=120)
    assert "1 passed" in output


def test_a_bundled_scenario_runs_from_the_installed_package(installed: Path,
                                                            tmp_path: Path) -> None:
    listing = _run([installed / "softphone", "examples", "--json"], cwd=tmp_path)
    assert '"name": "busy"' in listing and '"kind": "profile"' in listing
    output = _run([installed / "softphone", "test", "--example", "busy"], cwd=tmp_path,
                  timeout=120)
    assert "PASS" in output
    copied = _run([installed / "softphone", "examples", "--copy", "mine"], cwd=tmp_path)
    assert (tmp_path / "mine" / "scenarios" / "prompt.wav").is_file(), copied
