"""The repository is the whole project: its tests read only what is in it."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.conftest import REPO, TESTDATA

OUTSIDE = re.compile(r"\.\./shared|parents?\[\d\]\s*/\s*\"shared\"|parent\s*/\s*\"shared\"")


def test_nothing_reads_beyond_the_repository() -> None:
    offenders = []
    for folder in ("softphone", "tests", "scripts", ".ci"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in ("", ".py", ".sh", ".toml", ".cfg") \
                    and "data" not in path.relative_to(REPO).parts[:2]:
                text = path.read_text(encoding="utf-8", errors="replace")
                if OUTSIDE.search(text) and path.name != "test_repository.py":
                    offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


@pytest.mark.parametrize("corpus", ["rfc4475", "rfc5118"])
def test_torture_corpora_are_the_archives_bytes(corpus: str) -> None:
    folder = TESTDATA / corpus
    sums = [line.split() for line in (folder / "SHA256SUMS").read_text().splitlines() if line]
    assert len(sums) >= 12
    for digest, name in sums:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_every_data_folder_is_described() -> None:
    readme = (TESTDATA / "README.md").read_text(encoding="utf-8")
    for folder in TESTDATA.iterdir():
        if folder.is_dir():
            assert f"`{folder.name}/`" in readme, folder.name
