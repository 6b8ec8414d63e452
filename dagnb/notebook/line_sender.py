"""Status lines sent without ipykernel's per-message stream flush; updates in batches, off a run's path.

A run changes each task's line twice (``running``, then its outcome). Sent
one message at a time from the run loop, through ipykernel's ``publish``,
each costs a flush of stdout and stderr (a round trip to the kernel's I/O
thread) and a send: about 1 ms of a 1,000-task run's per-task cost went
there. :class:`LineSender` queues each line's latest text instead, and a
sender thread sends what is queued :data:`DELAY` seconds later; the run's
end and the cell's end send the rest at once. So a quick task's ``running``
and its outcome become one message, and a task that runs longer than the
delay shows ``running`` while it runs, even an inline one that holds the
kernel's main thread. A batch reaches ipykernel's I/O thread in one
hand-off, where its socket would wake that thread once per message.

Invariants:

* A line's latest text reaches the page before its cell ends: the run's
  end and the cell's end :meth:`~LineSender.flush` on the main thread.
* Updates go out in the order they were queued (a batch is taken and sent
  under one lock; queueing takes another, so a run never waits for a send),
  so a line never ends on an older text.
* Every update carries the parent header of the cell that queued it,
  captured on the main thread (ipykernel keeps it in a context variable a
  thread of ours would not see), so a frontend applies it to that cell's run.
* An update changes an output in place, so no stream flush precedes it. A
  new line (:meth:`~LineSender.show`) comes after what the cell printed:
  the streams are flushed first unless they hold nothing.
* Nothing here may break a run: a failed send drops that batch (the next
  change of the line sends it again), and nothing raises into the I/O
  thread's loop.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from typing import Any

__all__ = ["DELAY", "LineSender"]

#: How long a change waits for the next change of its line before it is sent (seconds).
DELAY = 0.1


class LineSender:
    """The queued updates of the page's status lines, and the thread that sends them.

    ``publisher`` is ipykernel's display publisher (``shell.display_pub``):
    its session, socket, topic and the parent header of the cell that runs.
    """

    def __init__(self, publisher: Any, delay: float = DELAY) -> None:
        self._publisher = publisher
        self._delay = delay
        self._ready = threading.Condition(threading.Lock())  # guards the queue; held only to queue or take
        self._sending = threading.Lock()  # one batch at a time, so batches go out in the order they were taken
        self._queued: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # display id -> (content, parent header)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @staticmethod
    def usable(publisher: Any) -> bool:
        """Whether ``publisher`` is one this can send through (ipykernel's, with no hook transforming messages)."""
        needed = ("session", "pub_socket", "topic", "parent_header")
        return all(hasattr(publisher, name) for name in needed) and not getattr(publisher, "_hooks", None)

    def later(self, display_id: str, bundle: dict[str, str], metadata: dict[str, Any]) -> None:
        """Queue the line ``display_id`` to show ``bundle``; a later call for the same line replaces it."""
        content = _content(display_id, bundle, metadata)
        with self._ready:
            self._queued.pop(display_id, None)  # to the end: updates go out in the order of their latest change
            self._queued[display_id] = (content, self._publisher.parent_header)
            self._ready.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_forever, name="dagnb-status-lines", daemon=True)
            self._thread.start()

    def show(self, display_id: str, bundle: dict[str, str], metadata: dict[str, Any]) -> None:
        """Display a new line ``display_id`` now, after the updates queued before it.

        A new output must come after what the cell printed before it, so the
        streams are flushed first, unless they hold nothing (ipykernel's own
        ``publish`` flushes both every time: a round trip to its I/O thread).
        """
        if not all(_quiet(stream) for stream in (sys.stdout, sys.stderr)):
            sys.stdout.flush()
            sys.stderr.flush()
        with self._sending:
            self._send_queued()
            self._send("display_data", _content(display_id, bundle, metadata), self._publisher.parent_header)

    def flush(self) -> None:
        """Send every queued update now (after the batch being sent, if any)."""
        with self._sending:
            self._send_queued()

    def _send_queued(self) -> None:
        with self._ready:
            queued, self._queued = self._queued, {}
        if queued:
            self._send_all([("update_display_data", content, parent) for content, parent in queued.values()])

    def _send(self, kind: str, content: dict[str, Any], parent: dict[str, Any]) -> None:
        self._send_all([(kind, content, parent)])

    def _send_all(self, messages: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """Send ``messages`` (kind, content, parent header) in order: one hand-off to the I/O thread for them all.

        ipykernel's socket hands each message to its I/O thread on its own (a
        wake-up of that thread each); a batch is serialized here and written
        by one call the I/O thread runs. Where that thread cannot be used, each
        message goes through the session as ipykernel sends it.
        """
        session, socket, topic = self._publisher.session, self._publisher.pub_socket, self._publisher.topic
        io = self._io_thread(socket)
        if io is None:
            for kind, content, parent in messages:
                session.send(socket, session.msg(kind, content, parent=parent), ident=topic)
            return
        frames = [
            session.serialize(session.msg(kind, content, parent=parent), ident=topic)
            for kind, content, parent in messages
        ]
        io.schedule(functools.partial(_write, io.socket, frames))

    def _io_thread(self, socket: Any) -> Any:
        """ipykernel's I/O thread behind ``socket``, if a batch can be handed to it from this process; else None."""
        io = getattr(socket, "io_thread", None)
        thread = getattr(io, "thread", None)
        usable = (
            os.getpid() == self._pid  # a forked child goes through ipykernel's own send, which pipes to its parent
            and callable(getattr(io, "schedule", None))
            and getattr(io, "socket", None) is not None
            and thread is not None
            and thread.is_alive()
            and not getattr(self._publisher.session, "adapt_version", None)  # ipykernel's send adapts; serialize not
        )
        return io if usable else None

    def _send_forever(self) -> None:
        while True:
            with self._ready:
                while not self._queued:
                    self._ready.wait()
            time.sleep(self._delay)  # what changes meanwhile is sent once, in its latest state
            try:
                self.flush()
            except Exception:  # noqa: BLE001, S110 - a lost batch: the line's next change, or the cell's end, sends it
                pass


def _content(display_id: str, bundle: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
    return {"data": bundle, "metadata": metadata, "transient": {"display_id": display_id}}


def _write(socket: Any, frames: list[list[bytes]]) -> None:
    """On ipykernel's I/O thread: write each serialized message; a closed socket (the kernel shutting down) ends it
    quietly, so nothing raises into that thread's loop."""
    try:
        for message in frames:
            socket.send_multipart(message)
    except Exception:  # noqa: BLE001, S110 - the kernel is going away: the lines no longer matter
        pass


def _quiet(stream: Any) -> bool:
    """Whether ``stream`` (ipykernel's ``OutStream``) holds no output waiting to be sent; False when unsure."""
    return (
        getattr(stream, "_flush_pending", True) is False and getattr(stream, "_subprocess_flush_pending", True) is False
    )
