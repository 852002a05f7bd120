"""The other Agno tables of a copy (memories, evals, knowledge, ...) copied in a second process, beside
the sessions and runs (``move.copy``).

A copy's sessions and runs keep one core busy with the client's work. The other tables of a head
source do not depend on them: ``move.tables`` only reads the source and writes its own tables, each
with its own checkpoint. So, on a target that takes two writers at once (a server, not an embedded
file), a second process copies them meanwhile, on the second core.

* **Started** only when it pays (:func:`start`): a head source whose other tables hold at least
  :data:`WORTH_ROWS` rows (starting a process costs ~0.25 s); else ``move.copy`` copies them after the
  sessions, in its own process. A new interpreter: the child inherits no connection or thread of the parent.
* **Its outcome** comes back through a pipe: the ``TablesCopied`` report, or the error it raised,
  raised again in the parent as the same class (message and exit code kept; an error that cannot
  cross as it is becomes one line naming its class). Secrets are masked in the child as in the parent.
* **It yields to the sessions' copy**: it runs at a lower scheduling priority (:data:`NICE`). The sessions' copy
  (one process, busy on one core) and the server parsing its rows are the copy's critical path; the other tables
  have slack, so on a machine with no idle core the second process takes what they leave instead of slowing them
  (measured: benchmarks/results/copy-aside-nice-2026-12-04.md).
* **It ends with the parent**: it watches its parent's pid and exits once the parent is gone (a killed
  copy leaves no orphan writing); the parent ends it when its own part fails. What it wrote is
  checkpointed per batch: the next run resumes it (``move.tables``' resume rules).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from typing import Any

from agno_migrate.backends import dialect_of
from agno_migrate.errors import DatabaseFailure
from agno_migrate.target import Target

WORTH_ROWS = 5000
"""Rows the other tables must hold at least for a second process to pay (measured: benchmarks/bench_copy.py)."""
NICE = 10
"""How much the second process lowers its priority (``os.nice``): see the module docstring."""
WATCH_SECONDS = 0.2
"""How often the child looks whether its parent is still there."""


def start(source: Any, target: Target, if_exists: str | None, batch: int) -> Aside | None:
    """The other tables' copy started in a second process (``source``: a ``move.source.Source``), or
    None when it does not pay or cannot run beside the sessions' copy (then ``move.copy`` copies them
    after the sessions)."""
    if os.name != "posix" or dialect_of(target).embedded or not source.at_head:  # (posix: pass_fds)
        return None
    if not _worth(source.target, target):
        return None
    return Aside(source.target, target, {"if_exists": if_exists, "batch": batch})


def _worth(src: Target, dst: Target) -> bool:
    from agno_migrate.move.table_io import side
    from agno_migrate.move.tables import plan

    reader = side(src)
    left = WORTH_ROWS
    for p in plan(src, dst):
        for source in p.sources:
            if not source.sessions:
                left -= reader.rows_up_to(source.table, left)
                if left <= 0:
                    return True
    return False


class Aside:
    """``move.tables.copy_tables(src, dst, **options)`` running in a second process
    (a new interpreter on the parent's ``sys.path``: unlike ``multiprocessing``'s spawn, it never
    imports the caller's ``__main__`` again)."""

    def __init__(self, src: Target, dst: Target, options: dict):
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(child_command(write_end), stdin=subprocess.PIPE, pass_fds=(write_end,))
        finally:
            os.close(write_end)
        self._answer = os.fdopen(read_end, "rb")
        with self._process.stdin as ask:
            pickle.dump((src, dst, options, os.getpid()), ask)

    def result(self) -> Any:
        """Wait for it: its report (``TablesCopied``), or the error it raised, raised here."""
        try:
            kind, value = pickle.load(self._answer)
        except (EOFError, pickle.UnpicklingError):  # (it died before it answered, or while it did)
            raise DatabaseFailure(
                f"the copy of the other tables stopped (exit code {self._process.wait()}): "
                "run the copy again to resume it"
            ) from None
        finally:
            self._answer.close()
        self._process.wait()
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        """End it (the parent's part failed): what it committed stays, resumed by the next run."""
        if self._process.poll() is None:
            self._process.terminate()
        self._process.wait()
        self._answer.close()


def child_command(answer_fd: int) -> list[str]:
    """The second process's command line: :func:`_child` in a new interpreter on this one's ``sys.path``."""
    boot = f"import sys; sys.path[:] = {sys.path!r}; from {__name__} import _child; _child({answer_fd})"
    return [sys.executable, "-c", boot]


def _child(answer_fd: int) -> None:
    """The second process: the copy asked on stdin, its outcome written to ``answer_fd``."""
    os.nice(NICE)
    with os.fdopen(answer_fd, "wb") as answer:
        try:
            from agno_migrate.credentials import remember
            from agno_migrate.move.tables import copy_tables

            src, dst, options, parent = pickle.load(sys.stdin.buffer)
            threading.Thread(target=_watch, args=(parent,), daemon=True).start()
            remember(src.url)
            remember(dst.url)
            outcome = ("done", copy_tables(src, dst, **options))
        except BaseException as exc:  # (each raised again in the parent: no traceback here)
            outcome = ("error", _portable(exc))
        pickle.dump(outcome, answer)


def _watch(parent: int) -> None:
    """Exit once the parent is gone (killed): no orphan goes on writing."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as it can cross to the parent: itself when it pickles back, else one line of its class
    and message (masked), as the CLI would print it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        from agno_migrate.credentials import redact

        return RuntimeError(redact(f"{exc.__class__.__name__}: {exc}"))
