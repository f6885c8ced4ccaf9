"""Shared fixtures: where the test data nobody here wrote lives (../shared/testdata)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_testdata() -> Path:
    override = os.environ.get("SOFTPHONE_TESTDATA")
    candidates = [Path(override)] if override else []
    candidates += [REPO.parent / "shared" / "testdata", REPO / "tests" / "data"]
    for candidate in candidates:
        if (candidate / "rfc4475" / "MANIFEST.tsv").is_file():
            return candidate
    raise RuntimeError("test data not found: expected ../shared/testdata beside the repository "
                       "(or set SOFTPHONE_TESTDATA)")


@pytest.fixture(scope="session")
def testdata() -> Path:
    return find_testdata()
