"""Fixtures of the widget tests (helpers are in ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import comm
import ipywidgets
import pytest

from .support import CommLog, FakeClock, RecordingComm


def _close_views() -> None:
    from dagnb.widgets.views import _View

    for view in list(_View._live):
        view.close()
    _View._live.clear()


@pytest.fixture(autouse=True)
def _no_widget_outlives_its_test() -> Iterator[None]:
    """Close every view and widget a test made (views also stop following events)."""
    yield
    _close_views()
    ipywidgets.Widget.close_all()


@pytest.fixture
def comms() -> Iterator[CommLog]:
    """Record every message of every widget comm opened during the test."""
    log = CommLog()
    recording = type("Recording", (RecordingComm,), {"log": log})
    original = comm.create_comm
    comm.create_comm = lambda *args, **kwargs: recording(*args, **kwargs)
    try:
        yield log
    finally:
        _close_views()
        ipywidgets.Widget.close_all()
        comm.create_comm = original


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
