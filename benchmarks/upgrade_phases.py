"""Where one ``agno-migrate`` run spends its time: wall time per phase of the runner (the SQL backend's methods:
each session step by version, the other tables' upgrade, ...) and SQL time per phase and statement (SQLAlchemy
cursor events; an executemany counts once per call). No profiler: the figures are the program's own speed.

    python benchmarks/upgrade_phases.py OUT.txt --db-url URL -q upgrade

Everything after OUT.txt is agno-migrate's command line. Used to read bench_whole_upgrade.py's figures (see
results/whole-upgrade-*.md); the time between the end of the command and the end of the process (interpreter
shutdown, SQLite's WAL checkpoint when the last connection closes) is the process's wall time minus the two
figures on OUT.txt's first line.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import collections  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

PHASES = (
    "read_state",
    "legacy_state",
    "head_drift",
    "other_tables",
    "adopt",
    "run_step",
    "record_step",
    "commit",
    "upgrade_tables",
    "import_legacy",
)
phase = ["start"]
statements: dict = collections.defaultdict(lambda: [0, 0.0])
phases: list[tuple[str, float]] = []


@event.listens_for(Engine, "before_cursor_execute")
def _before(conn, cursor, statement, params, context, executemany):
    conn.info.setdefault("started", []).append(time.perf_counter())


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn, cursor, statement, params, context, executemany):
    took = time.perf_counter() - conn.info["started"].pop()
    key = (phase[0], re.sub(r"\s+", " ", statement)[:120] + (" [executemany]" if executemany else ""))
    statements[key][0] += 1
    statements[key][1] += took


def _timed(owner, name: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        first = args[1] if len(args) > 1 else None
        label = getattr(first, "version", None) if first is not None else None
        previous, phase[0] = phase[0], f"{name} {label}" if label else name
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases.append((phase[0], time.perf_counter() - start))
            phase[0] = previous

    setattr(owner, name, wrapper)


def main() -> None:
    from agno_migrate.cli import run
    from agno_migrate.migrate.backend.sql import SqlBackend

    for name in PHASES:
        if hasattr(SqlBackend, name):
            _timed(SqlBackend, name)
    out = sys.argv.pop(1)
    start = time.perf_counter()
    try:
        run()
    except SystemExit:
        pass
    wall = time.perf_counter() - start
    lines = [
        f"start-up and imports {start - T0:.2f} s; the command {wall:.2f} s; "
        f"SQL {sum(s for _, s in statements.values()):.2f} s",
        "phases (> 5 ms):",
        *(f"  {took:7.3f} s  {name}" for name, took in phases if took > 0.005),
        "SQL per phase and statement (> 5 ms):",
        *(
            f"  {took:7.3f} s {count:5d}x  [{name}] {sql}"
            for (name, sql), (count, took) in sorted(statements.items(), key=lambda kv: -kv[1][1])
            if took > 0.005
        ),
    ]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
