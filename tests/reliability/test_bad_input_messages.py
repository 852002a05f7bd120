"""Poor messages and behaviour (issue 15), each a usage or connection error of one line with its
documented exit code, never a traceback: lock timeouts that are not numbers of seconds (and one that
is honoured within a second), global options after the command, a missing MySQL database, a bad
port, a SQLite file that cannot be opened or created, system schemas, and SQLite's WAL mode said."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import agno_migrate
from agno_migrate.errors import LockTimeout, UsageError
from agno_migrate.target import Target

from .support import cli, holding, load_point, note_case, one_line, succeeded

# --- --lock-timeout, --lock-lease ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "-0.5", "NaN"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_lock_timeout_that_is_no_number_of_seconds(value, where, tmp_path):
    note_case(f"--lock-timeout {value}")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    args = ["--lock-timeout", value, "upgrade"] if where == "before" else ["upgrade", "--lock-timeout", value]
    line = one_line(cli(*args, url=url, cwd=tmp_path), 2)
    assert "--lock-timeout" in line and "seconds" in line, line
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="lock_timeout"):
        Target.from_url(url, lock_timeout=float(value))


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_lock_lease_that_is_no_number_of_seconds_above_zero(value, tmp_path):
    note_case(f"--lock-lease {value}")
    line = one_line(cli("--lock-lease", value, "current", url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path), 2)
    assert "--lock-lease" in line and "above 0" in line, line
    with pytest.raises(UsageError, match="lock_lease"):
        Target.from_url("mongodb://127.0.0.1/agno", lock_lease=float(value))


def test_a_lock_timeout_of_zero_is_accepted(tmp_path):
    succeeded(cli("current", "--lock-timeout", "0", url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path))


def test_the_lock_timeout_is_honoured_within_a_second(rdb, backend, tmp_path):
    """Another upgrade holds the lock mid-step: a library upgrade with lock_timeout=3 gives up
    (LockTimeout) after 3 s and before 4 s (timed in this process: no interpreter start counted)."""
    note_case("--lock-timeout honoured within a second")
    db = rdb(backend)
    load_point(db, "2.0.0", generated=100, copies=1)
    with holding(db.url, cwd=tmp_path):
        target = Target.from_url(db.url, lock_timeout=3)
        agno_migrate.current(target)  # connected and loaded: the wait alone is timed below
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            agno_migrate.upgrade(target)
        waited = time.monotonic() - started
    assert 3 <= waited < 4, f"waited {waited:.2f}s for a 3s lock timeout"


# --- global options after the command ------------------------------------------------------------


def test_global_options_after_the_command(tmp_path):
    note_case("global options after the command")
    db = tmp_path / "x.db"
    url = f"sqlite:///{db}"
    succeeded(cli("upgrade", "-q", url=url, cwd=tmp_path))
    after = succeeded(cli("current", "--json", url=url, cwd=tmp_path))
    before = succeeded(cli("--json", "current", url=url, cwd=tmp_path))
    assert json.loads(after.out) == json.loads(before.out) and json.loads(after.out)["version"]
    named = succeeded(cli("current", "--db-url", url, "--session-table", "other", "-v", cwd=tmp_path))
    assert "no other table" in named.out, named.out
    quiet = succeeded(cli("check", "-q", url=url, cwd=tmp_path))
    assert quiet.out == quiet.err == ""
    assert "agno_sessions" in succeeded(cli("check", "-v", env=None, url=url, cwd=tmp_path)).out
    # the environment does not override an option given after the command
    from .support import clean_env

    env = clean_env(AGNO_DB_URL=f"sqlite:///{tmp_path / 'other.db'}")
    assert (
        str(db)
        in json.loads(succeeded(cli("current", "--json", "--db-url", url, env=env, cwd=tmp_path)).out)["database"]
    )
    line = one_line(cli("current", "--table", "nonsense", url=url, cwd=tmp_path), 2)
    assert "FAMILY=NAME" in line


# --- connection and URL messages -----------------------------------------------------------------


@pytest.mark.backends("mysql")
def test_missing_mysql_database_exits_5(rdb, backend, tmp_path):
    note_case("missing MySQL database (--db-schema)")
    url = rdb(backend).url
    for command in ("current", "upgrade", "check", "stamp 3.0.1"):
        line = one_line(cli("--db-schema", "amt_no_such_db", *command.split(), url=url, cwd=tmp_path), 5)
        assert "amt_no_such_db does not exist" in line and "CREATE DATABASE" in line, line
    with pytest.raises(agno_migrate.ConnectFailed, match="does not exist"):
        agno_migrate.upgrade(Target.from_url(url, schema="amt_no_such_db"))


@pytest.mark.parametrize(
    "url, says",
    [
        ("postgresql://postgres@127.0.0.1:abc/x", "port must be a number"),
        ("mysql://root@127.0.0.1:99999/x", "port 99999"),
        ("postgresql://postgres@127.0.0.1:5432/postgres?port=x", "port"),
    ],
)
def test_bad_port(url, says, tmp_path):
    note_case(f"bad port {url}")
    line = one_line(cli("current", url=url, cwd=tmp_path), 2)
    assert says in line and "ValueError" not in line and "unexpected" not in line, line


@pytest.fixture
def immutable_dir(tmp_path):
    """A directory nobody can create files in, root included (chattr +i), holding a database Agno's
    way (WAL mode) and no other file."""
    directory = tmp_path / "ro"
    directory.mkdir()
    succeeded(cli("stamp", "3.0.1", url=f"sqlite:///{directory / 'agno.db'}", cwd=tmp_path))
    assert sorted(p.name for p in directory.iterdir()) == ["agno.db", "agno.db-agno-migrate.lock"]
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem does not take chattr +i ({made.stderr.strip()})")
    yield directory
    subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_sqlite_file_that_cannot_be_created_or_opened(immutable_dir, tmp_path):
    note_case("SQLite in a read-only directory")
    line = one_line(cli("upgrade", url=f"sqlite:///{immutable_dir / 'new.db'}", cwd=tmp_path), 5)
    assert "cannot create new.db" in line and "not writable" in line, line
    for command in ("upgrade", "current"):
        line = one_line(cli(command, url=f"sqlite:///{immutable_dir / 'agno.db'}", cwd=tmp_path), 5)
        assert "WAL" in line and "writable" in line and "unable to open database file" not in line, line
    line = one_line(cli("upgrade", url=f"sqlite:///{tmp_path / 'nodir' / 'x.db'}", cwd=tmp_path), 5)
    assert "does not exist" in line and "nodir" in line, line


# --- system schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend, schema",
    [("postgresql", "information_schema"), ("postgresql", "pg_catalog"), ("postgresql", "pg_toast"),
     ("mysql", "information_schema"), ("mysql", "mysql"), ("mysql", "performance_schema"), ("mysql", "sys"),
     ("mysql", "MySQL"), ("mongodb", "admin"), ("mongodb", "local"), ("mongodb", "config")],
)  # fmt: skip
def test_system_schema_refused(rdb, backend, schema, tmp_path):
    note_case(f"--db-schema {schema}")
    url = rdb(backend).url
    for command in ("upgrade", "stamp 3.0.1", "current"):
        line = one_line(cli("--db-schema", schema, *command.split(), url=url, cwd=tmp_path), 2)
        assert f"{schema} is a system" in line and "--db-schema" in line, line
    with pytest.raises(UsageError, match="system"):
        agno_migrate.connect(url, db_schema=schema)


@pytest.mark.backends("mysql")
def test_mysql_url_naming_a_system_database_refused(rdb, backend, tmp_path):
    url = rdb(backend).url.rsplit("/", 1)[0] + "/mysql"
    line = one_line(cli("upgrade", url=url, cwd=tmp_path), 2)
    assert "mysql is a system database" in line, line


# --- SQLite's WAL mode ----------------------------------------------------------------------------


def test_upgrade_v_says_sqlite_stays_in_wal_mode(tmp_path):
    import sqlite3

    note_case("SQLite left in WAL mode, said")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    out = succeeded(cli("upgrade", "-v", url=url, cwd=tmp_path)).out
    assert "WAL mode for good" in out, out
    assert "WAL" not in succeeded(cli("upgrade", url=url, cwd=tmp_path)).out
    with sqlite3.connect(tmp_path / "x.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
