"""Reading a copy's source one batch ahead of its writing: :func:`read_ahead`.

The source's reading (a query, and the conversion of its rows) runs in a thread while the target
takes the batch before (its server parsing and storing the rows, the commit): the two overlap instead
of waiting on each other. At most ``depth`` batches wait in between, so memory stays flat in the size
of the source; the batches come in the source's order, and an error in the reading is raised where the
batch it stopped would have come.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(batches: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``batches``, produced in a thread up to ``depth`` ahead of their use (see the module
    docstring). Closing the result early (an error in the writing) stops the thread after its current item."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_END, exc))

    thread = threading.Thread(target=produce, name="copy-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = waiting.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()
