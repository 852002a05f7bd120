"""The project's reference Agno environment: a virtual environment holding exactly
``requirements-agno-3.1.10.txt`` (the real Agno 3.1.10 and the drivers of its SqliteDb / PostgresDb /
MySQLDb / MongoDb), built once and cached, and the way to run our Agno-side scripts in it.

    from agno_side.env import agno_python, verify    # tests/ on sys.path (as pytest puts it)
    python tests/agno_side/env.py                    # build it (tox -e agno), print its python

The environment lives in ``$AGNO_MIGRATE_CACHE/agno-<version>-<hash of the requirements file>``
(default ``~/.cache/agno-migrate``): editing the requirements file makes a new one. Building it takes a
file lock beside it, so pytest processes and benchmarks started together build it once; a build
that was interrupted is thrown away and done again. Standard library only: ``tox -e agno`` runs it
with nothing installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGNO_VERSION = "3.1.10"
REQUIREMENTS = HERE / f"requirements-agno-{AGNO_VERSION}.txt"
SESSIONS_SCRIPT = HERE / "agno_sessions.py"  # read/write sessions with Agno's own classes
VERIFY_SCRIPT = HERE / "agno_verify.py"  # compare what Agno reads with a fixture's expected file
TABLES_SCRIPT = HERE / "agno_tables.py"  # every other table type read/written by Agno; its MigrationManager
BUILD_TIMEOUT = 1200  # seconds for venv + pip install (about 20 s with a warm pip cache)
READY = ".agno-migrate-ready"  # written last: the environment is complete


class BuildError(RuntimeError):
    """The reference environment could not be built (the pip log is named)."""


def cache_root() -> Path:
    if os.environ.get("AGNO_MIGRATE_CACHE"):
        return Path(os.environ["AGNO_MIGRATE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "agno-migrate"


def requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


def env_dir() -> Path:
    return cache_root() / f"agno-{AGNO_VERSION}-{requirements_hash()}"


def _ready(venv: Path) -> bool:
    marker = venv / READY
    return (venv / "bin" / "python").exists() and marker.exists() and marker.read_text() == requirements_hash()


def agno_python() -> Path:
    """The reference environment's python, building the environment first if needed."""
    venv = env_dir()
    if not _ready(venv):
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.parent / f"{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not _ready(venv):  # another process may have built it while we waited
                shutil.rmtree(venv, ignore_errors=True)  # what an interrupted build left
                _build(venv)
    return venv / "bin" / "python"


def _build(venv: Path) -> None:
    log = venv.parent / f"{venv.name}.log"
    python = venv / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        [str(python), "-c", f"import agno.db.sqlite, agno.db.postgres, agno.db.mysql, agno.db.mongo; "
                            f"from importlib.metadata import version; assert version('agno') == {AGNO_VERSION!r}"],
    ]  # fmt: skip
    with log.open("w") as out:
        for cmd in steps:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            try:
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                out.write(f"\ntimed out after {BUILD_TIMEOUT} s\n")
                done = None
            if done is None or done.returncode != 0:
                out.flush()
                tail = log.read_text(errors="replace")[-2000:]
                raise BuildError(f"building the Agno {AGNO_VERSION} environment in {venv} failed (see {log}):\n{tail}")
    (venv / READY).write_text(requirements_hash())


def clean_env() -> dict:
    """This process's environment without what would make the other python see our packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def run(script: Path | str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run one of our Agno-side scripts with the reference environment's python."""
    cmd = [str(agno_python()), str(script), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())


@dataclass
class Verification:
    """What agno_verify.py found: ``ok`` only with every expected session read and nothing differing."""

    returncode: int
    summary: str  # the verifier's last line: "verified X/Y sessions, Z mismatches"
    report: dict = field(default_factory=dict)  # its JSON report (see agno_verify.py)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.report.get("mismatching_sessions") == 0

    @property
    def categories(self) -> dict:
        """Mismatching sessions per category (empty when ``ok``)."""
        return self.report.get("categories", {})


def verify(
    db: str | Path,
    expected: str | Path,
    *,
    schema: str | None = None,
    session_table: str = "agno_sessions",
    runs_table: str = "agno_runs",
    ignore: tuple[str, ...] = (),
    sample: int | None = None,
    timeout: float = 900,
) -> Verification:
    """Read ``db`` (a SQLite file, or a sqlite/postgresql/mysql/mongodb URL) with Agno 3.1.10's own
    classes and compare it with ``expected`` (a fixture's expected file, .jsonl or .jsonl.xz).
    ``schema``: the PostgreSQL schema, the MySQL database, or the MongoDB database."""
    with tempfile.TemporaryDirectory(prefix="agno-verify-") as tmp:
        report_path = Path(tmp) / "report.json"
        args = ["--db", str(db), "--expected", str(expected), "--report", str(report_path)]
        args += ["--session-table", session_table, "--runs-table", runs_table]
        if schema:
            args += ["--schema", schema]
        if ignore:
            args += ["--ignore", ",".join(ignore)]
        if sample is not None:
            args += ["--sample", str(sample)]
        done = run(VERIFY_SCRIPT, *args, timeout=timeout)
        report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-500:]
    return Verification(done.returncode, summary, report, done.stdout[-6000:] + done.stderr[-3000:])


def agno_tables(action: str, request: dict, timeout: float = 900) -> tuple[dict, str]:
    """Run agno_tables.py ``action`` ("verify" or "migrate") on ``request``: (its JSON result, its output)."""
    with tempfile.TemporaryDirectory(prefix="agno-tables-") as tmp:
        request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_path.write_text(json.dumps(request), encoding="utf-8")
        done = run(TABLES_SCRIPT, action, str(request_path), str(result_path), timeout=timeout)
        output = done.stdout[-8000:] + done.stderr[-4000:]
        if done.returncode != 0 or not result_path.exists():
            raise AssertionError(f"agno_tables.py {action} failed (exit {done.returncode}):\n{output}")
        return json.loads(result_path.read_text(encoding="utf-8")), output


if __name__ == "__main__":
    print(agno_python())
