"""The 3.0.0 copy's set-based part: the runs of "plain" sessions copied by one ``INSERT … SELECT`` over
the sessions' ``runs`` arrays, inside the database (``json_each`` on SQLite, ``jsonb_array_elements`` on
PostgreSQL), giving exactly the rows the Python rules (``convert.run_rows`` and ``convert.rekey_runs``)
give them.

A session is plain when its ``runs`` is a JSON array (SQLite: also a JSON string holding one, as Agno 2.x
wrote it) whose every element is a plain run, and no run id of it is held by any other element of any
session (nor by a stored run). A plain run is an object with a non-empty string ``run_id`` that does not
have the shape of a derived id (``run-<uuid>``: what the Python rules give runs without an id), whose
``agent_id``, ``team_id``, ``workflow_id``, ``parent_run_id`` and ``status`` are strings or null, and whose
``created_at``/``updated_at`` are integers (below 10**15) or null. On SQLite a run holding one of those keys
twice, or a ``\\ud…``/``\\u0000`` escape anywhere in its session's blob, is not plain (SQLite's JSON
functions read the first of two equal keys, Python the last; surrogates and NULs are left to the Python
rules); on PostgreSQL a run holding a number that the Python round trip (float, ``json.dumps``, jsonb)
would not give back as the same text (``1.50``, 17+ significant digits, …) is not plain.

Every other session (and every session when the caller says so) goes through the Python rules afterwards,
unchanged: its runs' ids never meet a plain run's id, so the result is the one the Python rules alone give.
Sessions copied here are listed in the temporary table :data:`COPIED` (``session_id``) for the caller's
Python pass to skip; :func:`drop_copied` drops it.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from agno_migrate import convert, jsoncodec

COPIED = "agno_migrate_plain_sessions"
"""The temporary table of the sessions whose runs the set-based copy took."""
_IDS = "agno_migrate_run_ids"
_EXTRA = "agno_migrate_extra_ids"
_CONTESTED = "agno_migrate_contested_ids"
_KEYS = ("agent_id", "team_id", "workflow_id", "parent_run_id", "status")
_EPOCHS = ("created_at", "updated_at")
DERIVED_SHAPE = "run-________-____-____-____-____________"
"""The LIKE pattern of a derived run id (``convert.derived_run_id``)."""
EPOCH_LIMIT = 10**15


def _q(bind, name: str) -> str:
    return bind.dialect.identifier_preparer.quote(name)


def _qt(bind, name: str, schema: str | None) -> str:
    prep = bind.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}" if schema else prep.quote(name)


# --- SQLite ------------------------------------------------------------------------------------------


def _sqlite_array(col: str) -> str:
    """The runs array's JSON text of a sessions row, or NULL when it is not plainly one."""
    return (
        f"(CASE WHEN typeof({col}) = 'text' AND json_valid({col}) THEN "
        f"(CASE json_type({col}) WHEN 'array' THEN {col} WHEN 'text' THEN "
        f"(CASE WHEN json_valid(json_extract({col}, '$')) AND json_type(json_extract({col}, '$')) = 'array' "
        f"THEN json_extract({col}, '$') END) END) END)"
    )


def _sqlite_plain(v: str) -> str:
    """Whether the element (its JSON text ``v``, of type ``{v}_type``) is a plain run."""
    parts = [
        "e.type = 'object'",
        f"json_type({v}, '$.run_id') = 'text'",
        f"json_extract({v}, '$.run_id') <> ''",
        f"json_extract({v}, '$.run_id') NOT LIKE '{DERIVED_SHAPE}'",
        *(f"coalesce(json_type({v}, '$.{k}'), 'null') IN ('text', 'null')" for k in _KEYS),
        *(
            f"(coalesce(json_type({v}, '$.{k}'), 'null') = 'null' OR (json_type({v}, '$.{k}') = 'integer' "
            f"AND abs(json_extract({v}, '$.{k}')) < {EPOCH_LIMIT}))"
            for k in _EPOCHS
        ),
        "typeof(s.created_at) IN ('integer', 'null')",
        "typeof(s.updated_at) IN ('integer', 'null')",
    ]
    return "(" + " AND ".join(parts) + ")"


def copy_sqlite(bind, sessions: str, runs: str) -> tuple[int, int] | None:
    """The set-based copy on SQLite (see the module docstring); returns (sessions, runs) copied, or
    None (nothing done) when a run's columns as SQLite's JSON functions read them differ from the
    Python rules' (a key held twice by one run: SQLite reads the first, Python the last; a lone
    surrogate): the caller then copies every session by the Python rules.

    ``run_data`` is written by ``agno_run_json`` (a function of this connection: ``json.dumps`` of the
    element, as the Python rules write it through SQLAlchemy's JSON type, after checking the other
    columns against the element), the other columns by SQL."""
    raw = bind.connection.dbapi_connection
    raw.create_function("agno_run_json", 1 + len(_CHECKED), _run_json, deterministic=True)
    s_t, r_t = _q(bind, sessions), _q(bind, runs)
    array = _sqlite_array("s.runs")
    run = "(CASE WHEN e.type = 'object' THEN e.value END)"  # JSON functions fail on a bare string element
    ex = lambda k: f"json_extract({run}, '$.{k}')"  # noqa: E731
    bind.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_IDS}")
    bind.exec_driver_sql(
        f"CREATE TEMP TABLE {_IDS} AS SELECT s.session_id AS session_id, "
        f"CASE WHEN json_type({run}, '$.run_id') = 'text' THEN {ex('run_id')} END AS run_id, "
        f"{_sqlite_plain(run)} AS plain FROM {s_t} s, json_each({array}) e WHERE s.runs IS NOT NULL"
    )
    checked = ", ".join(ex(k) for k in _CHECKED)
    savepoint = bind.begin_nested()
    try:
        copied = _copy_plain(
            bind,
            s_t,
            r_t,
            "temp",
            irregular=f"{array} IS NULL",
            elements=f"json_each({array}) e",
            position="e.key",
            run_id=ex("run_id"),
            text=ex,
            integer=ex,
            run_data=f"agno_run_json(e.value, {checked})",
        )
    except Exception as exc:  # noqa: BLE001 - only the check's own failure is expected here
        if "user-defined function raised exception" not in str(exc):
            raise
        savepoint.rollback()
        drop_temporary(bind, "temp")
        return None
    savepoint.commit()
    return copied


_CHECKED = ("run_id", *("agent_id", "team_id", "workflow_id", "parent_run_id", "status"), "created_at", "updated_at")


def _run_json(text, *columns):
    run = jsoncodec.loads(text)
    if any(run.get(k) != v for k, v in zip(_CHECKED, columns, strict=True)):
        raise ValueError("the run's columns read by SQLite differ from the Python rules'")
    return json.dumps(run)


# --- PostgreSQL --------------------------------------------------------------------------------------

_PG_FLOAT_TEXT = r"'^-?[0-9]{1,16}\.[0-9]{1,20}$'"


def _pg_canonical(t: str) -> str:
    """Whether the decimal number text ``t`` (jsonb's, with a point) comes back as the same text
    from the Python round trip (float, ``repr``, jsonb): the shortest text of the float read as
    numeric, with the ``.0`` Python's repr gives integral floats below 10**16."""
    x = f"(({t})::float8::text)::numeric::text"
    return (
        f"(CASE WHEN {t} ~ {_PG_FLOAT_TEXT} THEN (CASE WHEN position('.' in {x}) > 0 "
        f"OR abs(({t})::float8) >= 1e16 THEN {x} ELSE {x} || '.0' END) = {t} ELSE false END)"
    )


def _pg_plain(v: str) -> str:
    numbers = f"jsonb_path_query({v}, 'strict $.** ? (@.type() == \"number\")') AS n(value)"
    parts = [
        f"jsonb_typeof({v}) = 'object'",
        f"jsonb_typeof({v} -> 'run_id') = 'string'",
        f"{v} ->> 'run_id' <> ''",
        f"{v} ->> 'run_id' NOT LIKE '{DERIVED_SHAPE}'",
        *(f"coalesce(jsonb_typeof({v} -> '{k}'), 'null') IN ('string', 'null')" for k in _KEYS),
        *(
            f"(coalesce(jsonb_typeof({v} -> '{k}'), 'null') = 'null' OR (jsonb_typeof({v} -> '{k}') = 'number' "
            f"AND ({v} ->> '{k}') ~ '^-?[0-9]{{1,15}}$'))"
            for k in _EPOCHS
        ),
        f"NOT EXISTS (SELECT 1 FROM {numbers} WHERE position('.' in n.value::text) > 0 "
        f"AND NOT {_pg_canonical('n.value::text')})",
    ]
    return "(" + " AND ".join(parts) + ")"


def pg_applies(bind, sessions: str, schema: str | None) -> bool:
    """Whether the set-based copy applies: the server gives floats' shortest text (PostgreSQL 12+)
    and the ``runs`` column is jsonb (as the 2.3.0 step leaves it)."""
    if bind.dialect.server_version_info < (12,):
        return False
    columns = {c["name"]: c["type"] for c in sa.inspect(bind).get_columns(sessions, schema=schema)}
    return type(columns.get("runs")).__name__.upper() == "JSONB"


def copy_postgresql(bind, sessions: str, runs: str, schema: str | None) -> tuple[int, int]:
    """The set-based copy on PostgreSQL (see the module docstring); returns (sessions, runs) copied.
    The caller checked :func:`pg_applies`."""
    bind.exec_driver_sql("SET LOCAL extra_float_digits = 1")  # floats' shortest text (the default)
    s_t, r_t = _qt(bind, sessions, schema), _qt(bind, runs, schema)
    array = "(CASE WHEN jsonb_typeof(s.runs) = 'array' THEN s.runs END)"
    bind.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{_IDS}")
    bind.exec_driver_sql(
        f"CREATE TEMP TABLE {_IDS} AS SELECT s.session_id AS session_id, "
        f"CASE WHEN jsonb_typeof(e.value) = 'object' AND jsonb_typeof(e.value -> 'run_id') = 'string' "
        f"THEN e.value ->> 'run_id' END AS run_id, {_pg_plain('e.value')} AS plain "
        f"FROM {s_t} s, jsonb_array_elements({array}) e WHERE s.runs IS NOT NULL"
    )
    return _copy_plain(
        bind,
        s_t,
        r_t,
        "pg_temp",
        irregular="jsonb_typeof(s.runs) <> 'array'",
        elements=f"jsonb_array_elements({array}) WITH ORDINALITY e(value, ord)",
        position="(e.ord - 1)",
        run_id="e.value ->> 'run_id'",
        text=lambda k: f"(e.value ->> '{k}')",
        integer=lambda k: f"(e.value ->> '{k}')::bigint",
        run_data="e.value",
    )


# --- both --------------------------------------------------------------------------------------------


def _copy_plain(bind, s_t, r_t, temp, irregular, elements, position, run_id, text, integer, run_data):
    """From the element facts (temporary table ``_IDS``: session_id, run_id, plain): the candidate
    sessions (every element plain), the ids the Python rules give the runs of every other session
    (read and decoded here, as the Python pass will), the contested ids (held twice, or stored
    already), the plain sessions (:data:`COPIED`: candidates holding no contested id), and their runs
    inserted by one statement. ``temp``: the dialect's schema of temporary tables."""
    for name in (COPIED, _EXTRA, _CONTESTED):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {temp}.{name}")
    bind.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {COPIED} AS SELECT session_id FROM {_IDS} GROUP BY session_id "
        f"HAVING min(CASE WHEN plain THEN 1 ELSE 0 END) = 1"
    )
    bind.exec_driver_sql(f"CREATE UNIQUE INDEX {COPIED}_key ON {COPIED} (session_id)")
    bind.exec_driver_sql(f"CREATE TEMPORARY TABLE {_EXTRA} (run_id TEXT)")
    others = (
        f"SELECT s.session_id, s.runs FROM {s_t} s WHERE s.runs IS NOT NULL AND (({irregular}) "
        f"OR (s.session_id NOT IN (SELECT session_id FROM {COPIED})))"
    )
    last = None
    while True:  # keyset batches: memory stays flat however many sessions are not plain
        after = "" if last is None else " AND s.session_id > :last"
        batch = bind.execute(sa.text(f"{others}{after} ORDER BY s.session_id LIMIT 500"), {"last": last}).all()
        if not batch:
            break
        last = batch[-1][0]
        ids = [i for _sid, blob in batch for i in convert.run_ids_of(blob)]
        if ids:
            bind.execute(sa.text(f"INSERT INTO {_EXTRA} (run_id) VALUES (:i)"), [{"i": i} for i in ids])
    bind.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_CONTESTED} AS SELECT run_id FROM (SELECT i.run_id FROM {_IDS} i "
        f"JOIN {COPIED} c ON c.session_id = i.session_id UNION ALL SELECT run_id FROM {_EXTRA}) a "
        f"GROUP BY run_id HAVING count(*) > 1 UNION SELECT run_id FROM {r_t}"
    )
    bind.exec_driver_sql(
        f"DELETE FROM {COPIED} WHERE session_id IN (SELECT i.session_id FROM {_IDS} i "
        f"JOIN {_CONTESTED} c ON c.run_id = i.run_id)"
    )
    created = f"coalesce(nullif({integer('created_at')}, 0), nullif(s.created_at, 0), 0)"
    updated = f"coalesce(nullif({integer('updated_at')}, 0), nullif(s.updated_at, 0), {created})"

    def entity(kind):
        return f"coalesce(nullif({text(kind + '_id')}, ''), CASE WHEN s.session_type = '{kind}' THEN s.{kind}_id END)"

    run_type = (
        "CASE WHEN s.session_type IN ('agent', 'team', 'workflow') THEN s.session_type "
        f"WHEN {text('agent_id')} <> '' THEN 'agent' WHEN {text('team_id')} <> '' THEN 'team' ELSE 'workflow' END"
    )
    result = bind.exec_driver_sql(
        f"INSERT INTO {r_t} (run_id, session_id, run_type, agent_id, team_id, workflow_id, user_id, "
        f"parent_run_id, status, run_index, run_data, created_at, updated_at) "
        f"SELECT {run_id}, s.session_id, {run_type}, {entity('agent')}, {entity('team')}, {entity('workflow')}, "
        f"s.user_id, {text('parent_run_id')}, {text('status')}, {position}, {run_data}, {created}, {updated} "
        f"FROM {s_t} s JOIN {COPIED} p ON p.session_id = s.session_id, {elements}"
    )
    copied_runs = result.rowcount
    copied_sessions = bind.exec_driver_sql(f"SELECT count(*) FROM {COPIED}").scalar()
    return copied_sessions, copied_runs


def drop_temporary(bind, schema: str) -> None:
    """Drop the temporary tables of the set-based copy (``schema``: the dialect's temporary schema)."""
    for name in (COPIED, _IDS, _EXTRA, _CONTESTED):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{name}")
