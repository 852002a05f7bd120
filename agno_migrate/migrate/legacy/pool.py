"""Where the Agno 1.x import converts its rows: in worker processes (``legacy_worker.serve``), or
inline (one core, a small import, or no interpreter to start).

Both take tasks by name (``legacy_worker.TASKS``) and give a ``Future`` per task.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future

from agno_migrate.migrate.legacy import worker as legacy_worker

MAX_WORKERS = 4  # conversion processes at most: beyond that the single writer is the bottleneck


class Inline:
    """Conversion in this process (one core, or a small import)."""

    parallel = False
    count = 1

    def ready(self):
        return self

    @staticmethod
    def submit(name: str, *args) -> Future:
        future: Future = Future()
        future.set_result(legacy_worker.TASKS[name](*args))
        return future


# A worker: imports what the importer imports (its sys.path), then serves
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "from agno_migrate.migrate.legacy.worker import serve; serve(int(sys.argv[1]))"
)


class Workers:
    """Worker processes (``legacy_worker.serve``): tasks go round-robin, each worker answers its
    own in order; a thread per worker receives the answers as they come (so a worker never waits
    on a full pipe while this process waits to send it the next task)."""

    parallel = True

    def __init__(self, count: int):
        self.count = count
        self._procs: list[subprocess.Popen] = []
        self._pending: list[deque] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._next = 0
        self._started: list[Future] = []

    def start(self) -> bool:
        """Start the worker processes (without waiting for them: see :meth:`ready`)."""
        if not sys.executable:
            return False
        path = json.dumps([entry for entry in sys.path if isinstance(entry, str)])
        try:
            for _ in range(self.count):
                proc = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, str(os.getpid()), path],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    bufsize=0,
                )
                self._started.append(Future())  # completed by the worker's "ready"
                pending: deque = deque([self._started[-1]])
                thread = threading.Thread(
                    target=self._receive, args=(proc, pending), daemon=True, name="agno-migrate-worker-answers"
                )
                self._procs.append(proc)
                self._pending.append(pending)
                self._threads.append(thread)
                thread.start()
        except OSError:  # no interpreter to start
            self.close(kill=True)
            return False
        return True

    def ready(self, timeout: float = 30.0):
        """These workers once they all answered; when one cannot start, inline conversion instead
        (the workers stopped)."""
        if all(_answer(future, timeout) == "ready" for future in self._started):
            return self
        self.close(kill=True)
        return Inline()

    def _receive(self, proc: subprocess.Popen, pending: deque) -> None:
        while True:
            try:
                status, value = legacy_worker.receive(proc.stdout.fileno())
            except Exception:  # noqa: BLE001 - closed, killed, or an answer that cannot be read
                break
            with self._lock:
                future = pending.popleft()
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)
        with self._lock:
            stopped = [f for f in pending if f is not None]
            pending.clear()
            pending.append(None)  # marks the worker gone: later submits fail at once
        code = proc.poll()
        for future in stopped:
            future.set_exception(RuntimeError(f"an Agno 1.x conversion worker stopped (exit status {code})"))

    def submit(self, name: str, *args) -> Future:
        index = self._next % self.count
        self._next += 1
        future: Future = Future()
        with self._lock:
            gone = None in self._pending[index]
            if not gone:
                self._pending[index].append(future)
        if gone:
            future.set_exception(RuntimeError("an Agno 1.x conversion worker stopped"))
            return future
        try:
            legacy_worker.send(self._procs[index].stdin.fileno(), (name, args))
        except OSError:  # it died: its receiving thread fails the future
            pass
        return future

    def close(self, kill: bool = False) -> None:
        for proc in self._procs:
            if kill:
                proc.kill()
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        for proc in self._procs:
            with contextlib.suppress(OSError):
                proc.stdout.close()


def _answer(future: Future, timeout: float):
    try:
        return future.result(timeout)
    except Exception:  # noqa: BLE001 - a worker that cannot start: conversion runs inline instead
        return None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def converter(parallel: bool = True):
    """Worker processes (started now: call ``ready()`` on what this yields before the first task),
    or inline conversion when ``parallel`` is false, with one core, or no usable interpreter. The
    workers are stopped on the way out (killed when an exception leaves)."""
    count = min(cpu_count(), MAX_WORKERS)
    if count < 2 or not parallel:
        yield Inline()
        return
    workers = Workers(count)
    if not workers.start():
        yield Inline()
        return
    failed = True
    try:
        yield workers
        failed = False
    finally:
        workers.close(kill=failed)
