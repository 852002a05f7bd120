"""`agno-migrate sessions list` and `sessions show`, run as the console script on every backend
loaded with the sessions Agno 3.1.10 wrote (tests/fixtures/3.1.10), brought to head."""

from __future__ import annotations

import json

import pytest
from conftest import expected_sessions
from test_cli import as_json, cli, failed, ok

import agno_migrate
from agno_migrate.selection import Selection, parse_since
from agno_migrate.store import browse

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


@pytest.fixture(params=BACKENDS)
def loaded(request, new_database):
    """A database of each backend with the 3.1.10 fixture, upgraded to head (MariaDB's 3.1.10 is 3.0.0)."""
    db = new_database(request.param)
    db.load("3.1.10")
    agno_migrate.upgrade(db.url)
    return db


EXPECTED = expected_sessions("3.1.10", "sqlite")  # (the same sessions on every backend)


def newest_first(sessions: list[dict]) -> list[str]:
    return [s["session_id"] for s in sorted(sessions, key=lambda s: (-s["created_at"], s["session_id"]))]


def test_list_filters_pages_and_orders_newest_first(loaded):
    every = as_json(ok(cli("sessions", "list", "--json", "--limit", "1000", url=loaded.url)))
    assert every["total"] == len(EXPECTED) and every["pages"] == 1
    assert [s["session_id"] for s in every["sessions"]] == newest_first(EXPECTED)
    runs = {s["session_id"]: len(s["runs"]) for s in EXPECTED}
    assert {s["session_id"]: s["runs"] for s in every["sessions"]} == runs

    # paging: the default limit is 20; page 3 holds the 41st to 60th newest
    first = as_json(ok(cli("sessions", "list", "--json", url=loaded.url)))
    third = as_json(ok(cli("--json", "sessions", "list", "--page", "3", url=loaded.url)))
    assert (first["limit"], first["pages"], third["page"]) == (20, -(-len(EXPECTED) // 20), 3)
    assert [s["session_id"] for s in first["sessions"]] == newest_first(EXPECTED)[:20]
    assert [s["session_id"] for s in third["sessions"]] == newest_first(EXPECTED)[40:60]

    # filters: a user, an agent since a date, a session type (each against the fixture's own record)
    user = EXPECTED[1]["user_id"]
    mine = as_json(ok(cli("sessions", "list", "--user-id", user, "--json", url=loaded.url)))
    assert [s["session_id"] for s in mine["sessions"]] == newest_first([s for s in EXPECTED if s["user_id"] == user])
    agent = next(s for s in EXPECTED if s["session_type"] == "agent")["entity_id"]
    since = "2024-01-01"
    picked = [s for s in EXPECTED if s["session_type"] == "agent" and s["entity_id"] == agent
              and s["created_at"] >= parse_since(since)]  # fmt: skip
    found = as_json(ok(cli("sessions", "list", "--agent-id", agent, "--since", since, "--json", url=loaded.url)))
    assert [s["session_id"] for s in found["sessions"]] == newest_first(picked) and picked
    assert found["filters"] == {"agent_id": agent, "since": parse_since(since)}
    teams = as_json(ok(cli("sessions", "list", "--session-type", "team", "--limit", "500", "--json", url=loaded.url)))
    assert [s["session_id"] for s in teams["sessions"]] == newest_first(
        [s for s in EXPECTED if s["session_type"] == "team"]
    )

    # the table a person reads: a header, one line a session, where the page stands
    text = ok(cli("sessions", "list", "--limit", "5", url=loaded.url)).out.splitlines()
    assert text[0].split()[:3] == ["SESSION", "TYPE", "AGENT/TEAM/WORKFLOW"] and len(text) == 7
    assert [line.split()[0] for line in text[1:6]] == newest_first(EXPECTED)[:5]
    assert text[-1].startswith(f"page 1 of {-(-len(EXPECTED) // 5)}: sessions 1-5 of {len(EXPECTED)}, newest first")


def test_show_gives_state_summary_metrics_and_every_run(loaded):
    session = next(s for s in EXPECTED if s["summary"] and s["session_state"] and len(s["runs"]) >= 3)
    data = as_json(ok(cli("sessions", "show", session["session_id"], "--json", url=loaded.url)))["session"]
    assert data["session_id"] == session["session_id"] and data["user_id"] == session["user_id"]
    assert data["session_data"]["session_state"] == session["session_state"]
    assert data["summary"]["summary"] == session["summary"]
    assert data["session_data"]["session_metrics"]["total_tokens"] == session["session_metrics"]["total_tokens"]
    assert [r["run_id"] for r in data["runs"] if not r.get("parent_run_id")] == [r["run_id"] for r in session["runs"]]
    roles = [[m["role"] for m in r["messages"]] for r in data["runs"] if not r.get("parent_run_id")]
    assert roles == [[m[0] for m in r["messages"]] for r in session["runs"]]
    longest = max((m for r in data["runs"] for m in r["messages"] if isinstance(m.get("content"), str)),
                  key=lambda m: len(m["content"]))  # fmt: skip
    assert len(longest["content"]) > browse.TRIM  # --json gives it whole

    text = ok(cli("sessions", "show", session["session_id"], url=loaded.url)).out
    lines = text.splitlines()
    assert lines[0].startswith(f"session {session['session_id']} ({session['session_type']})")
    assert any(line.startswith("state: {") for line in lines)
    assert any(line.startswith("summary: " + session["summary"][:30]) for line in lines)
    assert any(line.startswith("metrics: ") and "total_tokens" in line for line in lines)
    assert f"runs: {len(data['runs'])}" in lines
    for run in session["runs"]:
        assert any(run["run_id"] in line for line in lines)
    assert "more characters)" in text  # the long message is trimmed on a terminal...
    full = ok(cli("sessions", "show", session["session_id"], "-v", url=loaded.url)).out
    assert " ".join(longest["content"].split()) in full  # ...and whole with -v


def test_unknown_session_and_database_states(loaded, new_database):
    line = failed(cli("sessions", "show", "no-such-session", url=loaded.url), 2)
    assert "no session 'no-such-session'" in line
    assert json.loads(cli("sessions", "show", "nope", "--json", url=loaded.url).out)["exit_code"] == 2
    line = failed(cli("sessions", "list", "--agent-id", "a", "--team-id", "t", url=loaded.url), 2)
    assert "at most one of --agent-id, --team-id, --workflow-id" in line
    failed(cli("sessions", "list", "--since", "last week", url=loaded.url), 2)
    failed(cli("sessions", "list", "--limit", "0", url=loaded.url), 2)

    if loaded.backend != "sqlite":
        return
    behind = new_database("sqlite")
    behind.load("2.5.0")
    line = failed(cli("sessions", "list", url=behind.url), 1)
    assert "run `agno-migrate upgrade`" in line and "2.5.0" in line
    empty = new_database("sqlite")
    line = failed(cli("sessions", "show", "x", url=empty.url), 1)
    assert "has no agno_sessions table" in line and not empty.path.exists()  # looking creates nothing


def test_selection_rules():
    assert parse_since("1700000000") == 1700000000 and parse_since("1700000000.2") == 1700000001
    assert parse_since("2024-01-01") == parse_since("2024-01-01T00:00:00Z") == 1704067200
    assert parse_since("2024-01-01T02:00:00+02:00") == 1704067200
    chosen = Selection.of(team_id="t1", since="2024-01-01", user_id="u")
    assert chosen.listing() == {"user_id": "u", "session_type": "team", "component_id": "t1",
                                "start_timestamp": 1704067200}  # fmt: skip
    row = {"session_type": "team", "team_id": "t1", "user_id": "u", "created_at": 1704067200}
    assert chosen.matches(row)
    assert not chosen.matches({**row, "created_at": 1704067199})
    assert not chosen.matches({**row, "session_type": "agent"})
    assert not chosen.matches({**row, "user_id": "v"})
    with pytest.raises(agno_migrate.UsageError):
        Selection.of(session_type="chat")
    with pytest.raises(agno_migrate.UsageError, match="unknown filter colour"):
        Selection.named(colour="blue")
