"""The documentation holds together: a short README that reaches every page, working links,
and no reference to files a clone does not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: How the project used to cite notes that live outside the repository.
_SHARED, _NOTES = "shared" + "/spec", "platform" + r"[- ]notes"  # split: not cited here either
OUTSIDE = re.compile(rf"{_SHARED}|{_NOTES}|\bspec/[a-z-]+\.md|\bspec [a-h]\.\d")


def _links(path: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(path.read_text(encoding="utf-8"))]


def test_readme_is_short_and_reaches_every_page() -> None:
    readme = REPO / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 300
    linked = {(REPO / t.split("#")[0]).resolve() for t in _links(readme)}
    pages = {p.resolve() for p in (REPO / "docs").glob("*.md")}
    assert not pages - linked, (
        f"not linked from README.md: {sorted(p.name for p in pages - linked)}"
    )


def test_relative_links_resolve() -> None:
    broken = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in _links(doc):
            if re.match(r"^(https?:|mailto:|#)", target):
                continue
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{doc.relative_to(REPO)}: {target}")
    assert not broken, broken


def test_nothing_cites_files_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = []
    for name in files:
        path = REPO / name
        if name == "tests/test_docs.py" or not path.is_file() or path.suffix in {".png", ".jpg"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert not hits, hits[:20]
