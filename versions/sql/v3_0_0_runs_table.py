"""3.0.0 — runs move out of the sessions ``runs`` column into a runs table, one row per run.

DDL: the runs table (primary key ``run_id``, foreign key to the sessions table ``ON DELETE
CASCADE``, Agno 3.x's indexes). Data: every element of every session's ``runs`` blob is copied
into it (``convert.run_rows``, ids by ``convert.rekey_runs``: the same rules as the MongoDB step),
walking the sessions by keyset (``session_id``) in batches so memory stays flat. Unlike Agno's own
v3_0_0 (whose ``ON CONFLICT(run_id) DO NOTHING`` keeps only the first session's run of a shared
``run_id``, and which skips runs without one): a run without ``run_id`` gets a deterministic id
instead of being dropped; a ``run_id`` another session already owns is stored under a derived id and
reported; runs already copied (same id, same session and position) are skipped, so an interrupted
copy completes on the next run. The legacy ``runs`` column is kept.

Online (``upgrade --online``, PostgreSQL: :func:`_online_upgrade`) the copy commits batch by batch
and the sessions written meanwhile are noted by a trigger and copied again at the end.

Revision ID: v3_0_0
Revises: v2_5_0
"""

import contextlib
import gc
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agno_migrate import convert, jsoncodec
from agno_migrate.migrate.sql import plain_runs

revision = "v3_0_0"
down_revision = "v2_5_0"
branch_labels = None
depends_on = None

SESSION_BATCH = 200
LOOKUP_CHUNK = 500
SET_BASED = True  # tests set False to compare with the Python rules alone on the same data
SQLITE_SET_BASED = False  # off: no faster than the Python rules on SQLite (measured on the 2.6 bench input:
# the same CPU time), and where an element is not as json.dumps writes it its run_data would be its own text
# (the same value) instead of jsoncodec.compact's. Safe to turn on: a session holding bytes that are not UTF-8 is
# left to the Python rules (SQLite keeps any bytes as TEXT), which stop with one line (exit 10) and change
# nothing. The tests turn it on to compare both paths.
RUN_COLUMNS = ("run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id", "parent_run_id",
               "status", "run_index", "run_data", "created_at", "updated_at")  # fmt: skip
INDEXED = ("run_type", "agent_id", "team_id", "workflow_id", "user_id", "status", "created_at", "session_id")


def _string(dialect, length):
    return sa.String(length) if dialect == "mysql" else sa.String()


def _json(dialect):
    return postgresql.JSONB() if dialect == "postgresql" else sa.JSON()


def _exists(name, schema):
    """Whether the table exists; offline, as the database was when the SQL was rendered."""
    ctx = op.get_context()
    if ctx.as_sql:
        return name in ctx.opts.get("existing_tables", ())
    return sa.inspect(op.get_bind()).has_table(name, schema=schema)


def upgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    online = ctx.opts.get("agno_online")  # migrate.sql.online.OnlineDDL when the upgrade runs online
    if online is not None:
        _online_upgrade(ctx, t, online)
        return
    # SQLite and PostgreSQL: the step is one transaction, the table new and empty: its secondary
    # indexes are built once after the copy instead of row by row (MySQL commits each DDL: first)
    later = not ctx.as_sql and ctx.dialect.name in ("sqlite", "postgresql")
    # PostgreSQL: its foreign key too, checked once over the table when added instead of by a trigger call
    # per row inserted (SQLite holds it inside CREATE TABLE)
    key_later = later and ctx.dialect.name == "postgresql"
    # and its primary key: built once over the set-based copy's rows, before the Python rules' pass; and where the
    # set-based copy applies, the table itself is created by it, its primary key too (``plain_runs.copy_postgresql``:
    # create)
    by_copy = key_later and _set_based_creates(ctx, t)
    created = by_copy or _create_runs_table(
        ctx, t, indexes=not later, foreign_key=not key_later, primary_key=not key_later
    )
    if not ctx.as_sql:
        leftovers = ctx.dialect.name == "postgresql" and _exists(CHANGED.format(t.session_table), t.schema)
        if leftovers:  # an online run was killed: the sessions it noted changed are copied again
            op.execute(f"DELETE FROM {_qt(t.runs_table, t.schema)} WHERE session_id IN (SELECT session_id FROM "
                       f"{_qt(CHANGED.format(t.session_table), t.schema)})")  # fmt: skip
        copied = _copy_runs(ctx, t, keyless=key_later and created and not by_copy, create=by_copy)
        ctx.opts["agno_report"].add_runs_copied(copied)
        if leftovers:
            for statement in _forget_changes(t):
                op.execute(statement)
    if later and created:
        if key_later:
            op.create_foreign_key(**_foreign_key(ctx.dialect.name, t))
        _create_indexes(ctx.dialect.name, t.runs_table, t.schema if ctx.dialect.name != "sqlite" else None, set())


def _set_based_creates(ctx, t) -> bool:
    """Whether the set-based copy creates the runs table (PostgreSQL, offline, the table not there yet, the
    copy applying: ``plain_runs.copy_postgresql``'s create)."""
    if ctx.as_sql or not SET_BASED or _exists(t.runs_table, t.schema):
        return False
    return plain_runs.pg_applies(op.get_bind(), t.session_table, t.schema)


def _foreign_key(dialect, t):
    """The runs table's foreign key to the sessions table (``op.create_foreign_key``'s arguments)."""
    schema = t.schema if dialect != "sqlite" else None
    return {
        "constraint_name": f"{t.runs_table}_session_id_fkey" if dialect == "postgresql" else None,
        "source_table": t.runs_table,
        "referent_table": t.session_table,
        "local_cols": ["session_id"],
        "remote_cols": ["session_id"],
        "ondelete": "CASCADE",
        "source_schema": schema,
        "referent_schema": schema,
    }


def _create_runs_table(ctx, t, indexes=True, resume=True, foreign_key=True, primary_key=True):
    """Create the runs table (its indexes too unless not ``indexes``, its foreign key unless not
    ``foreign_key``, its primary key unless not ``primary_key``: :func:`_add_primary_key`); False when it
    exists already (then its missing indexes are created, unless not ``resume``)."""
    dialect = ctx.dialect.name
    schema = t.schema if dialect != "sqlite" else None
    r = t.runs_table
    if _exists(r, schema):
        if resume and not ctx.as_sql:  # MySQL commits each DDL: a run killed before the last index resumes here
            if dialect == "postgresql":  # a concurrent build killed mid-way (online) left an INVALID index
                _drop_invalid_indexes(r, schema)
            _create_indexes(
                dialect, r, schema, {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(r, schema=schema)}
            )
        return False
    op.create_table(
        r,
        *_columns(dialect),
        *([_primary_key(dialect, r)] if primary_key else []),
        *([_foreign_key_constraint(dialect, t)] if foreign_key else []),
        schema=schema,
    )
    if indexes:
        _create_indexes(dialect, r, schema, set())
    return True


def _columns(dialect):
    """The runs table's columns (:data:`RUN_COLUMNS`, in that order)."""
    return [
        sa.Column("run_id", _string(dialect, 128), nullable=False),
        sa.Column("session_id", _string(dialect, 128), nullable=False),
        sa.Column("run_type", _string(dialect, 20), nullable=False),
        sa.Column("agent_id", _string(dialect, 128)),
        sa.Column("team_id", _string(dialect, 128)),
        sa.Column("workflow_id", _string(dialect, 128)),
        sa.Column("user_id", _string(dialect, 128)),
        sa.Column("parent_run_id", _string(dialect, 128)),
        sa.Column("status", _string(dialect, 50)),
        sa.Column("run_index", sa.BigInteger()),
        sa.Column("run_data", _json(dialect), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
    ]


def _primary_key_name(dialect, r):
    return f"{r}_pkey" if dialect == "postgresql" else None


def _primary_key(dialect, r):
    return sa.PrimaryKeyConstraint("run_id", name=_primary_key_name(dialect, r))


def _add_primary_key(dialect, t):
    """The primary key of a runs table created without it (PostgreSQL)."""
    op.create_primary_key(_primary_key_name(dialect, t.runs_table), t.runs_table, ["run_id"], schema=t.schema)


def _foreign_key_constraint(dialect, t):
    key = _foreign_key(dialect, t)
    referent = ".".join(filter(None, (key["referent_schema"], t.session_table, "session_id")))
    return sa.ForeignKeyConstraint(["session_id"], [referent], ondelete="CASCADE", name=key["constraint_name"])


def _drop_invalid_indexes(r, schema):
    invalid = op.get_bind().execute(
        sa.text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t "
            "ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = :schema AND t.relname = :table AND NOT i.indisvalid"
        ),
        {"schema": schema, "table": r},
    )
    for (name,) in invalid.all():
        op.execute(f"DROP INDEX {_qt(name, schema)}")


def _indexes(dialect, r):
    """The runs table's secondary indexes: (name, columns)."""
    composite = f"{r}_runs_session_id_run_index" if dialect == "mysql" else f"idx_{r}_session_id_run_index"
    return [*((f"idx_{r}_{col}", [col]) for col in INDEXED), (composite, ["session_id", "run_index"])]


def _create_indexes(dialect, r, schema, existing):
    for name, columns in _indexes(dialect, r):
        if name not in existing:
            op.create_index(name, r, columns, schema=schema)


class _CompactJSON(sa.types.TypeDecorator):
    """``run_data`` as this step writes it on SQLite: ``jsoncodec.compact`` (no spaces), the bytes of the
    element as SQLite's JSON functions give it, which the set-based copy writes (read back by ``json.loads``,
    the same value as ``json.dumps``'s text)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else jsoncodec.compact(value)


def _tables(t, dialect):
    """The sessions and runs tables as the copy reads and writes them."""
    schema = t.schema if dialect != "sqlite" else None
    sessions = sa.table(
        t.session_table,
        *[sa.column(c) for c in ("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id")],
        sa.column("created_at"),
        sa.column("updated_at"),
        sa.column("runs"),
        schema=schema,
    )
    runs = sa.table(
        t.runs_table,
        *[sa.column(c, _CompactJSON() if dialect == "sqlite" else _json(dialect)) if c == "run_data" else sa.column(c)
          for c in RUN_COLUMNS],
        schema=schema,
    )  # fmt: skip
    return sessions, runs


def _copy_runs(ctx, t, online=False, keyless=False, create=False):
    """Copy every legacy run into the runs table, batch by batch (see the module docstring); returns
    how many runs it wrote. ``online``: every batch committed, no set-based part (one statement over
    the whole table would be one long transaction). ``keyless``: the table is new, empty and without
    its primary key (PostgreSQL), added here after the set-based part, before the Python rules. ``create``: not
    there yet, created by the set-based part with its primary key (:func:`_set_based_creates`)."""
    bind = op.get_bind()
    dialect = ctx.dialect.name
    schema = t.schema if dialect != "sqlite" else None
    report = ctx.opts["agno_report"]  # the upgrade's StepReport (the runner gives every step one)
    progress = ctx.opts.get("agno_progress")
    commit_each_batch = online or dialect == "mysql"  # DDL is not transactional there: make progress durable
    sessions, runs = _tables(t, dialect)
    total = 0  # counted for a progress bar only: a scan of the sessions table
    if progress:
        total = bind.execute(
            sa.select(sa.func.count()).select_from(sessions).where(sessions.c.runs.isnot(None))
        ).scalar()
    done = copied = 0
    pending = sessions.c.runs.isnot(None)
    # (a table the set-based copy creates has jsonb runs to copy from: _set_based_creates asked already)
    elements = sessions if create else _stored_elements(bind, dialect, t, schema, sessions)
    set_based = None if online else _set_based(bind, dialect, t, schema, elements, create)
    if keyless:
        _add_primary_key(dialect, t)
    if set_based is not None:  # the plain sessions' runs by set-based SQL; the others below
        done, copied = set_based
        pending = sessions.c.session_id.in_(sa.text(plain_runs.PYTHON_RULES).columns(sa.column("session_id")))
        if progress:
            progress(done, total)
    last = None
    while True:
        query = sa.select(sessions).where(pending).order_by(sessions.c.session_id)
        if last is not None:
            query = query.where(sessions.c.session_id > last)
        batch = bind.execute(query.limit(SESSION_BATCH)).mappings().all()
        if not batch:
            break
        last = batch[-1]["session_id"]
        copied += _copy_sessions(bind, batch, runs, report, elements)
        done += len(batch)
        if commit_each_batch:
            bind.commit()
        if progress:
            progress(done, total)
    if set_based is not None:
        plain_runs.drop_temporary(bind, "temp" if dialect == "sqlite" else "pg_temp")
    return copied


def _copy_sessions(bind, batch, runs, report, elements=None):
    """Copy the runs of the sessions rows ``batch`` (by the Python rules); returns how many were written.
    ``elements``: the sessions table where each run's ``run_data`` is taken from (:func:`_stored_elements`)."""
    with _collector_paused():  # the rows freed before it resumes: nothing left for it to walk
        rows, exact = _run_rows(batch, report)
        written = _insert_new(bind, runs, rows, report, exact, elements)
        del rows  # (a ``return`` here would resume it first, the batch's decoded runs still alive for it to walk)
    return written


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector paused: decoding a batch's runs allocates hundreds of thousands of dicts and
    lists, none in a reference cycle (freed by their counts), whose allocation alone sets off collections that
    walk them again and again (a fifth of the step's Python time on SQLite)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_rows(batch, report):
    """The runs-table rows of the sessions rows ``batch`` (``convert.run_rows``), what is not a run reported;
    and the ids of the sessions whose blob held what orjson could not read exactly (NaN, ±Infinity, ...:
    ``jsoncodec.nonstandard_count``), whose runs only the exact encoder may write."""
    rows, exact = [], set()
    for session in batch:
        seen = jsoncodec.nonstandard_count()
        try:
            blob = jsoncodec.decode_json(session["runs"])
        except ValueError as exc:
            report.note_unparseable(session["session_id"], f"runs is not JSON: {exc}")
            continue
        if blob is None:
            continue
        if not isinstance(blob, list):
            report.note_unparseable(session["session_id"], f"runs is a {type(blob).__name__}, not a list")
            continue
        if jsoncodec.nonstandard_count() != seen:
            exact.add(session["session_id"])
        built, skipped = convert.run_rows(dict(session), blob)
        for index, reason in skipped:
            report.note_not_a_run(session["session_id"], index, reason)
        rows.extend(built)
    return rows, exact


def _stored_elements(bind, dialect, t, schema, sessions):
    """The sessions table (``sessions``) where the Python rules take each run's ``run_data`` from, as the
    set-based copy does: PostgreSQL with jsonb runs (jsonb to jsonb, every number as written: a float's round
    trip through Python would write ``1.50`` as ``1.5``); None elsewhere (the decoded run is written)."""
    if dialect == "postgresql" and plain_runs.pg_applies(bind, t.session_table, schema):
        return sessions
    return None


def _set_based(bind, dialect, t, schema, elements, create=False):
    """The set-based copy of the plain sessions (``migrate.sql.plain_runs``): (sessions, runs) copied,
    or None where it does not apply (MySQL/MariaDB, PostgreSQL without jsonb runs: ``elements`` None,
    :func:`_stored_elements`)."""
    if not SET_BASED:
        return None
    if dialect == "sqlite" and SQLITE_SET_BASED:
        return plain_runs.copy_sqlite(bind, t.session_table, t.runs_table)
    if dialect == "postgresql" and elements is not None:
        table = sa.Table(t.runs_table, sa.MetaData(), *_columns(dialect), _primary_key(dialect, t.runs_table),
                         schema=schema) if create else None  # fmt: skip
        return plain_runs.copy_postgresql(bind, t.session_table, t.runs_table, schema, table)
    return None


def _insert_new(bind, runs, rows, report, exact=frozenset(), elements=None):
    """Insert the rows whose run is not in the table yet, under the ids ``convert.rekey_runs``
    gives: a row already present with the same session and position was copied by an earlier,
    interrupted run of this step and is skipped; an id held by another session (or by another
    position of the same session) is stored under a derived id and reported. ``exact``: the
    sessions whose ``run_data`` only :class:`_CompactJSON`'s encoder may write (SQLite)."""
    keys = [convert.RunKey(row["run_id"], row["session_id"], row["run_index"]) for row in rows]
    ids, rekeyed = convert.rekey_runs(keys, lambda ids: _owners(bind, runs, ids))
    report.note_rekeyed(rekeyed)
    fresh = [(row, run_id) for row, run_id in zip(rows, ids, strict=True) if run_id is not None]
    if not fresh:
        return 0
    if bind.dialect.name == "sqlite":
        _insert_sqlite(bind, runs, fresh, exact)
    elif elements is not None:
        _insert_from_elements(bind, runs, elements, fresh)
    else:
        bind.execute(sa.insert(runs), [row if run_id == row["run_id"] else {**row, "run_id": run_id}
                                       for row, run_id in fresh])  # fmt: skip
    return len(fresh)


def _insert_sqlite(bind, runs, fresh, exact):
    """Insert ``fresh`` ((row, run_id) pairs) by one executemany of the driver, ``run_data`` encoded here as
    :class:`_CompactJSON` encodes it: the same rows as ``sa.insert(runs)``, without its bind processing per
    value (a third of the step's Python time on SQLite); its text by orjson (``jsoncodec.compact_fast``: the
    same bytes, a fifth to two thirds less time) but for the sessions in ``exact`` (a non-finite float there
    would be null)."""
    quote = bind.dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(runs.name)} ({', '.join(quote(c) for c in RUN_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in RUN_COLUMNS)})"
    )
    compact, fast = jsoncodec.compact, jsoncodec.compact_fast
    bind.exec_driver_sql(
        statement,
        [
            (run_id, r["session_id"], r["run_type"], r["agent_id"], r["team_id"], r["workflow_id"], r["user_id"],
             r["parent_run_id"], r["status"], r["run_index"],
             (compact if r["session_id"] in exact else fast)(r["run_data"]), r["created_at"], r["updated_at"])
            for r, run_id in fresh
        ],
    )  # fmt: skip


def _insert_from_elements(bind, runs, sessions, fresh):
    """Insert ``fresh`` ((row, run_id) pairs) with each run's ``run_data`` taken from its element in the stored
    array (``sessions``: jsonb runs), jsonb to jsonb as the set-based copy takes it, every number as written; a
    run that had no id gets its derived one written into it (as ``convert.run_rows`` writes it into the decoded
    run). Where that element is not there (its session's ``runs`` is a JSON string holding the array, or was
    rewritten since it was read: an online upgrade copies such sessions again at its end), the decoded run."""
    columns = [c for c in RUN_COLUMNS if c != "run_data"]
    names = ", ".join(RUN_COLUMNS)
    sessions_name = _qt(sessions.name, sessions.schema)
    element = (
        f"(SELECT s.runs -> CAST(:run_index AS int) AS v FROM {sessions_name} s "
        "WHERE s.session_id = CAST(:session_id AS varchar) AND jsonb_typeof(s.runs) = 'array')"
    )
    derived = "CAST(:derived AS varchar)"
    run_data = (
        f"coalesce((SELECT CASE WHEN {derived} IS NULL THEN e.v ELSE e.v || jsonb_build_object('run_id', {derived}) "
        f"END FROM {element} e WHERE e.v IS NOT NULL), CAST(:run_data AS jsonb))"
    )
    integers = ("run_index", "created_at", "updated_at")
    values = ", ".join(
        run_data if c == "run_data" else f"CAST(:{c} AS {'bigint' if c in integers else 'varchar'})"
        for c in RUN_COLUMNS
    )
    params = []
    for row, run_id in fresh:
        data = row["run_data"]
        derived = convert.derived_run_id(row["session_id"], row["run_index"])
        params.append(
            {**{c: row[c] for c in columns}, "run_id": run_id, "run_data": json.dumps(data),
             "derived": derived if data.get("run_id") == derived else None}
        )  # fmt: skip
    bind.execute(sa.text(f"INSERT INTO {_qt(runs.name, runs.schema)} ({names}) SELECT {values}"), params)


def _owners(bind, runs, ids):
    """run_id -> (session_id, run_index) for the given ids already in the runs table."""
    found = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        query = sa.select(runs.c.run_id, runs.c.session_id, runs.c.run_index).where(runs.c.run_id.in_(chunk))
        found.update({run_id: (sid, index) for run_id, sid, index in bind.execute(query)})
    return found


# --- online (upgrade --online): the copy outside one long transaction, then a catch-up ------------

CHANGED = "{}_agno_changed"
"""The table of the sessions written while the online copy runs (``session_id``), fed by a trigger."""
CHANGE_TRIGGER = "agno_migrate_changed"
CATCHUP_BATCH = 200
FINAL_BACKLOG = 200  # sessions left to the final catch-up, under the sessions table's lock


def _qt(name, schema):
    quote = op.get_context().dialect.identifier_preparer.quote
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def _note_function(t):
    return f"{t.session_table}_agno_note_change"


def _forget_changes(t):
    """The statements that drop the trigger noting changed sessions, its function and its table."""
    return [
        f"DROP TRIGGER IF EXISTS {CHANGE_TRIGGER} ON {_qt(t.session_table, t.schema)}",
        f"DROP FUNCTION IF EXISTS {_qt(_note_function(t), t.schema)}()",
        f"DROP TABLE IF EXISTS {_qt(CHANGED.format(t.session_table), t.schema)}",
    ]


def _online_upgrade(ctx, t, online):
    """The step while the application writes (PostgreSQL): the runs table created (short DDL); a
    trigger noting every session inserted or updated from then on (table ``CHANGED``); the copy by
    keyset batches, each batch committed (a killed run's re-run skips the runs already stored: the
    same rule as the offline step); the indexes built ``CONCURRENTLY``; the noted sessions copied
    again (their runs deleted and copied from the blob as it is now) in short transactions; at last,
    in one short transaction holding the sessions table's lock, the sessions noted since, the trigger
    and its table dropped, left open for the runner's record and Agno's stamps."""
    bind, report = online.conn, ctx.opts["agno_report"]
    r = t.runs_table
    online.transaction(f"creating {r}", lambda: _create_runs_table(ctx, t, indexes=False, resume=False))
    sessions_name, changed = _qt(t.session_table, t.schema), _qt(CHANGED.format(t.session_table), t.schema)
    function = _qt(_note_function(t), t.schema)
    online.execute(
        f"creating the trigger noting changes to {sessions_name}",
        f"CREATE TABLE IF NOT EXISTS {changed} (session_id varchar PRIMARY KEY)",
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO {changed} (session_id) VALUES (NEW.session_id) ON CONFLICT DO NOTHING; RETURN NULL; END $$",
        f"DROP TRIGGER IF EXISTS {CHANGE_TRIGGER} ON {sessions_name}",
        f"CREATE TRIGGER {CHANGE_TRIGGER} AFTER INSERT OR UPDATE ON {sessions_name} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    )
    copied = _copy_runs(ctx, t, online=True)
    bind.commit()
    for name, columns in _indexes(ctx.dialect.name, r):
        online.build_index(name, r, columns)
    sessions, runs = _tables(t, ctx.dialect.name)
    elements = _stored_elements(bind, ctx.dialect.name, t, t.schema, sessions)
    take = sa.text(
        f"DELETE FROM {changed} WHERE session_id IN (SELECT session_id FROM {changed} ORDER BY session_id "
        f"LIMIT {CATCHUP_BATCH}) RETURNING session_id"
    )

    def catch_up() -> tuple[int, int]:
        """Copy again one batch of the sessions noted: (sessions, runs written less runs deleted)."""
        ids = bind.execute(take).scalars().all()
        if not ids:
            return 0, 0
        deleted = bind.execute(sa.delete(runs).where(runs.c.session_id.in_(ids))).rowcount
        batch = bind.execute(
            sa.select(sessions).where(sessions.c.session_id.in_(ids), sessions.c.runs.isnot(None))
        ).mappings()
        return len(ids), _copy_sessions(bind, batch.all(), runs, report, elements) - deleted

    # outside the lock, until few are left: the sessions written during the copy, then during this
    # loop (bounded: writers faster than the catch-up leave the rest to the final transaction)
    backlog = sa.text(f"SELECT count(*) FROM {changed}")
    rounds = 2 * (bind.execute(backlog).scalar() // CATCHUP_BATCH + 1)
    while rounds and bind.execute(backlog).scalar() > FINAL_BACKLOG:
        rounds -= 1
        copied += online.transaction("copying the sessions changed during the copy", catch_up)[1]

    def final() -> int:
        bind.exec_driver_sql(f"LOCK TABLE {sessions_name} IN ACCESS EXCLUSIVE MODE")
        net = 0
        while True:
            noted, more = catch_up()
            net += more
            if not noted:
                break
        for statement in _forget_changes(t):
            bind.exec_driver_sql(statement)
        return net

    copied += online.transaction(f"the final catch-up of {sessions_name}", final, keep_open=True)
    report.add_runs_copied(copied)


def downgrade():
    raise NotImplementedError("3.0.0 cannot be undone: runs written since the upgrade live only in the runs table")
