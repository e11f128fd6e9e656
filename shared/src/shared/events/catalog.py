"""Generate — or check — the published event catalogue: docs/asyncapi.yaml and docs/events.md.

    python -m shared.events.catalog            # (re)write both files
    python -m shared.events.catalog --check    # exit 1, naming the file, if the committed ones are stale

Both files are a pure function of the event registry (no timestamps, stable ordering), so CI can
compare the committed copies with freshly generated ones: the catalogue can never drift from the code.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.events.asyncapi import render_asyncapi
from shared.events.eventsmd import render_events_md
from shared.events.registry import REGISTRY, EventRegistry
from shared.events.schemas import build_catalogue

ASYNCAPI_FILE = "asyncapi.yaml"
EVENTS_FILE = "events.md"


def generate(registry: EventRegistry = REGISTRY) -> dict[str, str]:
    """File name (inside docs/) → content, for every generated catalogue file."""
    catalogue = build_catalogue(registry)
    return {ASYNCAPI_FILE: render_asyncapi(catalogue), EVENTS_FILE: render_events_md(catalogue)}


def write(docs_dir: Path, registry: EventRegistry = REGISTRY) -> list[Path]:
    """Write the generated files into ``docs_dir``; returns the paths whose content changed."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, content in generate(registry).items():
        path = docs_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(path)
    return changed


def stale(docs_dir: Path, registry: EventRegistry = REGISTRY) -> dict[Path, str]:
    """Committed files that differ from freshly generated output: path → short unified diff."""
    differing = {}
    for name, expected in generate(registry).items():
        path = docs_dir / name
        actual = path.read_text(encoding="utf-8") if path.exists() else ""
        if actual != expected:
            diff = difflib.unified_diff(
                actual.splitlines(), expected.splitlines(), f"{path} (committed)", f"{path} (generated)", lineterm=""
            )
            differing[path] = "\n".join(list(diff)[:40])
    return differing


def default_docs_dir() -> Path:
    """docs/ of the repository containing the working directory (the nearest ancestor with a docs/ dir
    next to a pyproject.toml), so the command works from any subdirectory; else ./docs."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "docs").is_dir():
            return folder / "docs"
    return here / "docs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.events.catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    parser.add_argument("--docs-dir", type=Path, default=None, help="where the files live (default: <repo>/docs)")
    args = parser.parse_args(argv)
    docs_dir: Path = args.docs_dir or default_docs_dir()

    if args.check:
        differing = stale(docs_dir)
        for path, diff in differing.items():
            print(f"{path} is out of date with the event registry.\n{diff}\n", file=sys.stderr)
        if differing:
            names = ", ".join(str(p) for p in differing)
            print(f"Stale: {names}. Run `python -m shared.events.catalog` (make docs) and commit.", file=sys.stderr)
            return 1
        print(f"{docs_dir}: event catalogue is up to date")
        return 0

    changed = write(docs_dir)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print(f"{docs_dir}: event catalogue already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
