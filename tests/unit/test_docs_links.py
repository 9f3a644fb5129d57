"""README.md and docs/*.md: every linked file and section exists, every cited repository path exists, and the
docs describe the project rather than files outside it or its development history."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"^(?:src|tests|benchmarks|docs)/[\w./{},*-]*$")
# Written by runs, not part of a clone.
GENERATED = ("benchmarks/results/cache",)
OUTSIDE = [
    re.compile(p, re.I)
    for p in (r"\bmethods\.md\b", r"\barchitecture\.md\b", r"field-notes", r"/work/", r"\bthe issue\b", r"issue's")
]


def prose(text: str) -> str:
    """``text`` without fenced code blocks (their ``#`` lines are comments, not headings)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def expand(path: str) -> list[str]:
    """Brace expansion: ``a.{csv,md}`` -> ``a.csv``, ``a.md``."""
    parts = re.split(r"(\{[^}]*\})", path)
    options = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
    return ["".join(combo) for combo in itertools.product(*options)]


def test_slug_matches_github_rules():
    assert slug("Training on several processes / machines") == "training-on-several-processes--machines"
    assert slug("Lossless theorem, and how it is tested") == "lossless-theorem-and-how-it-is-tested"
    heading = '2. Conversion: `ConversionConfig(method="steprelu")`'
    assert slug(heading) == "2-conversion-conversionconfigmethodsteprelu"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_and_anchors_resolve(doc: Path):
    text = prose(doc.read_text(encoding="utf-8"))
    problems = []
    targets = LINK.findall(text)
    assert targets or doc.name != "README.md"  # the README links the docs
    for target in targets:
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no section #{anchor} in {dest.name}")
    assert not problems, f"{doc.name}: " + "; ".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_repository_paths_exist(doc: Path):
    missing = []
    for span in CODE_SPAN.findall(doc.read_text(encoding="utf-8")):
        if not REPO_PATH.match(span) or span.startswith(GENERATED):
            continue
        for path in expand(span):
            if "*" in path:
                if not list(ROOT.glob(path)):
                    missing.append(path)
            elif not (ROOT / path).exists():
                missing.append(path)
    assert not missing, f"{doc.name} cites paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_references_outside_the_project(doc: Path):
    text = doc.read_text(encoding="utf-8")
    hits = [m.group(0) for pattern in OUTSIDE for m in pattern.finditer(text)]
    assert not hits, f"{doc.name} refers to things outside the project or its history: {hits}"
