"""Every relative link in the README and in ``docs/`` leads to a file that exists,
and every ``#anchor`` to a heading of that file.

``mkdocs build --strict`` (in ``.ci/run``) checks the links between the pages
of ``docs/``, but never reads the README, whose links all point into
``docs/`` since the reference moved there. Anchors are checked with GitHub's
rule for heading ids, the one readers of the repository meet; for the
headings linked so far mkdocs makes the same ids.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # link text may wrap over lines
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def _prose(path: Path) -> str:
    """The file's text without fenced blocks: a `# comment` in code is no heading."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def github_id(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The ids of the headings of ``path`` (a repeated heading's later ids end in -1, -2, ...)."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(_prose(path)):
        base = github_id(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return frozenset(ids)


def relative_links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", _prose(path))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken(path: Path, root: Path = ROOT) -> list[str]:
    """Each link of ``path`` that leads nowhere, with the reason (files named from ``root``)."""
    found = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            found.append(f"{target}: no file {os.path.relpath(linked, root)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            found.append(f"{target}: no heading with the id `{anchor}` in {os.path.relpath(linked, root)}")
    return found


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken(path) == []


def test_the_readme_links_into_every_page_of_the_docs() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    pages = set((ROOT / "docs").glob("*.md"))
    assert pages - linked == set()


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## The `dagnb` command\n\n```\n# not a heading\n```\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md#the-dagnb-command) [also\nok](docs/page.md) `[code](nowhere.md)`\n"
        "[gone](docs/gone.md) [bad anchor](docs/page.md#not-a-heading) [web](https://example.org/x.md)\n"
    )
    assert broken(readme, root=tmp_path) == [
        "docs/gone.md: no file docs/gone.md",
        "docs/page.md#not-a-heading: no heading with the id `not-a-heading` in docs/page.md",
    ]
