"""The status vocabulary is declared once, in ``dagnb.status``, and says what the glossary says (docs/reference.md)."""

from __future__ import annotations

import re
from pathlib import Path

from dagnb import status

GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def _glossary_statuses() -> list[str]:
    text = GLOSSARY.read_text(encoding="utf-8")
    start = text.index("* Statuses:")
    paragraph = text[start:text.index("\n\n", start)]
    return re.findall(r"`([a-z-]+)`", re.sub(r"\([^)]*\)", "", paragraph))


def test_the_statuses_are_those_of_the_glossary_in_its_order():
    assert list(status.STATUSES) == _glossary_statuses()


def test_every_group_is_made_of_statuses():
    for group in (status.WITH_VALUE, status.RAISED, status.STOPPED, status.WAITING, status.ENDED):
        assert set(group) <= set(status.STATUSES)
    assert set(status.ENDED) == set(status.STATUSES) - {"pending", "stale", "running"}
    assert len(status.ENDED) == len(set(status.ENDED))


def test_done_reads_as_ran_and_every_other_status_as_itself():
    assert [status.word(s) for s in status.STATUSES] == [
        "pending", "stale", "running", "ran", "cached", "failed", "skipped", "cancelled", "timed-out", "interrupted"]
