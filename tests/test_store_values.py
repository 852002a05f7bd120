"""The session store refuses, on every backend the same way, what some backend could not store or
read back as given (agno_migrate/storable.py): one UsageError naming the field and saying what to
pass, nothing written, the store usable afterwards. Real servers (conftest)."""

from __future__ import annotations

import datetime

import pytest

import agno_migrate
from agno_migrate import AgentSession, UsageError
from agno_migrate.storable import MAX_DEPTH

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


@pytest.fixture(params=BACKENDS)
def store(request, new_database):
    db = new_database(request.param)
    store = agno_migrate.connect(db.url)
    store.upsert_session(AgentSession("kept", agent_id="a", runs=[{"run_id": "r0", "content": "x"}]))
    yield store
    store.close()


def nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"d": value}
    return value


BAD_VALUES = [
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (2**63, "64 bits"),
    (-(2**63) - 1, "64 bits"),
    ("a\x00b", "NUL"),
    ("\ud83d", "surrogate"),
    (datetime.datetime(2024, 1, 1), "isoformat"),
    (b"bytes", "not JSON"),
    ({1, 2}, "not JSON"),
    ({1: "int key"}, "keys are text"),
    (nested(MAX_DEPTH), "deeper than 31"),
    (nested(5000), "deeper than 31"),  # no RecursionError
]


@pytest.mark.parametrize("value,said", BAD_VALUES, ids=[s for _, s in BAD_VALUES])
def test_a_value_no_backend_could_hold_is_refused_naming_the_field(store, value, said):
    state = {"session_state": {"cart": [value]}}
    with pytest.raises(UsageError, match=said) as refused:
        store.upsert_session(AgentSession("new", agent_id="a", session_data=state))
    assert "session 'new' session_data['session_state']['cart'][0]" in str(refused.value)
    with pytest.raises(UsageError, match=said) as refused:
        store.upsert_run("kept", {"run_id": "r1", "metrics": {"x": value}})
    assert "run['metrics']['x']" in str(refused.value)
    with pytest.raises(UsageError, match=said) as refused:
        store.upsert_sessions([AgentSession("ok"), AgentSession("bad", runs=[{"run_id": "r2", "v": value}])])
    assert "session 'bad' runs[0]['v']" in str(refused.value)
    assert store.get_session("new") is None and store.get_session("ok") is None
    assert [r.run_id for r in store.get_session("kept").runs] == ["r0"]
    assert store.get_all_session_ids() == ["kept"]


def test_the_deepest_value_every_backend_holds_round_trips(store):
    deep = nested(MAX_DEPTH - 2)  # session_data > session_state > deep: MAX_DEPTH levels in all
    edge = {"max": 2**63 - 1, "min": -(2**63), "pair": "😀", "deep": deep}
    store.upsert_session(AgentSession("edge", agent_id="a", session_data={"session_state": edge}))
    store.upsert_run("edge", {"run_id": "re", "deep": nested(MAX_DEPTH - 1)})
    got = store.get_session("edge")
    assert got.session_data == {"session_state": edge}
    assert got.runs[0]["deep"] == nested(MAX_DEPTH - 1)


def test_poor_inputs_are_one_usage_error_each(store):
    with pytest.raises(UsageError, match="no session 'missing'") as unknown:
        store.upsert_run("missing", {"run_id": "r"})
    assert isinstance(unknown.value, KeyError)  # still what it was
    assert str(unknown.value).startswith("no session")
    for run in ("a run", ["r"], 5, None):
        with pytest.raises(UsageError, match="must be a dict"):
            store.upsert_run("kept", run)
    with pytest.raises(UsageError, match="pass a Session"):
        store.upsert_session({"session_id": "x"})
    with pytest.raises(UsageError, match="created_at must be an int"):
        store.upsert_session(AgentSession("x", created_at=datetime.datetime(2024, 1, 1)))
    with pytest.raises(UsageError, match="user_id must be a str"):
        store.upsert_session(AgentSession("x", user_id=5))
    with pytest.raises(UsageError, match="a session name is a str"):
        store.rename_session("kept", b"name")
    for limit in ("5", -5, 2.0, True):
        with pytest.raises(UsageError, match="limit must be an int from 0"):
            store.get_sessions(limit=limit)
    with pytest.raises(UsageError, match="page must be an int"):
        store.get_sessions(limit=2, page="1")
    with pytest.raises(UsageError, match="start_timestamp must be an int"):
        store.get_sessions(start_timestamp="yesterday")
    assert store.get_sessions(limit=5)[1] == 1 and store.get_all_session_ids() == ["kept"]


def test_a_session_of_the_wrong_shape_is_refused_naming_the_field():
    """The messages of check_session (no database: every store checks before it writes)."""
    from agno_migrate.store.base import check_session

    def refusal(**fields):
        session = AgentSession("s1")
        for name, value in fields.items():
            object.__setattr__(session, name, value)  # (past __post_init__)
        with pytest.raises(UsageError) as refused:
            check_session(session)
        return str(refused.value)

    assert refusal(session_type="chat") == "session 's1': session_type must be one of agent, team, workflow"
    assert refusal(team_id=7) == "session 's1': team_id must be a str or None, not int"
    assert (
        refusal(user_id="u\x00")
        == "session 's1' user_id holds a NUL character, which PostgreSQL cannot store: remove it"
    )
    assert refusal(updated_at=1.5).startswith("session 's1': updated_at must be an int")
    assert refusal(metadata={"k": {2}}).startswith("session 's1' metadata['k'] is a set, which is not JSON")
    assert refusal(runs="r") == "session 's1': runs must be a list of dicts, not str"
    assert refusal(runs=[{"run_id": "a"}, 3]).startswith("session 's1' runs[1] must be a dict")
    assert refusal(runs=[{"run_id": 3}]) == "session 's1' runs[0]: run_id must be a str, not int"
    assert refusal(runs=[{"run_id": "a", "x": [float("nan")]}]).startswith("session 's1' runs[0]['x'][0] is nan")
