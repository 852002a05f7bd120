"""A SQLite URL's read-only intent is honoured (issue 15, bug 7): ``?mode=ro`` and ``?immutable=1`` reach
SQLite (no SAWarning), reads work, every write (upgrade, stamp, downgrade, the store's writes) is refused
with one line and exit 8 before anything changes; the file is never modified. A parameter SQLite does not
know is a usage error."""

from __future__ import annotations

import hashlib

import pytest
from test_cli import cli, failed, ok

import agno_migrate
from agno_migrate.errors import Refused, UsageError
from agno_migrate.sessions import AgentSession
from agno_migrate.target import Target


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("param", ["mode=ro", "immutable=1"])
def test_read_only_url_reads_and_refuses_every_write(new_database, param):
    db = new_database("sqlite")
    ok(cli("upgrade", url=db.url))
    store = agno_migrate.connect(db.url)
    store.upsert_session(AgentSession(session_id="s1", agent_id="a"))
    store.close() if hasattr(store, "close") else None
    before = digest(db.path)
    ro = f"{db.url}?{param}"

    assert "3.0.1 (head; recorded)" in ok(cli("current", url=ro)).out
    ok(cli("check", url=ro))
    assert "Warning" not in cli("check", url=ro).err
    for command in (["upgrade"], ["stamp", "3.0.1"], ["downgrade", "--to", "2.5.0"]):
        line = failed(cli(*command, url=ro), 8)
        assert "opened read-only" in line and "nothing was changed" in line
    with pytest.raises(Refused, match="read-only"):
        agno_migrate.upgrade(ro)
    reader = agno_migrate.connect(ro)
    assert reader.get_session("s1").agent_id == "a"  # reads work
    with pytest.raises(Refused, match="read-only"):
        reader.upsert_session(AgentSession(session_id="s2", agent_id="a"))
    with pytest.raises(Refused, match="read-only"):
        reader.delete_session("s1")
    assert digest(db.path) == before


def test_read_only_on_a_new_file_creates_nothing(new_database, tmp_path):
    path = tmp_path / "absent.db"
    line = failed(cli("upgrade", url=f"sqlite:///{path}?mode=ro"), 8)
    assert "read-only" in line
    assert "no agno_sessions table" in ok(cli("current", url=f"sqlite:///{path}?mode=ro")).out
    assert not path.exists()


def test_sqlite_url_parameters_are_checked():
    assert Target.from_url("sqlite:////x/a.db?mode=ro").read_only
    assert not Target.from_url("sqlite:////x/a.db?mode=rw").read_only
    from sqlalchemy.engine import make_url

    uri = make_url(Target.from_url("sqlite:////x/a.db?mode=ro").driver_url)
    assert (uri.database, dict(uri.query)) == ("file:/x/a.db", {"mode": "ro", "uri": "true"})
    assert not Target.from_url("sqlite:////x/a.db?timeout=3").read_only
    with pytest.raises(UsageError, match="unknown SQLite URL parameter"):
        Target.from_url("sqlite:////x/a.db?mod=ro")
    line = failed(cli("current", url="sqlite:////x/a.db?mode=read"), 2)
    assert "mode=read" in line
