"""Every ``*.md`` a comment, docstring or doc cites exists in the repository, with its section.

Facts are cited as ``docs/facts/<file>.md §N`` (or a public URL): a citation of notes kept
outside the repository resolves for nobody who clones it, so those names fail here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("syncd", "tests", "bench", "scripts", "helm", "docs", "config",
           "Dockerfile", "README.md", "CHANGELOG.md", "pyproject.toml")
SKIPPED_DIRS = {"__pycache__", ".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

URL = re.compile(r"(?:https?:)?//[^\s)>\]`'\"]+")
# A path ending in .md, optionally followed by a section: "docs/facts/slurm.md §3".
CITATION = re.compile(r"(?<![\w/.-])((?:\.\.?/)*(?:[\w.-]+/)*[\w-][\w.-]*\.md)\b(?:\s+§(\d+))?")
# Names the notes had outside the repository; they must not come back in any spelling.
OUTSIDE = re.compile(r"\b(?:slurm|pyslurm|kubernetes|slinky)-facts\b|shared/notes|\.\./shared/")


def scanned_files(root: Path) -> Iterator[Path]:
    for name in SCANNED:
        top = root / name
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in paths:
            if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(root).parts):
                yield path


def sections(path: Path) -> set[str]:
    """The ``§N`` numbers a Markdown file's headings define."""
    return set(re.findall(r"^#+\s+§(\d+)\b", path.read_text(), flags=re.MULTILINE))


def _quoted(line: str, start: int, end: int) -> bool:
    before, after = line[start - 1 : start], line[end : end + 1]
    return before in ("'", '"') and after == before


def broken_citations(root: Path, skip: frozenset[Path] = frozenset()) -> list[str]:
    """``file:line: why`` for every citation under ``root`` that does not resolve."""
    broken = []
    for path in scanned_files(root):
        if path in skip:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary: cites nothing
        where = path.relative_to(root)
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                broken.append(f"{where}:{number}: cites notes outside the repo: {line.strip()}")
            bare = URL.sub(" ", line)
            for match in CITATION.finditer(bare):
                ref, section = match.groups()
                if _quoted(bare, match.start(1), match.end(1)):
                    continue  # a file name in code ("RESULTS.md"), not a citation
                found = next((c for c in (path.parent / ref, root / ref) if c.is_file()), None)
                if found is None:
                    broken.append(f"{where}:{number}: {ref} is not in the repository")
                elif section and section not in sections(found):
                    broken.append(f"{where}:{number}: {ref} has no section §{section}")
    return broken


def test_every_cited_file_and_section_exists() -> None:
    broken = broken_citations(ROOT, skip=frozenset({Path(__file__).resolve()}))
    assert broken == [], "\n".join(broken)


def test_the_facts_files_exist_and_are_cited() -> None:
    facts = sorted(p.name for p in (ROOT / "docs" / "facts").glob("*.md"))
    assert facts == ["README.md", "kubernetes.md", "prior-art.md", "pyslurm.md", "slinky.md",
                     "slurm.md"]
    cited = {m.group(1).rpartition("/")[2] for p in scanned_files(ROOT)
             if p.suffix in (".py", ".md", ".yaml", "") and "facts" not in p.parts
             for m in CITATION.finditer(p.read_text(errors="replace"))
             if m.group(1).startswith("docs/facts/")}
    assert set(facts) - {"README.md"} <= cited, "a facts file nobody cites is dead weight"


def test_the_scanner_catches_a_missing_file_a_missing_section_and_outside_notes(
    tmp_path: Path,
) -> None:
    (tmp_path / "docs" / "facts").mkdir(parents=True)
    (tmp_path / "docs" / "facts" / "slurm.md").write_text("# Slurm\n\n## §1 Bring-up\n")
    (tmp_path / "syncd").mkdir()
    (tmp_path / "syncd" / "mod.py").write_text(
        '"""Fine: docs/facts/slurm.md §1 and https://example.org/x/README.md."""\n'
        "# missing: docs/facts/gone.md\n"
        "# no such section: docs/facts/slurm.md §9\n"
        "# outside: see slurm" "-facts §3\n"
        "# relative to this file: ../docs/facts/slurm.md\n"
        'out = tmp / "RESULTS.md"  # a file name in code\n')
    assert [b.split(": ", 1)[0] for b in broken_citations(tmp_path)] == [
        "syncd/mod.py:2", "syncd/mod.py:3", "syncd/mod.py:4"]
