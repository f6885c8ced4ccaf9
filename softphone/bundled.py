"""The examples that ship inside the package (``softphone/examples``): configuration profiles
and call-test scenarios. A pip user has no repository to look in, so the CLI lists them
(``softphone examples``), copies them out to edit (``--copy DIR``) and runs a scenario by
name (``softphone test --example NAME``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent / "examples"


@dataclass(frozen=True)
class Example:
    """One bundled file: a profile file (``kind`` "profile"), a scenario ("scenario") or a
    Locust file ("locustfile", for softphone.locust)."""

    name: str
    kind: str
    path: Path
    summary: str  # the file's first comment line


def examples() -> list[Example]:
    found = [_example(path, "profile") for path in sorted(EXAMPLES.glob("*.toml"))]
    found += [_example(path, "scenario") for path in sorted(EXAMPLES.glob("scenarios/*.toml"))]
    found += [_example(path, "locustfile") for path in sorted(EXAMPLES.glob("*.py"))]
    return found


def find_example(name: str, kind: str | None = None) -> Example:
    """The example called ``name`` (its file name without .toml or .py); KeyError names the
    choices."""
    matching = [e for e in examples() if e.name == name.removesuffix(".toml").removesuffix(".py")
                and (kind is None or e.kind == kind)]
    if not matching:
        choices = ", ".join(e.name for e in examples() if kind is None or e.kind == kind)
        raise KeyError(f"no example {name!r}; the examples are: {choices}")
    return matching[0]


def copy_examples(destination: Path) -> tuple[list[Path], list[Path]]:
    """Copy every bundled file (the scenarios' WAV too) under ``destination``; files already
    there are kept, not overwritten. Returns (copied, kept)."""
    copied: list[Path] = []
    kept: list[Path] = []
    for source in sorted(p for p in EXAMPLES.rglob("*") if p.is_file()
                         and p.suffix in (".toml", ".wav", ".py")):
        target = destination / source.relative_to(EXAMPLES)
        if target.exists():
            kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied, kept


def _example(path: Path, kind: str) -> Example:
    summary = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            summary = line.lstrip("# ").strip()
            break
    return Example(path.stem, kind, path, summary)
