"""A database to copy into: created at head as ``upgrade`` creates an empty one, loaded in bulk, with
a checkpoint per batch so that a killed copy resumes.

:func:`open_sink` gives a :class:`SqlSink` or a :class:`MongoSink`. :meth:`Sink.prepare` refuses a
non-empty target before any change (``Refused``, exit 8, naming ``--if-exists``) unless told how to
merge, or unless the target holds this source's unfinished copy (then it resumes); then it brings the
target to head (``runner.upgrade``: the head tables, our version record, Agno's stamps), writes the
checkpoint, and on an empty target drops the secondary indexes of the sessions and runs tables, built
again by :meth:`Sink.finish` after the load (the primary keys, the unique ids on MongoDB and the
indexes the runs table's foreign key needs stay).

Each batch (:meth:`Sink.write`) is written with its checkpoint in one transaction on SQL (PostgreSQL
``COPY``, multi-row inserts elsewhere: ``migrate.legacy.sql``'s writer); on MongoDB with
``insert_many`` then the checkpoint, every write idempotent (sessions already there are recognised,
runs re-keyed by ``convert.rekey_runs`` find themselves in place), so a replayed batch is harmless.
Values the target cannot hold follow :mod:`agno_migrate.move.fit`.
"""

from __future__ import annotations

import functools
import operator
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from agno_migrate import convert
from agno_migrate.backends import dialect_of
from agno_migrate.errors import Refused, UsageError
from agno_migrate.migrate.legacy.rules import canonical_session
from agno_migrate.move.fit import Fitted, Rules, beyond_int64, fit_unit
from agno_migrate.move.json_text import JsonText, holds_text
from agno_migrate.move.rows import settle_unit
from agno_migrate.move.source import RUN_COLUMNS, Problem, SessionUnit
from agno_migrate.schema import JSON_COLUMNS, SESSION_COLUMNS
from agno_migrate.target import Target

CHECKPOINT_TABLE = "agno_migrate_copy"
"""The table (MongoDB: collection) of copy checkpoints in the target: one row per source."""
IF_EXISTS = ("skip", "replace")
TEST_KILL = "AGNO_MIGRATE_TEST_KILL"
"""Test-only: ``N`` kills the process (SIGKILL) once batch N is committed, ``N:mid`` once its rows
are written but before its checkpoint (tests/test_copy.py's resume tests)."""


def _test_kill(batch: int, phase: str) -> None:
    wanted = os.environ.get(TEST_KILL)
    if wanted and wanted == (str(batch) if phase == "end" else f"{batch}:{phase}"):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Checkpoint:
    cursor: str | None
    done: bool
    if_exists: str | None


@dataclass
class Sink:
    """The target of a copy (see the module docstring)."""

    target: Target
    if_exists: str | None
    identity: str
    fitted: Fitted = field(default_factory=Fitted)
    rekeyed: list = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped_sessions: int = 0
    resumed: bool = False
    fresh: bool = False
    batches: int = 0
    unique_sessions: bool = False
    """The source gives each session id once (one table): in a target that was empty, no batch meets a
    session an earlier one wrote, so nothing is looked up before writing."""
    unique_runs: bool = False
    """The source's run ids are unique (a head runs table): in a target that was empty, none is held by
    another session, so no run is looked up to be re-keyed."""

    @functools.cached_property
    def rules(self) -> Rules:
        return Rules.of(dialect_of(self.target))

    @property
    def takes_text(self) -> bool:
        """Stored JSON text may be written unparsed (``move.json_text``): the target parses it itself and
        every row is new (nothing is compared with stored rows or re-keyed); known after :meth:`prepare`."""
        return dialect_of(self.target).parses_json_text and self.fresh and self.unique_sessions and self.unique_runs

    def prepare(self) -> str | None:
        """Refuse or accept the target (before any change), bring it to head, record the checkpoint;
        returns the cursor to resume after (None: from the start)."""
        has_rows, checkpoint = self.look()
        resuming = checkpoint is not None and not checkpoint.done
        if has_rows and not resuming and self.if_exists is None:
            raise Refused(
                f"{self.target.masked_url} already holds Agno sessions or runs: nothing was copied or changed; "
                "give --if-exists skip (keep its rows, copy the others) or --if-exists replace (the source's win)"
            )
        if resuming and self.if_exists is None:
            self.if_exists = checkpoint.if_exists
        from agno_migrate.migrate import runner

        runner.upgrade(self.target)
        self.resumed = resuming
        self.fresh = not has_rows
        self.start(None if not resuming else checkpoint)
        if self.fresh:
            self.drop_indexes()
        return checkpoint.cursor if resuming else None

    def write(self, units: list[SessionUnit]) -> tuple[int, int]:
        """Write one batch (the source's units) and its checkpoint; returns (sessions, runs) written."""
        self.batches += 1
        fitted = []
        for unit in units:
            session, runs = fit_unit(unit.session, unit.runs, self.rules, self.fitted, self.problems)
            fitted.append(SessionUnit(session, runs, unit.cursor, unit.part))
        return self.write_batch(fitted, units[-1].cursor)

    def keep(self, unit: SessionUnit, stored: dict | None) -> tuple[bool, bool]:
        """(write its session?, write its runs?) for a unit whose session the target holds as
        ``stored`` (None: not held). Held with the same content (a batch written again after a kill,
        a 1.x session already copied): its runs are written where missing. Held with other content:
        ``skip`` keeps it (its missing runs are copied); without ``--if-exists`` (two Agno 1.x tables
        holding one session id, as the upgrade's import meets them) it is named, not overwritten."""
        if stored is None:
            return True, True
        if canonical_session(stored) == canonical_session(unit.session):
            return False, True
        self.skipped_sessions += 1
        if self.if_exists == "skip":
            return False, True
        sid = unit.session["session_id"]
        self.problems.append(Problem(unit.part, sid, "already in the target with other content; not overwritten"))
        return False, False


# --- SQL ---------------------------------------------------------------------------------------------


class _Report:
    """What ``migrate.legacy.sql._rekey_taken_runs`` reports into."""

    def __init__(self):
        self.duplicate_run_ids: list = []


class SqlSink(Sink):
    """A SQLite, PostgreSQL or MySQL/MariaDB target."""

    _conn: Any = None
    _head: Any = None
    _checkpoints: Any = None

    @property
    def conn(self):
        if self._conn is None:
            from agno_migrate.backends import sql

            with sql.database_errors(self.target):
                self._conn = sql.engine(self.target).connect()
        return self._conn

    @property
    def head(self):
        if self._head is None:
            from agno_migrate.schema import head_tables

            self._head = head_tables(self.target)
        return self._head

    @property
    def checkpoints(self):
        if self._checkpoints is None:
            import sqlalchemy as sa

            dialect = dialect_of(self.target)
            string = dialect.string
            self._checkpoints = sa.Table(
                CHECKPOINT_TABLE,
                sa.MetaData(),
                sa.Column("source", string(255), nullable=False),
                sa.Column("cursor", sa.Text()),
                sa.Column("done", sa.Integer(), nullable=False),
                sa.Column("if_exists", string(10)),
                sa.Column("sessions", sa.BigInteger(), nullable=False),
                sa.Column("runs", sa.BigInteger(), nullable=False),
                sa.Column("updated_at", sa.BigInteger(), nullable=False),
                sa.PrimaryKeyConstraint("source", name=dialect.key_name(f"{CHECKPOINT_TABLE}_pkey")),
                schema=dialect.schema_of(self.target),
            )
        return self._checkpoints

    def _errors(self):
        from agno_migrate.backends import sql

        return sql.database_errors(self.target)

    def look(self) -> tuple[bool, Checkpoint | None]:
        import sqlalchemy as sa

        from agno_migrate.backends import sql

        with sql.connect(self.target, readonly=True) as conn, sql.database_errors(self.target):
            has_rows = False
            for name in (self.target.session_table, self.target.runs_table):
                if sql.has_table(conn, self.target, name):
                    table = sa.table(name, schema=dialect_of(self.target).schema_of(self.target))
                    has_rows = has_rows or conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
            checkpoint = None
            if sql.has_table(conn, self.target, CHECKPOINT_TABLE):
                cp = self.checkpoints
                row = conn.execute(sa.select(cp).where(cp.c.source == self.identity)).mappings().first()
                if row is not None:
                    checkpoint = Checkpoint(row["cursor"], bool(row["done"]), row["if_exists"])
        return bool(has_rows), checkpoint

    def start(self, resumed: Checkpoint | None) -> None:
        cp = self.checkpoints
        with self._errors():
            cp.create(self.conn, checkfirst=True)
            if resumed is None:
                self.conn.execute(cp.delete().where(cp.c.source == self.identity))
                self.conn.execute(
                    cp.insert().values(
                        source=self.identity, cursor=None, done=0, if_exists=self.if_exists, sessions=0, runs=0,
                        updated_at=int(time.time()),
                    )
                )  # fmt: skip
            self.conn.commit()

    def _secondary(self) -> list:
        """The indexes built after the load: every index of the sessions and runs tables but those
        the runs table's foreign key needs (their first column is ``session_id``)."""
        head = self.head
        return [*head.sessions.indexes, *[i for i in head.runs.indexes if i.columns[0].name != "session_id"]]

    def drop_indexes(self) -> None:
        with self._errors():
            for index in self._secondary():
                index.drop(self.conn, checkfirst=True)
            self.conn.commit()

    def write_batch(self, units: list[SessionUnit], cursor: str) -> tuple[int, int]:
        try:
            return self._write_batch(units, cursor)
        except _TextRefused:  # stored JSON text the server does not take: the batch again, every value decoded
            self.conn.rollback()
            settled = []
            for unit in units:
                session, runs = settle_unit(unit.session, unit.runs, self.problems)
                session, runs = fit_unit(session, runs, self.rules, self.fitted, self.problems)
                settled.append(SessionUnit(session, runs, unit.cursor, unit.part))
            return self._write_batch(settled, cursor)

    def _write_batch(self, units: list[SessionUnit], cursor: str) -> tuple[int, int]:
        from agno_migrate.migrate.legacy import sql as legacy_sql

        conn, head = self.conn, self.head
        dialect = dialect_of(self.target)
        encode = _encoder(dialect)
        ids = [unit.session["session_id"] for unit in units]
        with self._errors():
            dialect.begin_batch(conn)  # (finish() commits flushed: with it every batch)
            if self.if_exists == "replace":
                self._delete(ids)
            stored = {} if self.fresh and self.unique_sessions else self._stored(ids)
            sessions, run_values = [], []
            for unit in units:
                write_session, write_runs = self.keep(unit, stored.get(unit.session["session_id"]))
                if write_session:
                    values = list(_SESSION_VALUES(unit.session))
                    for at in _SESSION_JSON:
                        values[at] = encode(values[at])
                    sessions.append(tuple(values))
                if write_runs:
                    for run in unit.runs:
                        values = list(_RUN_VALUES(run))
                        values[_RUN_DATA] = encode(values[_RUN_DATA])
                        run_values.append(tuple(values))
            if not (self.fresh and self.unique_runs):
                report = _Report()
                run_values = legacy_sql._rekey_taken_runs(conn, head, run_values, report)
                self.rekeyed += report.duplicate_run_ids
            try:
                if sessions:
                    legacy_sql._insert(conn, dialect, head.sessions, sessions)
                if run_values:
                    legacy_sql._insert(conn, dialect, head.runs, run_values)
            except Exception as exc:
                if str(getattr(exc, "sqlstate", "")).startswith("22") and any(
                    holds_text(u.session) or any(holds_text(r) for r in u.runs) for u in units
                ):
                    raise _TextRefused from exc
                raise
            _test_kill(self.batches, "mid")
            cp = self.checkpoints
            conn.execute(
                cp.update()
                .where(cp.c.source == self.identity)
                .values(
                    cursor=cursor,
                    sessions=cp.c.sessions + len(sessions),
                    runs=cp.c.runs + len(run_values),
                    updated_at=int(time.time()),
                )
            )
            conn.commit()
        _test_kill(self.batches, "end")
        return len(sessions), len(run_values)

    def _delete(self, ids: list[str]) -> None:
        """``replace``: the batch's sessions (and their runs) out of the target first."""
        import sqlalchemy as sa

        head = self.head
        for table in (head.runs, head.sessions):
            self.conn.execute(table.delete().where(table.c.session_id.in_(sa.bindparam("ids", expanding=True))),
                              {"ids": ids})  # fmt: skip

    def _stored(self, ids: list[str]) -> dict[str, dict]:
        """session_id -> the stored sessions row, for those of ``ids`` the target holds."""
        import sqlalchemy as sa

        from agno_migrate.migrate.legacy import sql as legacy_sql

        s = self.head.sessions
        held = [row[0] for row in legacy_sql._stored(self.conn, s, s.c.session_id, ids)]
        if not held:
            return {}
        untyped = sa.table(s.name, *[sa.column(c) for c in SESSION_COLUMNS], schema=s.schema)
        query = sa.select(untyped).where(untyped.c.session_id.in_(sa.bindparam("ids", expanding=True)))
        return {row["session_id"]: dict(row) for row in self.conn.execute(query, {"ids": held}).mappings()}

    def finish(self) -> None:
        cp = self.checkpoints
        with self._errors():
            for index in self._secondary():
                index.create(self.conn, checkfirst=True)
            self.conn.execute(
                cp.update().where(cp.c.source == self.identity).values(done=1, updated_at=int(time.time()))
            )
            self.conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        from agno_migrate.backends import dispose

        dispose(self.target)


_SESSION_VALUES = operator.itemgetter(*SESSION_COLUMNS)
_SESSION_JSON = [SESSION_COLUMNS.index(c) for c in JSON_COLUMNS]
_RUN_VALUES = operator.itemgetter(*RUN_COLUMNS)
_RUN_DATA = RUN_COLUMNS.index("run_data")


class _TextRefused(Exception):
    """The server refused a batch holding stored JSON text (a data error: text that is not JSON)."""


def _encoder(dialect):
    """JSON text as the target's writer stores it (MariaDB: UTF-8 unescaped; elsewhere ``json.dumps``;
    stored text kept by ``move.json_text`` as it is)."""
    from agno_migrate import jsoncodec

    if dialect.json_unescaped:
        from agno_migrate.backends.sql import json_text

        exact = json_text
    else:
        exact = jsoncodec.dumps
    return lambda value: None if value is None else value if value.__class__ is JsonText else exact(value)


# --- MongoDB -----------------------------------------------------------------------------------------

DUPLICATE_KEY = 11000


class MongoSink(Sink):
    """A MongoDB target: documents as Agno's MongoDb writes them."""

    @property
    def db(self):
        from agno_migrate.backends import mongo

        return mongo.database(self.target)

    def _errors(self):
        from agno_migrate.backends import mongo

        return mongo.mongo_errors(self.target)

    def look(self) -> tuple[bool, Checkpoint | None]:
        with self._errors():
            db = self.db
            has_rows = any(
                db[name].find_one({}, {"_id": 1}) is not None
                for name in (self.target.session_table, self.target.runs_table)
            )
            doc = db[CHECKPOINT_TABLE].find_one({"_id": self.identity})
        checkpoint = None if doc is None else Checkpoint(doc.get("cursor"), bool(doc.get("done")), doc.get("if_exists"))
        return has_rows, checkpoint

    def start(self, resumed: Checkpoint | None) -> None:
        if resumed is not None:
            return
        with self._errors():
            self.db[CHECKPOINT_TABLE].replace_one(
                {"_id": self.identity},
                {"cursor": None, "done": False, "if_exists": self.if_exists, "updated_at": int(time.time())},
                upsert=True,
            )

    def _indexes(self) -> dict:
        from agno_migrate.schema import mongo_head_indexes

        return mongo_head_indexes(self.target)

    def drop_indexes(self) -> None:
        from agno_migrate.schema import mongo_index_name

        with self._errors():
            for name, indexes in self._indexes().items():
                present = self.db[name].index_information()
                for fields, unique in indexes:
                    if not unique and mongo_index_name(fields) in present:
                        self.db[name].drop_index(mongo_index_name(fields))

    def write_batch(self, units: list[SessionUnit], cursor: str) -> tuple[int, int]:
        db, t = self.db, self.target
        ids = [unit.session["session_id"] for unit in units]
        with self._errors():
            if self.if_exists == "replace":
                for name in (t.runs_table, t.session_table):
                    db[name].delete_many({"session_id": {"$in": ids}})
            stored = {
                doc["session_id"]: doc for doc in db[t.session_table].find({"session_id": {"$in": ids}}, {"_id": 0})
            }
            sessions, runs = [], []
            for unit in units:
                write_session, write_runs = self.keep(unit, stored.get(unit.session["session_id"]))
                if write_session:
                    sessions.append(dict(unit.session))
                if write_runs:
                    for run in unit.runs:
                        if beyond_int64(run):
                            self._unstorable(
                                unit.part, run, "holds an integer beyond 64 bits, which MongoDB cannot store"
                            )
                        else:
                            runs.append(dict(run))
            keys = [convert.RunKey(run["run_id"], run["session_id"], run["run_index"]) for run in runs]
            new_ids, rekeyed = convert.rekey_runs(keys, self._owners)
            self.rekeyed += rekeyed
            runs = [{**run, "run_id": rid} for run, rid in zip(runs, new_ids, strict=True) if rid is not None]
            written_runs = self._insert(t.runs_table, runs, "run_id")
            written = self._insert(t.session_table, sessions, "session_id")
            _test_kill(self.batches, "mid")
            db[CHECKPOINT_TABLE].update_one(
                {"_id": self.identity}, {"$set": {"cursor": cursor, "updated_at": int(time.time())}}
            )
        _test_kill(self.batches, "end")
        return written, written_runs

    def _owners(self, ids: list[str]) -> dict:
        found = self.db[self.target.runs_table].find(
            {"run_id": {"$in": ids}}, {"_id": 0, "run_id": 1, "session_id": 1, "run_index": 1}
        )
        return {doc["run_id"]: (doc["session_id"], doc.get("run_index")) for doc in found}

    def _unstorable(self, part: str, doc: dict, why: str) -> None:
        key = doc.get("run_id") or doc.get("session_id")
        self.problems.append(Problem(part, str(doc.get("session_id")), f"{key}: {why}; not copied", copied=False))

    def _insert(self, name: str, docs: list[dict], key: str) -> int:
        """``insert_many`` (unordered); a document already there (a batch written again) is no error;
        one BSON cannot hold (over 16 MB) is named and not copied, the others are."""
        from bson.errors import InvalidDocument
        from pymongo.errors import BulkWriteError, DocumentTooLarge

        if not docs:
            return 0
        collection = self.db[name]
        try:
            collection.insert_many(docs, ordered=False)
            return len(docs)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return len(docs) - len(errors)
        except (OverflowError, InvalidDocument, DocumentTooLarge):
            pass
        inserted = 0
        for doc in docs:  # (only a batch holding a document BSON cannot hold comes here)
            doc.pop("_id", None)
            try:
                if collection.find_one({key: doc[key]}, {"_id": 1}) is None:
                    collection.insert_one(doc)
                    inserted += 1
            except (OverflowError, InvalidDocument, DocumentTooLarge) as exc:
                self._unstorable(name, doc, f"{exc.__class__.__name__}: {str(exc)[:80]}")
        return inserted

    def finish(self) -> None:
        from pymongo import IndexModel

        from agno_migrate.schema import mongo_index_name

        with self._errors():
            for name, indexes in self._indexes().items():
                have = {tuple(k for k, _ in info["key"]) for info in self.db[name].index_information().values()}
                models = [
                    IndexModel(
                        [(f, 1) for f in fields], name=mongo_index_name(fields), **({"unique": True} if unique else {})
                    )
                    for fields, unique in indexes
                    if tuple(fields) not in have
                ]
                if models:
                    self.db[name].create_indexes(models)
            self.db[CHECKPOINT_TABLE].update_one(
                {"_id": self.identity}, {"$set": {"done": True, "updated_at": int(time.time())}}
            )

    def close(self) -> None:
        from agno_migrate.backends import dispose

        dispose(self.target)


def open_sink(target: Target, if_exists: str | None, identity: str) -> Sink:
    """The sink of ``target`` (nothing is read or written yet: :meth:`Sink.prepare` does)."""
    if if_exists is not None and if_exists not in IF_EXISTS:
        raise UsageError(f"--if-exists {if_exists!r}: expected one of {', '.join(IF_EXISTS)}")
    if target.read_only:
        from agno_migrate.backends.sql import raise_read_only

        raise_read_only(target)
    cls = SqlSink if dialect_of(target).sql else MongoSink
    return cls(target, if_exists, identity)
