"""The other Agno tables copied in a second process beside the sessions and runs
(``agno_migrate.move.tables_aside``): the same rows as the copy made after the sessions, an error of the
second process as the one line (and exit code) the same error gives in one process, no orphan left
writing after a kill, and a re-run that completes. The threshold is lowered so that the table fixture
pack's few rows take the second process."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from test_cli import clean_env
from test_tables_detect import load

import agno_migrate
from agno_migrate import cli
from agno_migrate.errors import DatabaseFailure
from agno_migrate.move import tables_aside
from agno_migrate.move.sink import CHECKPOINT_TABLE, TEST_KILL
from agno_migrate.target import Target

PASSWORD = "Aside:s3cret/pw"


@pytest.fixture
def source(new_database):
    db = new_database("sqlite")
    load(db, "3.1")  # head sessions and runs, and every other table type
    return db


def _beside(monkeypatch, beside: bool) -> list:
    """Take the second process (``beside``) or not; returns the list the started ones are added to."""
    monkeypatch.setattr(tables_aside, "WORTH_ROWS", 1 if beside else 10**9)
    started, real = [], tables_aside.Aside
    monkeypatch.setattr(tables_aside, "Aside", lambda *a: started.append(real(*a)) or started[-1])
    return started


@pytest.mark.parametrize("dst", ["postgresql", "mysql", "mongodb"])
def test_beside_copies_the_same_rows_as_after(new_database, source, dst, monkeypatch):
    after_db, beside_db = new_database(dst), new_database(dst)
    started = _beside(monkeypatch, False)
    after = agno_migrate.copy(source.url, after_db.url, verify=True)
    assert not started
    started = _beside(monkeypatch, True)
    beside = agno_migrate.copy(source.url, beside_db.url, verify=True)
    assert len(started) == 1
    assert after.exit_code == beside.exit_code == 0, beside.as_dict()
    assert beside.verify.equal and beside.tables.as_dict() == after.tables.as_dict()
    assert beside.tables.rows > 300 and len(beside.tables.tables) > 10
    same = agno_migrate.verify(after_db.url, beside_db.url)  # sessions, runs and every other table
    assert same.equal and len(same.tables) > 10, same.as_dict()


def test_an_embedded_target_copies_them_after_the_sessions(new_database, source, monkeypatch):
    started = _beside(monkeypatch, True)
    outcome = agno_migrate.copy(source.url, new_database("sqlite").url, verify=True)
    assert outcome.exit_code == 0 and outcome.tables.rows > 300 and not started


def _tables_held(source, db) -> str:
    """A PostgreSQL target whose other tables hold rows that no copy is resuming (what ``move.tables``
    refuses to write into) and whose sessions and runs are empty (what the sessions' copy accepts);
    returns its URL with a password (trust ignores it)."""
    agno_migrate.copy(source.url, db.url)
    held = Target.from_url(db.url)
    db.execute(
        f"TRUNCATE ai.{held.session_table}, ai.{held.runs_table} CASCADE",
        f"DROP TABLE ai.{CHECKPOINT_TABLE}",
        f"DROP TABLE IF EXISTS ai.{held.version_table}_copy",
    )
    return db.url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@", 1)


def test_an_error_beside_is_the_one_line_and_exit_code_of_the_same_error_after(
    new_database, source, monkeypatch, capfd
):
    lines = {}
    for beside in (False, True):
        url = _tables_held(source, new_database("postgresql"))
        started = _beside(monkeypatch, beside)
        code = cli.main(["--db-url", source.url, "copy", "--to", url])
        out, err = capfd.readouterr()
        assert code == 8 and len(started) == int(beside), (code, err)
        assert "Traceback" not in out + err and PASSWORD not in out + err and quote(PASSWORD, safe="") not in err
        lines[beside] = re.sub(r"/amt_\w+", "/<db>", err).splitlines()  # (each its own database)
    assert len(lines[True]) == 1 and "--if-exists" in lines[True][0], lines
    assert lines[True] == lines[False]


KILLED = """
import sys
from pathlib import Path
from agno_migrate import cli
from agno_migrate.errors import DatabaseFailure
from agno_migrate.move import tables_aside

tables_aside.WORTH_ROWS = 1
real = tables_aside.Aside

def noted(*args):
    aside = real(*args)
    Path(sys.argv[1]).write_text(str(aside._process.pid))
    return aside

tables_aside.Aside = noted
sys.exit(cli.main(["--db-url", sys.argv[2], "copy", "--to", sys.argv[3], "--batch", "2"]))
"""


def _gone(pid: int, within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # (ended, not yet reaped by its new parent)
            return True
        time.sleep(0.1)
    return False


def test_a_killed_copy_leaves_no_second_process_and_resumes(new_database, source, tmp_path):
    target = new_database("postgresql")
    noted = tmp_path / "child.pid"
    env = clean_env(**{TEST_KILL: "3"}, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(noted), source.url, target.url],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    assert _gone(int(noted.read_text()), within=5), "the second process outlived its parent"
    done = agno_migrate.copy(source.url, target.url, verify=True)
    assert done.resumed and done.exit_code == 0 and done.verify.equal, done.as_dict()


def test_a_second_process_that_dies_is_one_error(new_database, source):
    aside = tables_aside.Aside(
        Target.from_url(source.url), Target.from_url(new_database("postgresql").url), {"if_exists": None, "batch": 1}
    )
    aside._process.kill()  # (before it has imported anything: it cannot have answered)
    with pytest.raises(DatabaseFailure, match="exit code -9.*run the copy again"):
        aside.result()


def test_the_second_process_yields_to_the_sessions_copy():
    """It lowers its own priority (``NICE``) before it does anything: read from the process while it waits for its
    task (its stdin held open), then it ends with one error once the task never comes."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(tables_aside.child_command(write_end), stdin=subprocess.PIPE, pass_fds=(write_end,))
    os.close(write_end)
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        deadline = time.monotonic() + 30
        while os.getpriority(os.PRIO_PROCESS, child.pid) == mine and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(mine + tables_aside.NICE, 19)
        assert child.poll() is None  # (still waiting for its task: the priority came first)
    finally:
        child.stdin.close()  # no task: it answers with an error and ends
        with os.fdopen(read_end, "rb") as answer:
            kind, _ = pickle.load(answer)
        child.wait(timeout=30)
    assert kind == "error"
