"""The physical floor of the whole-database upgrade (bench_whole_upgrade.py's side C): the DDL and data changes
agno-migrate's ``upgrade`` makes on an Agno 2.0 database (the table fixture pack's tables, default names), done
by the raw driver (sqlite3 / psycopg) in one process and one transaction, with as little Python as possible.

    python floor_side.py (sqlite:///FILE | postgresql+psycopg://.../DB | mysql+pymysql://.../DB) [POINT]

POINT (default 2.0): the input's Agno release. ``2.6`` (bench_whole_upgrade.py --point 2.6): a sessions table at
2.5.6 with its runs in the blob (tests/fixtures/2.6.0): the work is 3.0.0's runs table (filled by one
``INSERT … SELECT``, its indexes built after; on PostgreSQL created and filled by one parallel ``CREATE TABLE …
AS``, keyed and indexed after: :func:`pg_runs`) and, on MariaDB, 3.0.1's binary collation of the id columns.

Not a migration tool: no checks, no resumability, no per-row rules (the runs are copied by ONE set-based
statement; run_data is the blob's element as the database's JSON functions give it, not byte for byte what
agno-migrate writes, and runs without a plain ``run_id`` are not handled). It ends with the same tables, the
same row counts and the same stamps as agno-migrate (the benchmark checks the counts), and says how fast the
same work can go on this machine.
"""

import datetime
import sys

INDEXED = ("run_type", "agent_id", "team_id", "workflow_id", "user_id", "status", "created_at", "session_id")
STAMPED = ("agno_sessions", "agno_runs", "agno_eval_runs", "agno_knowledge", "agno_memories", "agno_metrics")


def runs_table(p: str, json_type: str, pk: str, fk: str) -> list[str]:
    return [
        f"CREATE TABLE {p}agno_runs (run_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, "
        "run_type VARCHAR NOT NULL, agent_id VARCHAR, team_id VARCHAR, workflow_id VARCHAR, user_id VARCHAR, "
        f"parent_run_id VARCHAR, status VARCHAR, run_index BIGINT, run_data {json_type} NOT NULL, "
        f"created_at BIGINT NOT NULL, updated_at BIGINT, {pk}PRIMARY KEY (run_id), {fk}FOREIGN KEY (session_id) "
        f"REFERENCES {p}agno_sessions (session_id) ON DELETE CASCADE)",
    ]


def runs_indexes(p: str) -> list[str]:
    return [f"CREATE INDEX idx_agno_runs_{c} ON {p}agno_runs ({c})" for c in INDEXED] + [
        f"CREATE INDEX idx_agno_runs_session_id_run_index ON {p}agno_runs (session_id, run_index)"
    ]


def versions_table(p: str, pk: str) -> list[str]:
    return [
        f"CREATE TABLE {p}agno_schema_versions (table_name VARCHAR NOT NULL, version VARCHAR NOT NULL, "
        f"created_at VARCHAR NOT NULL, updated_at VARCHAR, {pk}PRIMARY KEY (table_name))",
        f"CREATE INDEX idx_agno_schema_versions_created_at ON {p}agno_schema_versions (created_at)",
    ]


def owners(p: str) -> list[str]:
    """3.0.0 on evals and knowledge: user_id and its indexes."""
    return [
        f"ALTER TABLE {p}agno_eval_runs ADD COLUMN user_id VARCHAR",
        f"CREATE INDEX idx_agno_eval_runs_user_id ON {p}agno_eval_runs (user_id)",
        f"ALTER TABLE {p}agno_knowledge ADD COLUMN user_id VARCHAR",
        f"CREATE INDEX idx_agno_knowledge_user_id ON {p}agno_knowledge (user_id)",
        f"CREATE INDEX idx_agno_knowledge_user_id_linked_to ON {p}agno_knowledge (user_id, linked_to)",
    ]


def run_columns(e: str, s: str) -> str:
    """The runs-table columns but run_id, session_id, run_index and run_data, from the element's text
    getter ``e(key)``, its integer getter ``s(key)``."""
    created = f"coalesce(nullif({s('created_at')}, 0), nullif(s.created_at, 0), 0)"
    return (
        f"s.session_type, coalesce({e('agent_id')}, CASE WHEN s.session_type = 'agent' THEN s.agent_id END), "
        f"coalesce({e('team_id')}, CASE WHEN s.session_type = 'team' THEN s.team_id END), "
        f"coalesce({e('workflow_id')}, CASE WHEN s.session_type = 'workflow' THEN s.workflow_id END), "
        f"s.user_id, {e('parent_run_id')}, {e('status')}, {created}, "
        f"coalesce(nullif({s('updated_at')}, 0), nullif(s.updated_at, 0), {created})"
    )


INSERT = (
    "INSERT INTO {p}agno_runs (run_id, session_id, run_index, run_data, run_type, agent_id, team_id, "
    "workflow_id, user_id, parent_run_id, status, created_at, updated_at) "
)


def sqlite_runs(ex) -> None:
    """The runs copied by one statement over json_each (the 2.x blob is a JSON string holding the list), then
    the runs table's indexes."""
    e = lambda k: f"json_extract(e.value, '$.{k}')"  # noqa: E731
    ex(
        INSERT.format(p="")
        + f"SELECT {e('run_id')}, s.session_id, e.key, e.value, {run_columns(e, e)} FROM agno_sessions s, "
        "json_each(CASE json_type(s.runs) WHEN 'text' THEN json_extract(s.runs, '$') ELSE s.runs END) e "
        "WHERE s.runs IS NOT NULL AND e.type = 'object'"  # a JSON null runs is one element, no run
    )
    for sql in runs_indexes(""):
        ex(sql)


PARALLEL = ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size")
"""The planner's costs lowered for the runs table's one statement (agno-migrate's ``plain_runs._PARALLEL``)."""


def pg_runs(ex, p: str) -> None:
    """The runs table created and filled by one ``CREATE TABLE … AS`` over jsonb_array_elements (which PostgreSQL
    may run with its parallel workers, unlike an ``INSERT … SELECT``; the planner's parallel costs lowered for it,
    as agno-migrate lowers them), its NOT NULL constraints, primary key, foreign key and indexes after: the
    fastest form of the same work known here (agno-migrate's own)."""
    e = lambda k: f"(e.value ->> '{k}')"  # noqa: E731
    i = lambda k: f"(e.value ->> '{k}')::bigint"  # noqa: E731
    columns = ("run_id", "session_id", "run_index", "run_data", "run_type", "agent_id", "team_id", "workflow_id",
               "user_id", "parent_run_id", "status", "created_at", "updated_at")  # fmt: skip
    types = {"run_index": "bigint", "run_data": "jsonb", "created_at": "bigint", "updated_at": "bigint"}
    typed = ", ".join(f"CAST({c} AS {types.get(c, 'varchar')}) AS {c}" for c in columns)
    for name in PARALLEL:
        ex(f"SET LOCAL {name} = 0")
    ex(
        f"CREATE TABLE {p}agno_runs AS SELECT {typed} FROM (SELECT e.value ->> 'run_id', s.session_id, e.ord - 1, "
        f"e.value, {run_columns(e, i)} FROM {p}agno_sessions s, jsonb_array_elements(s.runs) WITH ORDINALITY "
        f"e(value, ord) WHERE jsonb_typeof(s.runs) = 'array') r({', '.join(columns)})"
    )
    for name in PARALLEL:
        ex(f"SET LOCAL {name} TO DEFAULT")
    required = ("run_id", "session_id", "run_type", "run_data", "created_at")
    ex(f"ALTER TABLE {p}agno_runs " + ", ".join(f"ALTER COLUMN {c} SET NOT NULL" for c in required))
    ex(f"ALTER TABLE {p}agno_runs ADD CONSTRAINT agno_runs_pkey PRIMARY KEY (run_id)")
    ex(f"ALTER TABLE {p}agno_runs ADD CONSTRAINT agno_runs_session_id_fkey FOREIGN KEY (session_id) "
       f"REFERENCES {p}agno_sessions (session_id) ON DELETE CASCADE")  # fmt: skip
    for sql in runs_indexes(p):
        ex(sql)


def sqlite(path: str) -> None:
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    ex = db.execute
    ex("PRAGMA journal_mode = WAL")  # as the real tools leave it
    ex("BEGIN")
    # 2.3.0 / 2.5.0: nothing on the SQLite sessions table; the version table
    for sql in versions_table("", "") + runs_table("", "JSON", "", ""):
        ex(sql)
    sqlite_runs(ex)
    # memories (2.3.0): created_at from updated_at, feedback
    ex("ALTER TABLE agno_memories ADD COLUMN created_at BIGINT DEFAULT 0 NOT NULL")
    ex("ALTER TABLE agno_memories ADD COLUMN feedback VARCHAR")
    ex(f"UPDATE agno_memories SET created_at = coalesce(updated_at, {int(datetime.datetime.now().timestamp())})")
    ex("CREATE INDEX idx_agno_memories_created_at ON agno_memories (created_at)")
    for sql in owners(""):
        ex(sql)
    # metrics (3.0.0): user_id NOT NULL '' and the new unique key: SQLite rebuilds the table
    (create,) = ex("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'agno_metrics'").fetchone()
    indexes = [r[0] for r in ex("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'agno_metrics' "
                                "AND sql IS NOT NULL")]  # fmt: skip
    create = (
        create.replace("CREATE TABLE agno_metrics", "CREATE TABLE agno_metrics_new")
        .replace("PRIMARY KEY (id)", "user_id VARCHAR DEFAULT ('') NOT NULL, PRIMARY KEY (id)")
        .replace(
            "CONSTRAINT agno_metrics_uq_metrics_date_period UNIQUE (date, aggregation_period)",
            "CONSTRAINT agno_metrics_uq_metrics_user_date_period UNIQUE (user_id, date, aggregation_period)",
        )
    )
    ex(create)
    columns = ", ".join(r[1] for r in ex("PRAGMA table_info(agno_metrics)"))
    ex(f"INSERT INTO agno_metrics_new ({columns}) SELECT {columns} FROM agno_metrics")
    ex("DROP TABLE agno_metrics")
    ex("ALTER TABLE agno_metrics_new RENAME TO agno_metrics")
    for sql in [*indexes, "CREATE INDEX idx_agno_metrics_user_id ON agno_metrics (user_id)"]:
        ex(sql)
    stamps(ex, "", "?")
    ex("COMMIT")
    db.close()


def stamps(ex, p: str, mark: str) -> None:
    now = datetime.datetime.now().isoformat()
    sql = (
        f"INSERT INTO {p}agno_schema_versions (table_name, version, created_at, updated_at) "
        f"VALUES ({mark}, '3.0.0', {mark}, {mark})"
    )
    for table in STAMPED:
        ex(sql, (table, now, now))


def fast_compression(ex) -> None:
    """The large values compressed by lz4 in this transaction, as agno-migrate's steps do (the same rule: the
    server has it and ``default_toast_compression`` is the built-in default; ``PostgreSQL.fast_compression``):
    the same physical work, compression included."""
    row = ex("SELECT setting, source, enumvals FROM pg_settings WHERE name = 'default_toast_compression'").fetchone()
    if row is not None and row[1] == "default" and row[0] != "lz4" and "lz4" in (row[2] or ()):
        ex("SET LOCAL default_toast_compression = lz4")


def postgresql(url: str) -> None:
    import psycopg

    p = "ai."
    conn = psycopg.connect(url.replace("+psycopg", ""))
    ex = conn.execute
    fast_compression(ex)
    sessions_json = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "runs", "summary")
    # 2.3.0: jsonb (one rewrite per table), the version table; 2.5.0: the primary key
    ex(f"ALTER TABLE {p}agno_sessions " + ", ".join(f"ALTER COLUMN {c} TYPE jsonb" for c in sessions_json))
    for sql in versions_table(p, "CONSTRAINT agno_schema_versions_pkey "):
        ex(sql)
    ex(f"ALTER TABLE {p}agno_sessions ADD CONSTRAINT agno_sessions_pkey PRIMARY KEY (session_id), "
       "DROP CONSTRAINT agno_sessions_uq_session_id")  # fmt: skip
    # 3.0.0: the runs table, created by one statement, keyed and indexed after
    pg_runs(ex, p)
    # memories (2.3.0), evals/knowledge/metrics jsonb (2.3.0) and owners (3.0.0)
    now = int(datetime.datetime.now().timestamp())
    ex(f"ALTER TABLE {p}agno_memories ALTER COLUMN memory TYPE jsonb, ALTER COLUMN topics TYPE jsonb, "
       f"ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0, ADD COLUMN feedback TEXT")  # fmt: skip
    ex(f"UPDATE {p}agno_memories SET created_at = coalesce(updated_at, {now})")
    ex(f"ALTER TABLE {p}agno_memories ALTER COLUMN created_at DROP DEFAULT")
    ex(f"CREATE INDEX idx_agno_memories_created_at ON {p}agno_memories (created_at)")
    ex(f"ALTER TABLE {p}agno_eval_runs ALTER COLUMN eval_data TYPE jsonb, ALTER COLUMN eval_input TYPE jsonb")
    ex(f"ALTER TABLE {p}agno_knowledge ALTER COLUMN metadata TYPE jsonb")
    for sql in owners(p):
        ex(sql)
    ex(f"ALTER TABLE {p}agno_metrics ALTER COLUMN token_metrics TYPE jsonb, ALTER COLUMN model_metrics TYPE jsonb, "
       "ADD COLUMN user_id VARCHAR NOT NULL DEFAULT '', DROP CONSTRAINT agno_metrics_uq_metrics_date_period, "
       "ADD CONSTRAINT agno_metrics_uq_metrics_user_date_period "
       "UNIQUE (user_id, date, aggregation_period)")  # fmt: skip
    ex(f"ALTER TABLE {p}agno_metrics ALTER COLUMN user_id DROP DEFAULT")
    ex(f"CREATE INDEX idx_agno_metrics_user_id ON {p}agno_metrics (user_id)")
    stamps(ex, p, "%s")
    conn.commit()
    conn.close()


def split_sqlite(path: str, wal: bool = False) -> None:
    """2.6 -> head on SQLite: the runs table, filled by one statement, indexed after; the stamps. ``wal``: the
    file put in WAL mode first, as agno-migrate and Agno run it (floor_journal.py); otherwise the input's mode
    (the 2.6 fixture's: the rollback journal)."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    ex = db.execute
    if wal:
        ex("PRAGMA journal_mode = WAL")
    ex("BEGIN")
    for sql in runs_table("", "JSON", "", ""):
        ex(sql)
    sqlite_runs(ex)
    split_stamps(ex, "", "?")
    ex("COMMIT")
    db.close()


def split_stamps(ex, p: str, mark: str) -> None:
    now = datetime.datetime.now().isoformat()
    ex(f"UPDATE {p}agno_schema_versions SET version = '3.0.0', updated_at = {mark} WHERE table_name = 'agno_sessions'",
       (now,))  # fmt: skip
    ex(f"INSERT INTO {p}agno_schema_versions (table_name, version, created_at, updated_at) "
       f"VALUES ('agno_runs', '3.0.0', {mark}, {mark})", (now, now))  # fmt: skip


def split_postgresql(url: str) -> None:
    import psycopg

    p = "ai."
    conn = psycopg.connect(url.replace("+psycopg", ""))
    ex = conn.execute
    fast_compression(ex)
    pg_runs(ex, p)
    split_stamps(ex, p, "%s")
    conn.commit()
    conn.close()


ID = "VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
SESSION_IDS = ("session_id", "agent_id", "team_id", "workflow_id", "user_id")


def split_mariadb(url: str) -> None:
    """2.6 -> head on MariaDB: 3.0.1's binary collation on the sessions' id columns (one ALTER), the runs
    table with it, filled by one ``INSERT … SELECT`` over ``JSON_TABLE``, its indexes built after (one ALTER)."""
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, charset="utf8mb4")  # fmt: skip
    cur = conn.cursor()
    ex = cur.execute
    ex("ALTER TABLE agno_sessions " + ", ".join(
        f"MODIFY {c} {ID}{' NOT NULL' if c == 'session_id' else ''}" for c in SESSION_IDS))  # fmt: skip
    ex(
        f"CREATE TABLE agno_runs (run_id {ID} NOT NULL, session_id {ID} NOT NULL, run_type VARCHAR(20) NOT NULL, "
        f"agent_id {ID}, team_id {ID}, workflow_id {ID}, user_id {ID}, parent_run_id {ID}, status VARCHAR(50), "
        "run_index BIGINT, run_data JSON NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, "
        "PRIMARY KEY (run_id), "
        "FOREIGN KEY (session_id) REFERENCES agno_sessions (session_id) ON DELETE CASCADE)"
    )
    columns = ", ".join(
        [f"{k} VARCHAR(128) PATH '$.{k}'" for k in ("run_id", "agent_id", "team_id", "workflow_id", "parent_run_id")]
        + ["status VARCHAR(50) PATH '$.status'", "created_at BIGINT PATH '$.created_at'",
           "updated_at BIGINT PATH '$.updated_at'", "value JSON PATH '$'", "ord FOR ORDINALITY"]
    )  # fmt: skip
    e = lambda k: f"e.{k}"  # noqa: E731
    ex(
        INSERT.format(p="") + f"SELECT e.run_id, s.session_id, e.ord - 1, e.value, {run_columns(e, e)} "
        f"FROM agno_sessions s, JSON_TABLE(s.runs, '$[*]' COLUMNS ({columns})) e WHERE json_type(s.runs) = 'ARRAY'"
    )
    conn.commit()
    indexes = [f"ADD INDEX idx_agno_runs_{c} ({c})" for c in INDEXED]
    ex("ALTER TABLE agno_runs " + ", ".join([*indexes, "ADD INDEX agno_runs_runs_session_id_run_index "
                                             "(session_id, run_index)"]))  # fmt: skip
    split_stamps(ex, "", "%s")
    conn.commit()
    conn.close()


if __name__ == "__main__":
    target, point = sys.argv[1], (sys.argv[2:] or ["2.0"])[0]
    if point == "2.6-wal":
        split_sqlite(target.split("///", 1)[1], wal=True)
    elif point == "2.6":
        {"sqlite": split_sqlite, "postgresql": split_postgresql, "mysql": split_mariadb}[
            target.split(":")[0].split("+")[0]
        ](target.split("///", 1)[1] if target.startswith("sqlite") else target)
    elif target.startswith("sqlite"):
        sqlite(target.split("///", 1)[1])
    else:
        postgresql(target)
