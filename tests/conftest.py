"""Shared test settings: the test data nobody here wrote lives in tests/data (see its README)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO / "tests" / "data"


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A socket or transport a test forgot is reported (ResourceWarning, an error here) by
    the test that forgot it, not by whichever test the garbage collector next runs in. The
    unit tests open no sockets (the virtual network), and a full collection after each of
    them would cost more than all of them together, so they are left out."""
    yield
    if "unit" not in request.node.path.parts:
        gc.collect()
