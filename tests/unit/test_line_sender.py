"""Status-line updates queued and sent in batches (``dagnb.notebook.line_sender``), with a recording session.

The kernel-level behaviour (a quick task sends one update, a slow one shows
``running`` while it runs) is in ``tests/kernel/test_frontend_messages.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dagnb.notebook.line_sender import LineSender


class Session:
    """Records what would go out on iopub, in order, and from which thread."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.threads: set[str] = set()

    def msg(self, kind: str, content: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
        return {"msg_type": kind, "content": content, "parent_header": parent}

    def send(self, socket: object, msg: dict[str, Any], ident: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        content = msg["content"]
        self.sent.append((content["transient"]["display_id"], content["data"]["text/plain"], msg["parent_header"]))


class Publisher:
    def __init__(self) -> None:
        self.session, self.pub_socket, self.topic = Session(), object(), b"display_data"
        self.parent_header = {"msg_id": "cell-1"}
        self._hooks: list[Any] = []


def test_a_line_changed_twice_before_a_send_goes_out_once_in_its_latest_state() -> None:
    publisher = Publisher()
    sender = LineSender(publisher, delay=60)
    sender.later("a", {"text/plain": "a: running"}, {})
    sender.later("b", {"text/plain": "b: running"}, {})
    sender.later("a", {"text/plain": "a: ran"}, {})
    sender.flush()
    assert publisher.session.sent == [("b", "b: running", {"msg_id": "cell-1"}), ("a", "a: ran", {"msg_id": "cell-1"})]
    sender.flush()
    assert len(publisher.session.sent) == 2, "a flush with nothing queued sends nothing"


def test_queued_updates_go_out_on_their_own_after_the_delay_with_the_parent_of_the_cell_that_queued_them() -> None:
    publisher = Publisher()
    sender = LineSender(publisher, delay=0.05)
    sender.later("a", {"text/plain": "a: running"}, {})
    publisher.parent_header = {"msg_id": "cell-2"}  # the next cell: what was queued keeps its own cell
    deadline = time.monotonic() + 10
    while not publisher.session.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert publisher.session.sent == [("a", "a: running", {"msg_id": "cell-1"})]
    assert publisher.session.threads == {"dagnb-status-lines"}


def test_a_publisher_with_hooks_or_without_a_session_is_not_used() -> None:
    hooked = Publisher()
    hooked._hooks.append(lambda msg: msg)
    assert LineSender.usable(Publisher())
    assert not LineSender.usable(hooked), "a hook may transform or swallow messages: publish normally"
    assert not LineSender.usable(object())


def test_a_new_line_goes_out_after_the_updates_queued_before_it() -> None:
    publisher = Publisher()
    sender = LineSender(publisher, delay=60)
    sender.later("a", {"text/plain": "a: ran"}, {})
    sender.show("b", {"text/plain": "b: cached"}, {})
    assert [(shown, text) for shown, text, _ in publisher.session.sent] == [("a", "a: ran"), ("b", "b: cached")]
