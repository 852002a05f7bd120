"""Retrying with growing pauses: the one loop behind every wait of this package (the SQL migration
locks, the MongoDB leases, the MongoDB store's retried transactions, the online upgrade's DDL under a
short lock timeout).

A :class:`Backoff` says how the pauses grow: the first one, the factor, the ceiling, and whether each
pause is drawn at random below its value, so that many waiters spread out instead of retrying in
step. (A dozen lines of our own: tenacity would be a dependency for the same loop.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

NO_JITTER = "none"
HALF_JITTER = "half"  # uniform(pause / 2, pause)
FULL_JITTER = "full"  # uniform(0, pause)


@dataclass(frozen=True)
class Backoff:
    """Pauses of ``first`` seconds, each ``factor`` times the one before, at most ``cap``."""

    first: float
    cap: float
    factor: float = 2.0
    jitter: str = NO_JITTER

    def pauses(self) -> Iterator[float]:
        """The pauses, one per retry, without end (with their jitter drawn)."""
        pause = self.first
        while True:
            if self.jitter == FULL_JITTER:
                yield random.uniform(0, pause)
            elif self.jitter == HALF_JITTER:
                yield random.uniform(pause / 2, pause)
            else:
                yield pause
            pause = min(pause * self.factor, self.cap)


def until(attempt: Callable[[], T], backoff: Backoff, timeout: float, give_up: Callable[[], BaseException]) -> T:
    """Call ``attempt`` until it returns a true value, and return that value; between calls, sleep
    the next pause of ``backoff``. Once ``timeout`` seconds have passed since the first call, a
    failed attempt raises ``give_up()`` instead. Errors raised by ``attempt`` propagate at once."""
    deadline = time.monotonic() + timeout
    pauses = backoff.pauses()
    while True:
        got = attempt()
        if got:
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            raise give_up()
        time.sleep(min(next(pauses), left))  # the last pause ends at the deadline: one more attempt


def pacer(backoff: Backoff) -> Callable[[], None]:
    """A function to call before each attempt of a loop that someone else drives (pymongo's
    ``with_transaction``): the first call returns at once, each later one sleeps the next pause."""
    pauses = backoff.pauses()
    started = False

    def pace() -> None:
        nonlocal started
        if started:
            time.sleep(next(pauses))
        started = True

    return pace


def bounded(
    attempt: Callable[[], T],
    backoff: Backoff,
    retries: int,
    retryable: Callable[[BaseException], bool],
    give_up: Callable[[], BaseException],
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``attempt`` and return what it returns; when it raises an error that ``retryable`` accepts,
    call ``on_retry(error)``, sleep the next pause of ``backoff`` and call it again, at most ``retries``
    times; after that, raise ``give_up()``. Other errors propagate at once."""
    pauses = backoff.pauses()
    for number in range(retries + 1):
        try:
            return attempt()
        except Exception as exc:
            if not retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc)
            if number == retries:
                break
        time.sleep(next(pauses))
    raise give_up()
