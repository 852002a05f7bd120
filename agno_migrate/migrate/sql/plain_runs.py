"""The 3.0.0 copy's set-based part: the runs of "plain" sessions copied by one ``INSERT … SELECT`` over
the sessions' ``runs`` arrays, inside the database (``json_each`` on SQLite, ``jsonb_array_elements`` on
PostgreSQL), giving exactly the rows the Python rules (``convert.run_rows`` and ``convert.rekey_runs``)
give them.

A session is plain when its ``runs`` is a JSON array (SQLite: also a JSON string holding one, as Agno 2.x
wrote it) whose every element is a plain run, and no run id of it is held by any other element of any session
(nor by a stored run). A plain run is an object with a non-empty string ``run_id`` that does not have the
shape of a derived id (``run-<uuid>``: what the Python rules give runs without an id), whose ``agent_id``,
``team_id``, ``workflow_id``, ``parent_run_id`` and ``status`` are strings or null, and whose
``created_at``/``updated_at`` are integers (below 10**15) or null. On SQLite a run holding one of those keys
twice or a surrogate in one of them, or a ``\\u0000`` escape anywhere in its session's blob, is not plain
(SQLite's JSON functions read the first of two equal keys, Python the last; SQLite's text of a string ends at
a NUL), nor a session whose text holds bytes that are not UTF-8 (SQL would copy them as they are), and
``run_data`` is the element's text as SQLite gives it, compact, which the Python rules write on SQLite too
(see :func:`copy_sqlite`); on PostgreSQL ``run_data`` is the element as stored (jsonb to jsonb: every number
as written, ``1.50`` too), which the Python rules take there as well (``v3_0_0._insert_from_elements``). On
PostgreSQL the blobs are read once (:func:`copy_postgresql`: every element written with its plain
flag, the plain sessions decided on those rows' small columns); on SQLite the elements' facts are gathered
first, then the plain sessions' runs inserted.

Every other session (and every session when the caller says so) goes through the Python rules afterwards,
unchanged: its runs' ids never meet a plain run's id, so the result is the one the Python rules alone give.
Every session with a ``runs`` is listed in the temporary table :data:`TAKEN` (``session_id``, ``copied``);
``copied`` false marks those the caller's Python pass takes (:data:`PYTHON_RULES`). Copied are the plain ones (on
PostgreSQL also the sessions without a run: ``runs`` JSON null or ``[]``, for which the Python rules write and
report nothing); :func:`drop_temporary` drops it.
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_migrate import convert

TAKEN = "agno_migrate_plain_sessions"
"""The temporary table of the sessions with a ``runs``: ``session_id``, and ``copied``: whether the set-based copy
took its runs."""
PYTHON_RULES = f"SELECT session_id FROM {TAKEN} WHERE NOT copied"
"""The sessions the set-based copy left to the Python rules (a select of ``session_id``)."""
_IDS = "agno_migrate_run_ids"
_ROWS = "agno_migrate_run_rows"
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
    """The runs array's JSON text of a sessions row, or NULL when it is not plainly one: text starting with
    ``[``, or (as Agno 2.x wrote it) a JSON string holding such text; anything else is the Python rules'."""
    inner = f"json_extract({col}, '$')"
    return (
        f"(CASE WHEN typeof({col}) <> 'text' THEN NULL "
        f"WHEN substr({col}, 1, 1) = '[' THEN (CASE WHEN json_valid({col}) THEN {col} END) "
        f"WHEN substr({col}, 1, 2) = '\"[' AND json_valid({col}) AND json_valid({inner}) THEN {inner} END)"
    )


def _sqlite_known_array(col: str) -> str:
    """:func:`_sqlite_array` of a row it gave an array for already (fewer parses)."""
    return f"(CASE WHEN substr({col}, 1, 1) = '[' THEN {col} ELSE json_extract({col}, '$') END)"


_ELEMENTS = "agno_migrate_run_elements"
_CHECKED = ("run_id", *_KEYS, *_EPOCHS)
_SESSION_COLUMNS = ("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "created_at")
_SESSION_COLUMNS += ("updated_at",)


def _sqlite_columns(v: str) -> str:
    """The checked keys of the object element ``v`` as SQLite reads them, one parse for all: a JSON object
    ``{key: [type, value]}``; NULL when a key is held twice (SQLite would read the first, Python the last)
    or a string value holds a NUL or a surrogate (SQLite's text would differ from Python's)."""
    keys = ", ".join(f"'{k}'" for k in _CHECKED)
    odd = (
        "(CASE WHEN k.type = 'text' THEN instr(CAST(k.value AS BLOB), X'00') + instr(CAST(k.value AS BLOB), X'ED') END)"
    )
    return (
        f"(SELECT CASE WHEN count(*) = count(DISTINCT k.key) AND coalesce(max({odd}), 0) = 0 "
        f"THEN json_group_object(k.key, json_array(k.type, k.value)) END FROM json_each({v}) k WHERE k.key IN ({keys}))"
    )


def _sqlite_plain(c: str) -> str:
    """Whether the element whose checked keys are ``c`` (:func:`_sqlite_columns`) is a plain run."""
    kind = lambda k: f"coalesce(json_extract({c}, '$.{k}[0]'), 'null')"  # noqa: E731
    value = lambda k: f"json_extract({c}, '$.{k}[1]')"  # noqa: E731
    parts = [
        f"{c} IS NOT NULL",
        f"{kind('run_id')} = 'text'",
        f"{value('run_id')} <> ''",
        f"{value('run_id')} NOT LIKE '{DERIVED_SHAPE}'",
        *(f"{kind(k)} IN ('text', 'null')" for k in _KEYS),
        *(f"({kind(k)} = 'null' OR ({kind(k)} = 'integer' AND abs({value(k)}) < {EPOCH_LIMIT}))" for k in _EPOCHS),
        "f.session_times",
    ]
    return f"({' AND '.join(parts)})"


_NOT_UTF8 = "agno_migrate_not_utf8"
_TEXT = ("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "runs")
"""The sessions' text columns the SQLite copy reads (SQLite keeps any bytes as TEXT)."""


def _note_not_utf8(bind, s_t: str) -> None:
    """The temporary table ``_NOT_UTF8``: the ``session_id`` (as bytes) of every session with runs whose text
    columns hold bytes that are not UTF-8. SQL would copy such bytes as they are; left to the Python rules,
    whose read of the row stops the step with one line (exit 10) and changes nothing. Read as bytes, in one
    pass (ASCII, the usual case, needs no decoding)."""
    bind.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_NOT_UTF8}")
    bind.exec_driver_sql(f"CREATE TEMP TABLE {_NOT_UTF8} (session_id BLOB)")
    columns = ", ".join(f"CAST({_q(bind, c)} AS BLOB)" for c in _TEXT)
    bad = [
        (row[0],)
        for row in bind.exec_driver_sql(f"SELECT {columns} FROM {s_t} WHERE runs IS NOT NULL")
        if not all(value is None or value.isascii() or _utf8(value) for value in row)
    ]
    if bad:
        bind.exec_driver_sql(f"INSERT INTO {_NOT_UTF8} (session_id) VALUES (?)", bad)


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def copy_sqlite(bind, sessions: str, runs: str) -> tuple[int, int]:
    """The set-based copy on SQLite (see the module docstring); returns (sessions, runs) copied.

    Every element of every ``runs`` array goes to the temporary table ``_ELEMENTS`` with its checked
    keys (:func:`_sqlite_columns`); the plain sessions' runs are inserted from their arrays and those
    values. ``run_data`` is the element's text as ``json_each`` gives it (compact: each token as written,
    the spaces gone): the bytes the Python rules write on SQLite (``jsoncodec.compact`` of the decoded
    run) wherever the element is as ``json.dumps`` writes it (every blob Agno wrote), and otherwise the
    same value read back by ``json.loads`` (a number or an escape written another way, ``1.50`` for
    ``1.5``)."""
    s_t, r_t = _q(bind, sessions), _q(bind, runs)
    for name in (_ELEMENTS, _IDS):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
    # the session's own checks once per session, in json_each's argument (a session failing them has no element
    # here: never plain); per element they would read its runs (and the columns after it) again each time:
    # dates that are integers or null, no NUL escape in the blob (conservatively: no text u0000; SQLite's text of a
    # string holding one ends there)
    session_ok = (
        "typeof(s.created_at) IN ('integer', 'null') AND typeof(s.updated_at) IN ('integer', 'null') "
        f"AND instr(s.runs, 'u0000') = 0 AND CAST(s.session_id AS BLOB) NOT IN (SELECT session_id FROM {_NOT_UTF8})"
    )
    _note_not_utf8(bind, s_t)
    bind.exec_driver_sql(
        f"CREATE TEMP TABLE {_ELEMENTS} AS SELECT s.session_id AS session_id, e.key AS position, "
        f"CASE WHEN e.type = 'object' THEN {_sqlite_columns('e.value')} END AS columns, 1 AS session_times "
        f"FROM {s_t} s, json_each(CASE WHEN {session_ok} THEN {_sqlite_array('s.runs')} END) e "
        "WHERE s.runs IS NOT NULL"
    )
    bind.exec_driver_sql(f"CREATE UNIQUE INDEX temp.{_ELEMENTS}_key ON {_ELEMENTS} (session_id, position)")
    c = "f.columns"
    bind.exec_driver_sql(
        f"CREATE TEMP TABLE {_IDS} AS SELECT f.session_id AS session_id, CASE WHEN json_extract({c}, '$.run_id[0]') "
        f"= 'text' THEN json_extract({c}, '$.run_id[1]') END AS run_id, {_sqlite_plain(c)} AS plain FROM {_ELEMENTS} f"
    )
    column = {k: f"json_extract({c}, '$.{k}[1]')" for k in _CHECKED}
    return _copy_plain(
        bind,
        s_t,
        r_t,
        "temp",
        elements=f"json_each({_sqlite_known_array('s.runs')}) e CROSS JOIN {_ELEMENTS} f "
        "ON f.session_id = s.session_id AND f.position = e.key",
        position="e.key",
        run_id=column["run_id"],
        text=column.get,
        integer=column.get,
        run_data="e.value",
    )


# --- PostgreSQL --------------------------------------------------------------------------------------


def _pg_plain(v: str) -> str:
    """Whether the element ``v`` is a plain run (its numbers are copied as stored, jsonb to jsonb, on both paths:
    the Python rules take a run's ``run_data`` from its stored element too, ``v3_0_0._insert_from_elements``)."""
    parts = [
        f"jsonb_typeof({v}) = 'object'",
        f"jsonb_typeof({v} -> 'run_id') = 'string'",
        f"{v} ->> 'run_id' <> ''",
        f"{v} ->> 'run_id' NOT LIKE '{DERIVED_SHAPE}'",
        *(f"coalesce(jsonb_typeof({v} -> '{k}'), 'null') IN ('string', 'null')" for k in _KEYS),
        *(f"(coalesce(jsonb_typeof({v} -> '{k}'), 'null') = 'null' OR {_pg_epoch(v, k)})" for k in _EPOCHS),
    ]
    return "(" + " AND ".join(parts) + ")"


def _pg_epoch(v: str, k: str) -> str:
    """Whether the key ``k`` of the element ``v`` is an integer a plain run may hold (below 10**15)."""
    return f"(jsonb_typeof({v} -> '{k}') = 'number' AND ({v} ->> '{k}') ~ '^-?[0-9]{{1,15}}$')"


_PARALLEL = ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size")
"""The planner's settings lowered (to 0) for the statement that walks the elements: the sessions table's own
heap is small (the blobs are TOASTed), so the planner would not give the walk to parallel workers."""


def pg_applies(bind, sessions: str, schema: str | None) -> bool:
    """Whether the set-based copy applies, and the Python rules take each run's ``run_data`` from its stored
    element: the ``runs`` column is jsonb (as the 2.3.0 step leaves it)."""
    columns = {c["name"]: c["type"] for c in sa.inspect(bind).get_columns(sessions, schema=schema)}
    return type(columns.get("runs")).__name__.upper() == "JSONB"


def copy_postgresql(
    bind, sessions: str, runs: str, schema: str | None, create: sa.Table | None = None
) -> tuple[int, int]:
    """The set-based copy on PostgreSQL (see the module docstring); returns (sessions, runs) copied.
    The caller checked :func:`pg_applies`.

    One pass over the blobs (each is detoasted and walked once, as the floor does): every element of every array
    goes as a row into a table of the runs table's columns, whose ``run_index`` is -1 where the element is not a
    plain run (its other columns then are only what cannot fail to compute); the plain sessions are then found on
    those rows' small columns. The pass is a ``CREATE TABLE … AS``, which PostgreSQL may run with parallel
    workers (an ``INSERT … SELECT`` never is): the walk of the elements and their checks is shared among the
    server's cores (``max_parallel_workers_per_gather``, as the server is configured).

    ``create`` (the runs table does not exist yet: the table as the revision defines it, its columns those of
    :data:`RUN_COLUMNS` in order, and its primary key; the caller adds its foreign key and indexes after): that
    table is the runs table itself, created by the pass (its columns of those types, their NOT NULL constraints set
    after), the rows of the other sessions deleted from it and its primary key added (:func:`_add_key`, which finds
    the contested ids too): every row written once. Otherwise (a runs table there already) a temporary table, whose
    plain sessions' rows are then inserted into the runs table: disk for the runs a second time, no WAL."""
    s_t, r_t = _qt(bind, sessions, schema), _qt(bind, runs, schema)
    rows = r_t if create is not None else f"pg_temp.{_ROWS}"
    for name in (TAKEN, _ROWS, _EXTRA, _CONTESTED):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
    text = lambda k: f"(s.value ->> '{k}')"  # noqa: E731
    # (read only where it is an integer of a plain run: the other elements' rows are never copied)
    integer = lambda k: f"(CASE WHEN {_pg_epoch('s.value', k)} THEN (s.value ->> '{k}')::bigint END)"  # noqa: E731
    elements = (
        f"SELECT {', '.join(f's.{c}' for c in _SESSION_COLUMNS)}, e.value, e.ord, {_pg_plain('e.value')} "
        f"AS plain FROM {s_t} s CROSS JOIN LATERAL jsonb_array_elements(s.runs) WITH ORDINALITY "
        "e(value, ord) WHERE jsonb_typeof(s.runs) = 'array'"
    )
    select = _run_columns(
        run_id="coalesce(s.value ->> 'run_id', '')",
        position="CASE WHEN s.plain THEN s.ord - 1 ELSE -1 END",  # the one use of ``plain``: computed once
        run_data="s.value",
        text=text,
        integer=integer,
    )
    types = {c.name: c.type.compile(dialect=bind.dialect) for c in create.columns} if create is not None else {}
    typed = ", ".join(f"CAST({c} AS {types[c]}) AS {c}" if types else c for c in RUN_COLUMNS)
    for name in _PARALLEL:
        bind.exec_driver_sql(f"SET LOCAL {name} = 0")
    written = bind.exec_driver_sql(
        f"CREATE {'TABLE ' + r_t if create is not None else 'TEMPORARY TABLE ' + _ROWS} AS SELECT {typed} FROM "
        f"(SELECT {select} FROM ({elements}) s) r({', '.join(RUN_COLUMNS)})"
    ).rowcount
    for name in _PARALLEL:  # the step's other statements planned as the server is configured
        bind.exec_driver_sql(f"SET LOCAL {name} TO DEFAULT")
    # copied too: the sessions whose runs is JSON null or an empty array (no element): no run to copy, nothing the
    # Python rules would write or report for them (read by their size first: such a value is a few bytes, a blob is
    # never fetched)
    no_runs = "CASE WHEN pg_column_size(s.runs) < 64 THEN jsonb_typeof(s.runs) = 'null' OR s.runs = '[]' ELSE false END"
    _note_taken(bind, s_t, f"SELECT session_id, min(run_index) >= 0 AS plain FROM {rows} GROUP BY session_id", no_runs)
    _python_ids(bind, s_t)
    if create is None:
        _drop_contested(bind, rows, r_t)
        columns = ", ".join(RUN_COLUMNS)
        copied_runs = bind.exec_driver_sql(
            f"INSERT INTO {r_t} ({columns}) SELECT {columns} FROM {rows} WHERE session_id IN (SELECT session_id "
            f"FROM {TAKEN} WHERE copied)"
        ).rowcount
    else:
        copied_runs = written - _delete_python_rules(bind, r_t)
        required = ", ".join(f"ALTER COLUMN {c.name} SET NOT NULL" for c in create.columns if not c.nullable)
        bind.exec_driver_sql(f"ALTER TABLE {r_t} {required}")  # (one scan of the table for all)
        copied_runs -= _add_key(bind, r_t, create)
    return bind.exec_driver_sql(f"SELECT count(*) FROM {TAKEN} WHERE copied").scalar(), copied_runs


def _add_key(bind, r_t: str, table: sa.Table) -> int:
    """Add the primary key of the new runs table ``r_t`` (``table``: as the revision defines it), holding the copied
    sessions' rows only; returns how many rows of contested sessions it deleted first. Its build is the check that
    no run id is held twice among those rows: where it builds, only the Python rules' ids (``_EXTRA``) can contest
    one, looked up by it; where it fails (a rollback to a savepoint), the contested ids are found by
    :func:`_drop_contested` before it is added."""
    add = sa.schema.AddConstraint(table.primary_key)
    try:
        with bind.begin_nested():
            bind.execute(add)
    except sa.exc.IntegrityError:  # a run id held twice
        _drop_contested(bind, r_t, None)
        deleted = _delete_python_rules(bind, r_t)
        bind.execute(add)
        return deleted
    held = f"SELECT i.session_id FROM {r_t} i JOIN {_EXTRA} e ON e.run_id = i.run_id"
    return _delete_python_rules(bind, r_t) if _leave_to_python(bind, held) else 0


# --- both --------------------------------------------------------------------------------------------


RUN_COLUMNS = ("run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id")
RUN_COLUMNS += ("parent_run_id", "status", "run_index", "run_data", "created_at", "updated_at")


def _run_columns(run_id, position, run_data, text, integer) -> str:
    """The select list of the runs table's :data:`RUN_COLUMNS` for the element of the session row ``s``:
    ``text(key)`` and ``integer(key)`` read its keys."""
    created = f"coalesce(nullif({integer('created_at')}, 0), nullif(s.created_at, 0), 0)"
    updated = f"coalesce(nullif({integer('updated_at')}, 0), nullif(s.updated_at, 0), {created})"

    def entity(kind):
        return f"coalesce(nullif({text(kind + '_id')}, ''), CASE WHEN s.session_type = '{kind}' THEN s.{kind}_id END)"

    run_type = (
        "CASE WHEN s.session_type IN ('agent', 'team', 'workflow') THEN s.session_type "
        f"WHEN {text('agent_id')} <> '' THEN 'agent' WHEN {text('team_id')} <> '' THEN 'team' ELSE 'workflow' END"
    )
    return (
        f"{run_id}, s.session_id, {run_type}, {entity('agent')}, {entity('team')}, {entity('workflow')}, "
        f"s.user_id, {text('parent_run_id')}, {text('status')}, {position}, {run_data}, {created}, {updated}"
    )


def _note_taken(bind, s_t: str, facts: str, no_runs: str) -> None:
    """The temporary table :data:`TAKEN`: every session with a ``runs`` (one scan of the sessions table), ``copied``
    where ``facts`` (a select of ``session_id``, ``plain``: one row per session with elements) says its every
    element is a plain run, or where it has none and ``no_runs`` (an expression of the session row ``s``) holds."""
    bind.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {TAKEN} AS SELECT s.session_id AS session_id, coalesce(f.plain, {no_runs}) AS copied "
        f"FROM {s_t} s LEFT JOIN ({facts}) f ON f.session_id = s.session_id WHERE s.runs IS NOT NULL"
    )


def _leave_to_python(bind, sessions: str) -> int:
    """Mark the copied sessions among ``sessions`` (a select of ``session_id``) as left to the Python rules;
    returns how many were."""
    return bind.exec_driver_sql(
        f"UPDATE {TAKEN} SET copied = false WHERE copied AND session_id IN ({sessions})"
    ).rowcount


def _delete_python_rules(bind, rows: str) -> int:
    """Delete from ``rows`` (a table of the runs table's columns) the rows of the sessions left to the Python
    rules (none to look for: no scan); returns how many."""
    if bind.exec_driver_sql(f"SELECT count(*) FROM {TAKEN} WHERE NOT copied").scalar() == 0:
        return 0
    return bind.exec_driver_sql(f"DELETE FROM {rows} WHERE session_id IN ({PYTHON_RULES})").rowcount


def _python_ids(bind, s_t) -> None:
    """The temporary table ``_EXTRA`` (run_id): the ids the Python rules give the runs of every session
    left to them (read and decoded here, as the Python pass will; a runs that is not an array
    has no element, so is never copied, and no other blob is read: no function of ``runs`` here, which
    would read every blob of the table)."""
    bind.exec_driver_sql(f"CREATE TEMPORARY TABLE {_EXTRA} (run_id TEXT)")
    others = f"SELECT s.session_id, s.runs FROM {s_t} s WHERE s.session_id IN ({PYTHON_RULES})"
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


def _drop_contested(bind, rows, stored) -> None:
    """Leave to the Python rules every copied session holding a contested id (table ``_CONTESTED``): one held
    twice among the runs of the copied sessions (``rows``: session_id, run_id) and the ids of ``_EXTRA``,
    or held by a stored run (the runs table ``stored``; None: ``rows`` is the new runs table itself)."""
    held = f" UNION SELECT run_id FROM {stored}" if stored else ""
    bind.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_CONTESTED} AS SELECT run_id FROM (SELECT i.run_id FROM {rows} i "
        f"JOIN {TAKEN} c ON c.session_id = i.session_id AND c.copied UNION ALL SELECT run_id FROM {_EXTRA}) a "
        f"GROUP BY run_id HAVING count(*) > 1{held}"
    )
    _leave_to_python(bind, f"SELECT i.session_id FROM {rows} i JOIN {_CONTESTED} c ON c.run_id = i.run_id")


def _copy_plain(bind, s_t, r_t, temp, elements, position, run_id, text, integer, run_data):
    """From the element facts (temporary table ``_IDS``: session_id, run_id, plain): the sessions (:data:`TAKEN`,
    copied where every element is plain), the ids the Python rules give the runs of every other session
    (:func:`_python_ids`), the contested ids (:func:`_drop_contested`), and the copied sessions' runs inserted by
    one statement. ``temp``: the dialect's schema of temporary tables."""
    for name in (TAKEN, _EXTRA, _CONTESTED):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {temp}.{name}")
    plain = "min(CASE WHEN plain THEN 1 ELSE 0 END) = 1"
    _note_taken(bind, s_t, f"SELECT session_id, {plain} AS plain FROM {_IDS} GROUP BY session_id", "false")
    bind.exec_driver_sql(f"CREATE UNIQUE INDEX {TAKEN}_key ON {TAKEN} (session_id)")
    _python_ids(bind, s_t)
    _drop_contested(bind, _IDS, r_t)
    result = bind.exec_driver_sql(
        f"INSERT INTO {r_t} ({', '.join(RUN_COLUMNS)}) SELECT "
        + _run_columns(run_id, position, run_data, text, integer)
        + f" FROM {s_t} s JOIN {TAKEN} p ON p.session_id = s.session_id AND p.copied, {elements}"
    )
    copied_runs = result.rowcount
    copied_sessions = bind.exec_driver_sql(f"SELECT count(*) FROM {TAKEN} WHERE copied").scalar()
    return copied_sessions, copied_runs


def drop_temporary(bind, schema: str) -> None:
    """Drop the temporary tables of the set-based copy (``schema``: the dialect's temporary schema)."""
    for name in (TAKEN, _IDS, _EXTRA, _CONTESTED, _ELEMENTS, _ROWS, _NOT_UTF8):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{name}")
