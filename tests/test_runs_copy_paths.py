"""The 3.0.0 copy's set-based SQL (``migrate.sql.plain_runs``) and the Python rules alone give the same
runs table, byte for byte (every column, ``run_data`` as the stored text), and the same report: on the
sessions fixture points as Agno wrote them, and on generated sessions holding every case the SQL path
must leave to the Python rules."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from test_data_step import insert_sessions, run, session

import agno_migrate
from agno_migrate import convert
from agno_migrate.migrate.sql import revisions as sql
from agno_migrate.target import Target

COLUMNS = "run_id, session_id, run_type, agent_id, team_id, workflow_id, user_id, parent_run_id, status, "
COLUMNS += "run_index, CAST(run_data AS TEXT), created_at, updated_at"


def raw_runs(url: str) -> list[tuple]:
    """Every row of the runs table as stored (run_data as the database's text of it)."""
    target = Target.from_url(url)
    table = f"{target.schema}.{target.runs_table}" if target.backend != "sqlite" else target.runs_table
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(f"SELECT {COLUMNS} FROM {table} ORDER BY run_id")]
    finally:
        engine.dispose()


def recorded(monkeypatch, owner, name: str) -> list:
    """What ``owner.name`` returns, call after call (it still runs)."""
    results = []
    original = getattr(owner, name)

    def recording(*args):
        results.append(original(*args))
        return results[-1]

    monkeypatch.setattr(owner, name, recording)
    return results


def both_paths(new_database, backend, monkeypatch, fill):
    """Upgrade two copies of the same data, one with the set-based copy, one with the Python rules
    alone; returns (rows, report) of each and how many runs the set-based copy took."""
    module = sql.script_directory().get_revision("v3_0_0").module
    taken = recorded(monkeypatch, module, "_set_based")
    monkeypatch.setattr(module, "SQLITE_SET_BASED", True)
    results = []
    for set_based in (True, False):
        monkeypatch.setattr(module, "SET_BASED", set_based)
        db = new_database(backend)
        fill(db)
        outcome = agno_migrate.upgrade(db.url)
        report = {k: outcome.report.get(k) for k in ("runs_copied", "duplicate_run_ids", "not_runs")}
        results.append((raw_runs(db.url), report))
    return results[0], results[1], taken[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("point", ["2.0.0", "2.3.0", "2.5.0", "2.6.0"])
def test_fixture_points_give_the_same_runs_table(new_database, monkeypatch, backend, point):
    (sql_rows, sql_report), (py_rows, py_report), taken = both_paths(
        new_database, backend, monkeypatch, lambda db: db.load(point)
    )
    assert sql_rows and sql_rows == py_rows
    assert sql_report == py_report
    assert taken is not None and taken[1] > 0  # the set-based copy did take runs


def edge_sessions(backend: str) -> list[dict]:
    big = 123456789012345678901234567890
    nested = {"a": [1, 2.5, {"b": [None, True, "x"]}], "f": 0.30000000000000004, "e": 1e-07, "g": 1e22}
    unicode = "héllo wörld 日本語 😀 \u2028"
    plain = [
        session("p1", [run("p1-0", content=unicode, nested=nested), run("p1-1", status=None, created_at=None)]),
        session("p2", [run("p2-0", big=big, agent_id="", team_id="t9"), run("p2-1", updated_at=1700000999)]),
        session("p3", [run("p3-0", agent_id="own", parent_run_id="")], stype="workflow", user=None, created=0),
        session("p4", [run("p4-0", created_at=0, updated_at=0, floats=[1.0, 100.0, 1e16, 1.5e300, -2.25])]),
        session("p5", [run("p5-0", team_id="tt")], stype="weird"),
        session("p6", []),
    ]
    irregular = [
        session("q1", [run(None), run("q1-1")]),  # a run without id
        session("q2", [run("dup"), run("q2-1")]),
        session("q3", [run("dup")], stype="team"),  # the same id in another session
        session("q4", [run("same"), run("same")]),  # twice in one session
        session("q5", ["not a run", 7, None, run("q5-3")]),
        session("q6", [run("q6-0", status=3, created_at="1700000000")]),  # not plain: Python's str() and int()
        session("q7", [run(12), run("12")]),  # an id that is a number, and its text in a plain-looking run
        session("q8", [run(convert.derived_run_id("q1", 0))]),  # a derived id's shape
        session("q9", [run("q9-0", created_at=1700000000.7, updated_at=True)]),
        session("r1", [run("r1-0", agent_id=5)]),
        session("r2", {"not": "a list"}),
        session("r3", [run("r3-0", amount=1.10, other=0.1000000000000000055511151231257827)]),
        session("r6", [run("r6-0", team_id="t\u00e9\U0001f600")]),  # plain: non-ASCII ids, as json.dumps escapes them
    ]
    if backend == "sqlite":  # a NUL in an id (PostgreSQL's jsonb holds none): SQLite's text of it ends there
        irregular.append(session("r4", [run("r4-0", agent_id="a\x00b")]))
    return plain + irregular


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_generated_edge_cases_give_the_same_runs_table(new_database, monkeypatch, backend):
    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(db.url, edge_sessions(backend))

    (sql_rows, sql_report), (py_rows, py_report), taken = both_paths(new_database, backend, monkeypatch, fill)
    assert sql_rows == py_rows
    assert sql_report == py_report
    assert py_report["duplicate_run_ids"]  # the clashes were the Python rules' to resolve
    # p1..p5, r3 and r6: their 9 runs by SQL; the rest by the Python rules; p6 (empty: no run to copy) taken by
    # the set-based pass on PostgreSQL, left to the Python rules on SQLite
    assert taken == ((8, 9) if backend == "postgresql" else (7, 9))


def test_numbers_are_copied_as_stored_on_both_paths(new_database, monkeypatch):
    """PostgreSQL: every number of a run is copied as jsonb holds it (``1.50``, ``2.00``, 20 decimals, an integral
    float of 17 digits), however deep, by the set-based copy and by the Python rules alike (which take a run's
    ``run_data`` from its stored element, not from its float round trip through Python): the same runs table,
    every session taken by SQL, and nothing rewritten. ``z1`` (a run without an id: the Python rules') gets its
    derived id written into its stored element."""
    texts = {"n1": "1.50", "n2": "2.00", "n3": "0.10000000000000000555", "n4": "2.5", "n5": "2.0"}
    texts |= {"n6": "0.30000000000000004", "n7": "12345678901234567.0", "n8": "-1.250", "n9": "-123456789.12345"}
    texts |= {"z1": "3.10"}

    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(
            db.url,
            [session(s, [run(None if s == "z1" else f"{s}-0"), run(f"{s}-1", metrics={"x": [{"y": [0]}]})])
             for s in texts],
        )  # fmt: skip
        target = Target.from_url(db.url)
        engine = sa.create_engine(target.driver_url)
        with engine.begin() as conn:
            for sid, text in texts.items():
                conn.exec_driver_sql(
                    f"UPDATE {target.schema}.{target.session_table} SET runs = replace(runs::text, '[0]', "
                    f"'[{text}]')::jsonb WHERE session_id = %(sid)s",
                    {"sid": sid},
                )
            stored = dict(
                conn.exec_driver_sql(f"SELECT session_id, runs::text FROM {target.schema}.{target.session_table}").all()
            )
        engine.dispose()
        assert all(f"[{text}]" in stored[sid] for sid, text in texts.items())  # jsonb keeps the text as written

    (sql_rows, sql_report), (py_rows, py_report), taken = both_paths(new_database, "postgresql", monkeypatch, fill)
    assert sql_rows == py_rows
    assert sql_report == py_report
    assert taken == (9, 18)  # every session but z1 by SQL
    data = {(row[0], row[1]): row[10] for row in py_rows}
    for sid, text in texts.items():
        assert f"[{text}]" in data[(f"{sid}-1", sid)]  # as stored, not as Python's float would write it
    (z1,) = [row for row in py_rows if row[1] == "z1" and row[9] == 0]
    assert z1[0] == convert.derived_run_id("z1", 0) and f'"run_id": "{z1[0]}"' in z1[10]


CONTESTS = {
    # a plain session's id held by a session left to the Python rules (q1: a run without an id): found by the
    # primary key, which builds (no id twice among the plain sessions)
    "by_the_key": ([session("p1", [run("x1"), run("p1-1")]), session("p2", [run("p2-0")]),
                    session("q1", [run(None), run("x1")])], (1, 1), False),
    # an id held by two plain sessions: the primary key does not build; found by counting every id, then the key
    "counted": ([session("p1", [run("d")]), session("p2", [run("d"), run("p2-1")]), session("p3", [run("p3-0")])],
                (1, 1), True),
    # nothing contested, nothing left to the Python rules: no row deleted, nothing counted
    "none": ([session("p1", [run("p1-0")]), session("p2", [run("p2-0"), run("p2-1")]), session("p3", [])], (3, 3),
             False),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CONTESTS))
def test_postgresql_contested_ids_found_by_the_primary_key(new_database, monkeypatch, case):
    """PostgreSQL, the runs table created by the set-based pass: its primary key's build is the check that no id is
    held twice among the plain sessions' runs; the ids the Python rules give the others are looked up by it; only
    where it fails are all the ids counted. Each way gives the runs table the Python rules alone give."""
    from agno_migrate.migrate.sql import plain_runs

    sessions, expected, counted = CONTESTS[case]
    counts = recorded(monkeypatch, plain_runs, "_drop_contested")

    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(db.url, sessions)

    (sql_rows, sql_report), (py_rows, py_report), taken = both_paths(new_database, "postgresql", monkeypatch, fill)
    assert sql_rows == py_rows
    assert sql_report == py_report
    assert taken == expected
    assert bool(counts) == counted


def test_postgresql_walks_the_elements_with_parallel_workers(new_database):
    """PostgreSQL: the set-based pass (a ``CREATE TABLE … AS``, which the server may run in parallel, unlike an
    ``INSERT … SELECT``) is planned with parallel workers on a server that has them (this one: the defaults),
    the walk of every session's elements under the Gather: what takes most of the step's time is shared among
    the server's cores. A correlated subquery or a parallel-unsafe function added to it would lose that."""
    db = new_database("postgresql")
    db.load("2.6.0")
    plans = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("CREATE ") and "jsonb_array_elements" in statement:  # the pass (a new runs table)
            cursor.execute("EXPLAIN " + statement)  # in the step's transaction, its settings in force
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", explain)
    try:
        agno_migrate.upgrade(db.url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", explain)
    (plan,) = plans
    assert "Workers Planned" in plan, plan
    gather = plan.index("Gather")
    assert gather < plan.index("Function Scan on jsonb_array_elements"), plan


def test_a_runs_table_there_already_gives_the_same_runs_table(new_database, monkeypatch):
    """PostgreSQL, the runs table there before the step (as a killed online run leaves it), holding a run
    under an id a plain session's run has too: the set-based copy goes through its temporary table of rows
    (not straight into the runs table) and leaves that session to the Python rules, which rekey its run."""

    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(db.url, edge_sessions("postgresql"))
        target = Target.from_url(db.url)
        s_t, r_t = f"{target.schema}.{target.session_table}", f"{target.schema}.{target.runs_table}"
        engine = sa.create_engine(target.driver_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {r_t} (run_id VARCHAR PRIMARY KEY, session_id VARCHAR NOT NULL REFERENCES {s_t} "
                "(session_id) ON DELETE CASCADE, run_type VARCHAR NOT NULL, agent_id VARCHAR, team_id VARCHAR, "
                "workflow_id VARCHAR, user_id VARCHAR, parent_run_id VARCHAR, status VARCHAR, run_index BIGINT, "
                "run_data JSONB NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT)"
            )
            conn.exec_driver_sql(
                f"INSERT INTO {r_t} (run_id, session_id, run_type, run_index, run_data, created_at) "
                "VALUES ('p1-0', 'p5', 'agent', 7, '{}', 1)"
            )
        engine.dispose()

    (sql_rows, sql_report), (py_rows, py_report), taken = both_paths(new_database, "postgresql", monkeypatch, fill)
    assert sql_rows == py_rows
    assert sql_report == py_report
    assert ("p1-0", "p5") in {row[:2] for row in sql_rows}  # the stored run is kept
    assert taken == (7, 7)  # p1 (its id is stored already) left to the Python rules with its other run; p6 taken


@pytest.mark.parametrize("column", ["user_id", "runs"])
def test_a_session_holding_bytes_not_utf8_is_left_to_the_python_rules_sqlite(new_database, monkeypatch, column):
    """SQLite keeps any bytes as TEXT: with the set-based copy on, a plain session whose copied text holds bytes
    that are not UTF-8 is not copied by SQL (which would copy the bytes as they are) but left to the Python
    rules, whose read of it stops the step (one line and exit 10 on the command line): nothing changed."""
    module = sql.script_directory().get_revision("v3_0_0").module
    monkeypatch.setattr(module, "SQLITE_SET_BASED", True)
    db = new_database("sqlite")
    agno_migrate.upgrade(db.url, to="2.5.0")
    insert_sessions(db.url, [session(f"s{i}", [run(f"s{i}-0")]) for i in range(3)])
    bad = "CAST(X'75ff31' AS TEXT)" if column == "user_id" else "replace(runs, 'c-s1-0', CAST(X'63ff' AS TEXT))"
    conn = sqlite3.connect(db.path)
    conn.execute(f"UPDATE agno_sessions SET {column} = {bad} WHERE session_id = 's1'")
    conn.commit()
    conn.close()
    before = _dump(db.path)
    with pytest.raises(Exception, match="UTF-8"):
        agno_migrate.upgrade(db.url)
    assert _dump(db.path) == before


def _dump(path) -> list:
    """Every row of every table of a SQLite database, as the bytes stored."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [(name, conn.execute(f'SELECT * FROM "{name.decode()}" ORDER BY rowid').fetchall()) for name in names]
    finally:
        conn.close()


def test_the_python_rules_write_the_same_run_data_with_orjson_as_without_sqlite(new_database, monkeypatch):
    """SQLite, the Python rules: ``run_data`` encoded by orjson where it gives ``jsoncodec.compact``'s bytes
    (``compact_fast``), never where a run holds a non-finite float (orjson would write null): the same runs
    table, byte for byte, as the exact encoder alone gives."""
    from agno_migrate import jsoncodec

    odd = [session("n1", [run("n1-0", x=float("nan"), y=[float("inf"), -float("inf")]), run("n1-1", small=1e-7)])]
    odd.append(session("n2", [run("n2-0", deleted="\x7f", tiny=[2.5e-5, 1e-300], text="S\u00e3o \U0001f511")]))
    results = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(jsoncodec, "orjson", None)
        db = new_database("sqlite")
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(db.url, edge_sessions("sqlite") + odd)
        agno_migrate.upgrade(db.url)
        results.append(raw_runs(db.url))
    assert results[0] == results[1]
    assert any("NaN" in row[10] and "-Infinity" in row[10] for row in results[0])
