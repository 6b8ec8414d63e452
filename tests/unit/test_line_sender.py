"""Status-line updates queued and sent in batches (``dagnb.notebook.line_sender``), with a recording session.

The kernel-level behaviour (a quick task sends one update, a slow one shows
``running`` while it runs) is in ``tests/kernel/test_frontend_messages.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from ipykernel.iostream import IOPubThread
from jupyter_client.session import Session as JupyterSession

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


# ------------------------------------------------ through ipykernel's own I/O thread


@pytest.fixture
def iopub() -> Iterator[tuple[IOPubThread, zmq.Socket[bytes]]]:
    """ipykernel's I/O thread over a real socket on loopback, and the socket that receives what it sends."""
    context = zmq.Context()
    out = context.socket(zmq.PUSH)
    port = out.bind_to_random_port("tcp://127.0.0.1")
    received = context.socket(zmq.PULL)
    received.connect(f"tcp://127.0.0.1:{port}")
    thread = IOPubThread(out)
    thread.start()
    yield thread, received
    thread.stop()
    thread.thread.join(10)
    thread.close()
    received.close(linger=0)
    context.term()


class KernelPublisher:
    """What ``shell.display_pub`` gives the sender in a kernel: a signing session and ipykernel's socket."""

    def __init__(self, thread: IOPubThread) -> None:
        self.session, self.pub_socket, self.topic = JupyterSession(key=b"kernel-key"), thread.background_socket, b"d"
        self.parent_header = {"msg_id": "cell-1", "msg_type": "execute_request"}


def _received(socket: zmq.Socket[bytes], count: int) -> list[dict[str, Any]]:
    """``count`` messages off ``socket``, each checked against the kernel's key as a frontend checks it."""
    frontend = JupyterSession(key=b"kernel-key")
    found = []
    for _ in range(count):
        assert socket.poll(10_000), f"only {len(found)} of {count} messages arrived"
        _, frames = frontend.feed_identities(socket.recv_multipart())
        found.append(frontend.deserialize(frames))  # raises on a bad signature
    return found


def test_a_batch_reaches_the_io_thread_in_one_hand_off_and_every_message_arrives_signed_in_order(
    iopub: tuple[IOPubThread, zmq.Socket[bytes]],
) -> None:
    thread, received = iopub
    handed: list[object] = []
    schedule = thread.schedule
    thread.schedule = lambda f: (handed.append(f), schedule(f))  # type: ignore[method-assign]
    sender = LineSender(KernelPublisher(thread), delay=60)
    for i in range(300):
        sender.later(f"line-{i}", {"text/plain": f"t{i}: running"}, {})
    for i in range(0, 300, 2):
        sender.later(f"line-{i}", {"text/plain": f"t{i}: ran"}, {"dagnb": {"now": "ran"}})
    sender.flush()
    assert len(handed) == 1, "ipykernel's own socket wakes its I/O thread once per message"
    messages = _received(received, 300)
    ids = [m["content"]["transient"]["display_id"] for m in messages]
    assert ids == [f"line-{i}" for i in range(1, 300, 2)] + [f"line-{i}" for i in range(0, 300, 2)]
    assert {m["msg_type"] for m in messages} == {"update_display_data"}
    assert {m["parent_header"]["msg_id"] for m in messages} == {"cell-1"}
    assert messages[-1]["content"]["data"] == {"text/plain": "t298: ran"}
    assert messages[-1]["content"]["metadata"] == {"dagnb": {"now": "ran"}}
    assert received.poll(200) == 0, "nothing more than the 300 lines"


def test_a_new_line_goes_out_after_the_batch_queued_before_it_through_the_io_thread(
    iopub: tuple[IOPubThread, zmq.Socket[bytes]],
) -> None:
    thread, received = iopub
    sender = LineSender(KernelPublisher(thread), delay=60)
    sender.later("a", {"text/plain": "a: ran"}, {})
    sender.later("b", {"text/plain": "b: ran"}, {})
    sender.show("c", {"text/plain": "c: cached"}, {})
    messages = _received(received, 3)
    assert [(m["msg_type"], m["content"]["transient"]["display_id"]) for m in messages] == [
        ("update_display_data", "a"),
        ("update_display_data", "b"),
        ("display_data", "c"),
    ]


def test_a_socket_closed_under_a_batch_raises_nothing_into_the_io_thread_which_goes_on(
    iopub: tuple[IOPubThread, zmq.Socket[bytes]],
) -> None:
    thread, _ = iopub
    sender = LineSender(KernelPublisher(thread), delay=60)
    gate, later_work = threading.Event(), threading.Event()
    thread.schedule(gate.wait)  # holds the I/O thread until the socket is closed under the queued batch
    sender.later("a", {"text/plain": "a: ran"}, {})
    sender.flush()
    thread.socket.close(linger=0)
    gate.set()
    thread.schedule(later_work.set)
    assert later_work.wait(10), "the I/O thread stopped handling its events"


def test_in_a_process_forked_from_the_kernel_each_message_goes_through_the_session(
    iopub: tuple[IOPubThread, zmq.Socket[bytes]],
) -> None:
    thread, received = iopub
    publisher = KernelPublisher(thread)
    sent: list[str] = []
    send = publisher.session.send
    publisher.session.send = lambda socket, msg, ident: (sent.append(msg["msg_type"]), send(socket, msg, ident=ident))  # type: ignore[method-assign]
    sender = LineSender(publisher, delay=60)
    sender._pid = -1  # as in a process forked from the kernel: ipykernel's own send pipes to the parent
    sender.later("a", {"text/plain": "a: ran"}, {})
    sender.flush()
    assert sent == ["update_display_data"]
    assert _received(received, 1)[0]["content"]["transient"]["display_id"] == "a"
