"""Hand-overs between a stream's threads: reader -> detection thread -> worker thread.

The reader puts decoded frames into a `Mailbox` that drops its oldest frame when full (a live
source never waits); the detection thread hands each prepared frame to the worker thread
through a queue of `HANDOFF_SIZE`, waiting while the worker is busy.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable

from faceveil.stream.engine import Prepared
from faceveil.stream.sources import CapturedFrame


class Mailbox:
    """Bounded hand-over from the reader: a full box drops its oldest frame."""

    def __init__(self, size: int, dropped: Callable[[CapturedFrame], None]) -> None:
        self._items: deque[CapturedFrame] = deque()
        self._size = size
        self._cond = threading.Condition()
        self._dropped = dropped
        self.closed = False

    def put(self, item: CapturedFrame) -> None:
        """Add ``item``; when the box is full, its oldest frame is dropped first."""
        with self._cond:
            if len(self._items) >= self._size:
                self._dropped(self._items.popleft())
            self._items.append(item)
            self._cond.notify()

    def close(self) -> None:
        """No more frames will come: a waiting `get` returns."""
        with self._cond:
            self.closed = True
            self._cond.notify()

    def get(self, timeout: float) -> CapturedFrame | None:
        """The next frame; None on timeout or when closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self.closed, timeout)
            return self._items.popleft() if self._items else None


#: Prepared frames that may wait between the detection thread and the worker thread.
HANDOFF_SIZE = 1
#: What the detection thread hands over: a prepared frame, None at the end, or its error.
Handoff = tuple[CapturedFrame, Prepared] | BaseException | None


def hand_over(handoff: queue.Queue[Handoff], item: Handoff, ended: threading.Event) -> None:
    """Put ``item`` for the worker loop, waiting while it is busy; give up once it has ended."""
    while not ended.is_set():
        try:
            handoff.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
