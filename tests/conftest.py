"""Shared test settings: the test data nobody here wrote lives in tests/data (see its README)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO / "tests" / "data"
