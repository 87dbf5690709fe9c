"""The project's markdown links resolve: README.md, CHANGELOG.md and docs/*.md link into each other,
and sections move between them; a link left pointing at a moved file or heading still renders on
GitHub, it just leads nowhere. So every relative link and image (outside fenced code) must name an
existing file, and a #anchor a heading of the target under GitHub's slug rules. The README also
stays short and opens with the two commands a newcomer runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")  # [text](target "title") and ![alt](target)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


def prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks, where `#` starts a comment and not a heading."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lowercase, only letters, digits, spaces, hyphens and underscores kept,
    spaces to hyphens; the second heading of one slug gets -1, the third -2."""
    seen: dict[str, int] = {}
    for line in prose(path):
        if m := HEADING.match(line):
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))  # a link counts by its text
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
    return {slug if n == 0 else f"{slug}-{n}" for slug, count in seen.items() for n in range(count + 1)}


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for line in prose(path):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):  # code spans are not links
            if target.startswith(("http:", "https:", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    assert [line.split("#")[0].strip() for line in lines[start + 1:end]] == ["make demo", "make test"]
    assert all(not line.strip() or line.startswith("# ") for line in lines[:start]), \
        "the commands come right after the title"
