"""The project's reference Agno 3.1.10 environment (tests/agno_side/env.py) and its verifier
(tests/agno_side/agno_verify.py): the environment is built once however many processes ask for it
together, it holds the pinned Agno 3.1.10, and the verifier, given a database that differs from the
expected file, says where — it is able to fail."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from agno_side import env
from conftest import FIXTURES

import agno_migrate

EXPECTED = FIXTURES / "v1" / "expected.jsonl.xz"


# --- the environment --------------------------------------------------------------------------------


def test_concurrent_callers_build_the_environment_once(tmp_path, monkeypatch):
    """Many callers at once (threads here; each opens the lock file on its own, as processes do):
    one builds, the others wait for it and use what it built; a build left incomplete is redone."""
    monkeypatch.setenv("AGNO_MIGRATE_CACHE", str(tmp_path / "cache"))
    builds = []

    def fake_build(venv):
        builds.append(venv)
        time.sleep(0.3)  # long enough for every other caller to be waiting on the lock
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("")
        (venv / env.READY).write_text(env.requirements_hash())

    monkeypatch.setattr(env, "_build", fake_build)
    results = []
    threads = [threading.Thread(target=lambda: results.append(env.agno_python())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(results) == 8 and len(set(results)) == 1
    assert results[0] == tmp_path / "cache" / f"agno-{env.AGNO_VERSION}-{env.requirements_hash()}" / "bin" / "python"

    (results[0].parent.parent / env.READY).unlink()  # as if a build had been interrupted
    env.agno_python()
    assert len(builds) == 2


@pytest.mark.agno
def test_the_environment_holds_the_pinned_agno():
    code = "import json; from importlib.metadata import distributions as d; print(json.dumps({x.metadata['Name'].lower(): x.version for x in d()}))"
    done = env.run("-c", code)
    assert done.returncode == 0, done.stderr
    installed = json.loads(done.stdout)
    pins = {
        name.lower().replace("_", "-"): version
        for name, version in (
            line.split("==") for line in env.REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")
        )
    }
    installed = {name.replace("_", "-"): version for name, version in installed.items()}
    assert installed["agno"] == env.AGNO_VERSION == "3.1.10"
    assert {name: installed.get(name) for name in pins} == pins


# --- the verifier is able to fail ----------------------------------------------------------------------


def upgraded_v1(tmp_path):
    """The Agno 1.x fixture (SQLite), upgraded by agno-migrate: 200 sessions Agno 3.1.10 reads as expected."""
    path = tmp_path / "v1.db"
    path.write_bytes(__import__("lzma").decompress((FIXTURES / "v1" / "sqlite.db.xz").read_bytes()))
    agno_migrate.upgrade(f"sqlite:///{path}")
    return path


class Alter:
    """Deliberate changes to an upgraded SQLite database, each on a session of its own."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path)
        self.used: set[str] = set()
        self.altered: dict[str, list[str]] = {}  # category -> session ids

    def pick(self, where: str, table: str = "agno_sessions s") -> str:
        query = f"SELECT DISTINCT s.session_id FROM {table} WHERE {where} ORDER BY s.session_id"
        sid = next(row[0] for row in self.conn.execute(query) if row[0] not in self.used)
        self.used.add(sid)
        return sid

    def session(self, category: str, where: str, update: str) -> None:
        sid = self.pick(where)
        self.conn.execute(f"UPDATE agno_sessions SET {update} WHERE session_id = ?", (sid,))
        self.altered.setdefault(category, []).append(sid)

    def run(self, category: str, where: str, update: str) -> None:
        """Change the first run of a session matching ``where`` (``r``: the runs table)."""
        sid = self.pick(where, "agno_sessions s JOIN agno_runs r ON r.session_id = s.session_id")
        run_id = self.conn.execute(
            f"SELECT r.run_id FROM agno_runs r WHERE r.session_id = ? AND {where} ORDER BY r.run_index", (sid,)
        ).fetchone()[0]
        self.conn.execute(f"UPDATE agno_runs SET {update} WHERE run_id = ?", (run_id,))
        self.altered.setdefault(category, []).append(sid)


@pytest.mark.agno
def test_the_verifier_finds_every_kind_of_change(tmp_path):
    path = upgraded_v1(tmp_path)
    intact = env.verify(path, EXPECTED)
    assert intact.ok and intact.summary == "verified 200/200 sessions, 0 mismatches", intact.output

    a = Alter(path)
    with a.conn:
        sid = a.pick("EXISTS (SELECT 1 FROM agno_runs r WHERE r.session_id = s.session_id)")
        a.conn.execute("DELETE FROM agno_runs WHERE session_id = ?", (sid,))
        a.conn.execute("DELETE FROM agno_sessions WHERE session_id = ?", (sid,))
        a.altered["missing"] = [sid]
        a.session("user_id", "user_id IS NOT NULL", "user_id = user_id || '-changed'")
        a.session("entity_id", "session_type = 'agent'", "agent_id = 'agent-other'")
        a.session("created_at", "1", "created_at = created_at + 1")
        # a NULL updated_at, which Agno's WorkflowSession replaces by "now": the stored value is compared
        a.session("updated_at", "session_type = 'workflow' AND updated_at IS NULL", "updated_at = 5")
        a.session("session_state", "json_type(session_data, '$.session_state') = 'object'",
                  "session_data = json_set(session_data, '$.session_state.added', 1)")  # fmt: skip
        a.session("session_name", "json_extract(session_data, '$.session_name') IS NOT NULL",
                  "session_data = json_set(session_data, '$.session_name', 'renamed')")  # fmt: skip
        a.session("session_metrics", "json_type(session_data, '$.session_metrics') = 'object'",
                  "session_data = json_set(session_data, '$.session_metrics.input_tokens', 1)")  # fmt: skip
        a.session("metadata", "json_type(metadata) = 'object'", "metadata = json_set(metadata, '$.added', 1)")
        a.session("summary", "json_extract(summary, '$.summary') IS NOT NULL",
                  "summary = json_set(summary, '$.summary', 'another summary')")  # fmt: skip
        a.session(
            "json_encoding", "json_type(metadata) = 'object'", "metadata = json_quote(json_quote(metadata) || '')"
        )
        sid = a.pick("(SELECT count(*) FROM agno_runs r WHERE r.session_id = s.session_id) >= 2")
        a.conn.execute(
            "DELETE FROM agno_runs WHERE run_id = (SELECT run_id FROM agno_runs WHERE session_id = ? "
            "ORDER BY run_index LIMIT 1)",
            (sid,),
        )
        a.altered["runs"] = [sid]
        a.run("run_content", "1", "run_data = json_set(run_data, '$.content', 'altered')")
        a.run("messages", "json_array_length(run_data, '$.messages') >= 2",
              "run_data = json_set(run_data, '$.messages[1].content', 'altered')")  # fmt: skip
        a.run("run_status", "r.status = 'COMPLETED'",
              "status = 'ERROR', run_data = json_set(run_data, '$.status', 'ERROR')")  # fmt: skip
        a.run("run_metrics", "json_extract(run_data, '$.metrics.input_tokens') > 0",
              "run_data = json_set(run_data, '$.metrics.input_tokens', 0)")  # fmt: skip
        a.run("tools", "json_array_length(run_data, '$.tools') >= 1", "run_data = json_remove(run_data, '$.tools[0]')")
        a.run("member_responses", "json_array_length(run_data, '$.member_responses') >= 1",
              "run_data = json_remove(run_data, '$.member_responses[0]')")  # fmt: skip
        a.run("parent_run_id", "r.run_type = 'agent'",
              "parent_run_id = 'elsewhere', run_data = json_set(run_data, '$.parent_run_id', 'elsewhere')")  # fmt: skip
        sid = a.pick("session_type = 'agent'")
        a.conn.execute(
            "INSERT INTO agno_sessions (session_id, session_type, agent_id, user_id, session_data, created_at) "
            "SELECT 'not-expected', session_type, agent_id, user_id, session_data, created_at FROM agno_sessions "
            "WHERE session_id = ?",
            (sid,),
        )
        a.used.discard(sid)  # itself unchanged
        a.altered["extra"] = ["not-expected"]
    a.conn.close()

    found = env.verify(path, EXPECTED)
    assert not found.ok and found.returncode == 1
    altered = {sid for ids in a.altered.values() for sid in ids}
    assert len(altered) == len(a.altered)  # one session per category
    flagged = found.report["session_ids"]
    for category, ids in a.altered.items():
        assert set(ids) <= set(flagged.get(category, ())), (category, ids, found.output)
    # nothing else is flagged: every mismatching session is one we changed
    assert set().union(*map(set, flagged.values())) == altered, found.output
    assert found.report["mismatching_sessions"] == len(altered)
    assert found.summary == f"verified {200 - len(altered) + 1}/200 sessions, {len(altered)} mismatches"

    # a category left out is not reported; the rest still is
    ignoring = env.verify(path, EXPECTED, ignore=("json_encoding", "extra"))
    assert "json_encoding" not in ignoring.categories and "extra" not in ignoring.categories
    assert ignoring.report["mismatching_sessions"] == len(altered) - 2
