"""Reading and writing the other Agno tables of one database, for a copy: the same calls on SQL
(:class:`SqlSide`) and MongoDB (:class:`MongoSide`).

Reads go by keyset on the row key (``WHERE key > last ORDER BY key LIMIT n``; the sort and ``$gt``
on MongoDB), one short read each, so memory stays flat in the size of a table and a source that is
never written to may be read while the application runs. Writes go batch by batch (one multi-row
insert, ``insert_many`` on MongoDB), each with its checkpoint (the last key written) in the target:
in the batch's transaction on SQL; on MongoDB after the batch, which the key's unique index makes
safe to write again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import sqlalchemy as sa

from agno_migrate.backends import dialect_of
from agno_migrate.backends import sql as sqlconn
from agno_migrate.target import Target

CHECKPOINT_PREFIX = "copy_table:"


class SqlSide:
    """One SQL database's other Agno tables (source or target of a copy)."""

    def __init__(self, target: Target):
        self.target = target
        self.dialect = dialect_of(target)
        self.schema = self.dialect.schema_of(target)
        self._tables: dict[str, sa.Table] = {}

    # --- reading -------------------------------------------------------------------------------------

    def read(self):
        return sqlconn.connect(self.target, readonly=True)

    def detect(self, names: dict[str, str], skip: set[str]) -> dict:
        from agno_migrate.tables import detect_all

        with self.read() as conn:
            return detect_all(conn, self.schema, names, skip=skip)

    def columns(self) -> dict[str, set[str]]:
        """Every table → its column names."""
        from agno_migrate.tables.detect import table_names

        with self.read() as conn:
            return table_names(conn, self.schema)

    def kinds(self, table: str) -> dict[str, str]:
        """column → type family, as detection reads it."""
        from agno_migrate.tables import reflect_sql

        with self.read() as conn:
            return {c: kind for c, (kind, _, _) in reflect_sql(conn, table, self.schema).columns.items()}

    def _select(self, table: str, kinds: dict[str, str]):
        t = sa.table(table, *map(sa.column, kinds), schema=self.schema)
        cast = self.dialect.json_cast_to_text
        cols = [
            sa.cast(t.c[c], sa.Text).label(c) if cast and kind in ("json", "jsonb") else t.c[c]
            for c, kind in kinds.items()
        ]
        return t, cols

    def batches(self, table: str, kinds: dict[str, str], key: tuple[str, ...], size: int, after=None) -> Iterator:
        """(rows, their last key) of ``table`` in key order after the key ``after``, ``size`` rows a read."""
        t, cols = self._select(table, kinds)
        order = [t.c[k] for k in key]
        while True:
            query = sa.select(*cols).order_by(*order).limit(size)
            if after is not None:
                query = query.where(_after(order, after))
            with self.read() as conn:
                rows = _dicts(conn.execute(query))
            if not rows:
                return
            after = [rows[-1][k] for k in key]
            yield rows, after

    def where(self, table: str, kinds: dict[str, str], equal: dict | None = None, column=None, values=()) -> list:
        """The rows of ``table`` whose columns equal ``equal``, or whose ``column`` is in ``values``."""
        t, cols = self._select(table, kinds)
        query = sa.select(*cols)
        if equal:
            query = query.where(*(t.c[c] == v for c, v in equal.items()))
        if column is not None:
            query = query.where(t.c[column].in_(list(values)))
        with self.read() as conn:
            return _dicts(conn.execute(query))

    def stamp(self, table: str) -> str | None:
        from agno_migrate.migrate.sql import revisions

        with self.read() as conn:
            return revisions.agno_stamp(conn, self.target, table)

    def nonempty(self, table: str) -> bool:
        from agno_migrate.backends.sql import has_table

        with self.read() as conn:
            if not has_table(conn, self.target, table):
                return False
            t = sa.table(table, schema=self.schema)
            return conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is not None

    def exists(self, table: str) -> bool:
        from agno_migrate.backends.sql import has_table

        with self.read() as conn:
            return has_table(conn, self.target, table)

    def rows_up_to(self, table: str, limit: int) -> int:
        """The rows ``table`` holds, counted up to ``limit`` (a cheap "at least" for a large table)."""
        some = sa.select(sa.literal(1)).select_from(sa.table(table, schema=self.schema)).limit(limit).subquery()
        with self.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(some)).scalar_one()

    # --- writing -------------------------------------------------------------------------------------

    def checkpoint_table(self) -> sa.Table:
        return sa.Table(
            f"{self.target.version_table}_copy",
            sa.MetaData(),
            sa.Column("table_name", sa.String(128), primary_key=True),
            sa.Column("last_key", sa.Text()),
            sa.Column("rows", sa.BigInteger(), nullable=False),
            sa.Column("done", sa.Boolean(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False),
            schema=self.schema,
        )

    def checkpoint(self, table: str) -> dict | None:
        cp = self.checkpoint_table()
        with self.read() as conn:
            if not sa.inspect(conn).has_table(cp.name, schema=cp.schema):
                return None
            row = conn.execute(sa.select(cp).where(cp.c.table_name == table)).mappings().first()
        if row is None:
            return None
        return {
            "last": json.loads(row["last_key"]) if row["last_key"] else None,
            "rows": row["rows"],
            "done": row["done"],
        }

    def prepare(self, fam: str, name: str, layout: dict) -> bool:
        """The table (no secondary index), the checkpoint table, Agno's version table: each created when
        missing. Returns whether the table was created here (at ``layout``)."""
        from agno_migrate.move.table_ddl import create_sql_table
        from agno_migrate.tables import family

        with sqlconn.connect(self.target) as conn:
            created = not sa.inspect(conn).has_table(name, schema=self.schema)
            self._tables[name] = create_sql_table(conn, self.target, fam, name, layout)
            cp = self.checkpoint_table()
            cp.create(conn, checkfirst=True)
            versions = family("versions").head(self.dialect.name)
            if versions is not None:
                create_sql_table(conn, self.target, "versions", self.target.agno_versions_table, versions)
            conn.commit()
        return created

    def write(
        self, name: str, key: tuple[str, ...], rows: list[dict], last, before: int, replace: bool, fresh: bool = False
    ) -> int:
        """Insert ``rows`` (skipping keys the table holds, or replacing them when ``replace``) and
        record ``last`` and the rows written so far (``before`` and these) as the table's checkpoint,
        in one transaction. Returns rows written. ``fresh``: the table was empty when this copy began
        it and ``rows`` come from one source in key order, so it holds none of their keys (nothing
        is looked up: a query of a batch's keys costs about a quarter of a table's copy). Stored JSON
        text (``json_text.JsonText``) is sent as it is (COPY); :class:`TextRefused` when the server
        refuses a batch holding some (nothing of it written)."""
        table = self._tables[name]
        cp = self.checkpoint_table()
        with sqlconn.connect(self.target) as conn:
            self.dialect.begin_batch(conn)  # (finish() commits flushed: with it every batch)
            if not fresh:
                rows = self._without_held(conn, table, key, rows, replace)
            if rows and self.dialect.copy_from_stdin:  # PostgreSQL: COPY, JSON sent as its text
                self._copy(conn, table, rows)
            elif rows:
                conn.execute(table.insert(), rows)
            self._save(conn, cp, name, last, before + len(rows), False)
            conn.commit()
        return len(rows)

    def _copy(self, conn, table: sa.Table, rows: list[dict]) -> None:
        from agno_migrate.jsoncodec import dumps
        from agno_migrate.migrate.legacy.sql import copy_rows
        from agno_migrate.move.json_text import JsonText, holds_text

        names = list(rows[0])  # None in a JSON column: JSON null, as SQLAlchemy's JSON (and Agno) writes it
        encoded = [at for at, n in enumerate(names) if isinstance(table.c[n].type, sa.JSON)]
        values = []
        for r in rows:
            row = [r[n] for n in names]
            for at in encoded:
                if row[at].__class__ is not JsonText:
                    row[at] = dumps(row[at])
            values.append(row)
        try:
            copy_rows(conn, table, names, values)
        except Exception as exc:
            state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
            if str(state).startswith("22") and any(holds_text(r) for r in rows):  # (data error: text that is not JSON)
                raise TextRefused from exc
            raise

    def _without_held(self, conn, table: sa.Table, key, rows: list[dict], replace: bool) -> list[dict]:
        if not rows:
            return rows
        cols = [table.c[k] for k in key]
        keys = [tuple(r[k] for k in key) for r in rows]
        if len(cols) > 1:
            match, given = sa.tuple_(*cols).in_(keys), {}
        else:  # (one parameter expanded: the statement compiled once, not once per key)
            match, given = cols[0].in_(sa.bindparam("keys", expanding=True)), {"keys": [k[0] for k in keys]}
        if replace:
            conn.execute(table.delete().where(match), given)
            return rows
        held = {tuple(r) for r in conn.execute(sa.select(*cols).where(match), given)}
        return [r for r, k in zip(rows, keys, strict=True) if k not in held] if held else rows

    def _save(self, conn, cp: sa.Table, name: str, last, count: int, done: bool) -> None:
        values = {
            "last_key": None if last is None else json.dumps(last, default=str),
            "rows": count,
            "done": done,
            "updated_at": int(time.time()),
        }
        if conn.execute(cp.update().where(cp.c.table_name == name).values(**values)).rowcount == 0:
            conn.execute(cp.insert().values(table_name=name, **values))

    def finish(self, fam: str, name: str, layout: dict, stamp: bool, count: int) -> None:
        """Secondary indexes, Agno's stamp, the checkpoint marked done."""
        from agno_migrate.migrate.sql import revisions
        from agno_migrate.move.table_ddl import create_sql_indexes

        with sqlconn.connect(self.target) as conn:
            create_sql_indexes(conn, self.target, fam, self._tables[name], layout)
            if stamp:
                revisions.write_table_stamps(conn, self.target, [name])
            self._save(conn, self.checkpoint_table(), name, None, count, True)
            conn.commit()


class TextRefused(Exception):
    """The server refused a batch holding stored JSON text (a data error: text that is not JSON)."""


def _dicts(result) -> list[dict]:
    """A result's rows as dicts: plain tuples zipped with the column names (no row mapping built per row)."""
    names = list(result.keys())
    return [dict(zip(names, row)) for row in result.fetchall()]  # noqa: B905 - each row has every name


def _after(order: list, last: list):
    if len(order) == 1:
        return order[0] > last[0]
    return sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in last))


class MongoSide:
    """One MongoDB database's other Agno collections (source or target of a copy)."""

    def __init__(self, target: Target):
        from agno_migrate.backends import mongo

        self.target = target
        self.dialect = dialect_of(target)
        self.db = mongo.database(target)
        self.errors = lambda: mongo.mongo_errors(target)
        self._layouts: dict[str, tuple] = {}

    def detect(self, names: dict[str, str], skip: set[str]) -> dict:
        from agno_migrate.tables import detect_all

        with self.errors():
            return detect_all(self.db, None, names, skip=skip)

    def columns(self) -> dict[str, set[str]]:
        from agno_migrate.tables.detect import table_names

        with self.errors():
            return table_names(self.db)

    def kinds(self, table: str) -> dict[str, str]:
        return {}

    def batches(self, table: str, kinds, key: tuple[str, ...], size: int, after=None) -> Iterator:
        coll = self.db[table]
        sort = [(k, 1) for k in key]
        while True:
            with self.errors():
                rows = list(coll.find(_mongo_after(key, after), sort=sort, limit=size))
            if not rows:
                return
            for row in rows:
                row.pop("_id", None)
            after = [rows[-1].get(k) for k in key]
            yield rows, after

    def where(self, table: str, kinds, equal: dict | None = None, column=None, values=()) -> list:
        query = dict(equal or {})
        if column is not None:
            query[column] = {"$in": list(values)}
        with self.errors():
            return list(self.db[table].find(query, {"_id": 0}))

    def stamp(self, table: str) -> str | None:
        from agno_migrate.migrate.mongo import state

        with self.errors():
            return state.agno_stamp(self.db, self.target, table)

    def nonempty(self, table: str) -> bool:
        with self.errors():
            return self.db[table].find_one({}, {"_id": 1}) is not None

    def exists(self, table: str) -> bool:
        with self.errors():
            return table in self.db.list_collection_names()

    def rows_up_to(self, table: str, limit: int) -> int:
        with self.errors():
            return self.db[table].count_documents({}, limit=limit)

    def checkpoint(self, table: str) -> dict | None:
        from agno_migrate.migrate.mongo import state

        with self.errors():
            found = state.checkpoint(self.db, self.target, CHECKPOINT_PREFIX + table)
        return None if found is None else {k: found.get(k) for k in ("last", "rows", "done")}

    def prepare(self, fam: str, name: str, layout: dict) -> None:
        from agno_migrate.move.table_ddl import key_columns, mongo_indexes

        first, later = mongo_indexes(layout, key_columns(fam, self.dialect.name))
        self._layouts[name] = later
        with self.errors():
            self.db[name].create_indexes(first)

    def write(
        self, name: str, key: tuple[str, ...], rows: list[dict], last, before: int, replace: bool, fresh: bool = False
    ) -> int:
        """Insert ``rows`` (a key the collection holds is skipped, or replaced when ``replace``),
        then record the checkpoint (``last``, the documents written so far). Returns the documents
        written. (``fresh``: as on SQL; the key's unique index skips held keys at no cost here.)"""
        from pymongo.errors import BulkWriteError

        from agno_migrate.migrate.mongo import state

        coll = self.db[name]
        written = len(rows)
        with self.errors():
            if rows and replace:
                if len(key) == 1:
                    coll.delete_many({key[0]: {"$in": [r[key[0]] for r in rows]}})
                else:
                    coll.delete_many({"$or": [{k: r[k] for k in key} for r in rows]})
            if rows:
                try:
                    coll.insert_many([dict(r) for r in rows], ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if any(e.get("code") != DUPLICATE_KEY for e in errors):
                        raise
                    written -= len(errors)
            state.save_checkpoint(
                self.db, self.target, CHECKPOINT_PREFIX + name, last=last, rows=before + written, done=False
            )
        return written

    def finish(self, fam: str, name: str, layout: dict, stamp: bool, count: int) -> None:
        from agno_migrate import registry
        from agno_migrate.migrate.mongo import state

        with self.errors():
            later = self._layouts.get(name) or []
            if later:
                self.db[name].create_indexes(later)
            if stamp:
                state.write_agno_stamp(self.db, self.target, name, registry.AGNO_TABLE_STAMP)
            state.save_checkpoint(self.db, self.target, CHECKPOINT_PREFIX + name, last=None, rows=count, done=True)


DUPLICATE_KEY = 11000


def _mongo_after(key: tuple[str, ...], after) -> dict:
    if after is None:
        return {}
    if len(key) == 1:
        return {key[0]: {"$gt": after[0]}}
    ors = []
    for i in range(len(key)):
        clause = {key[j]: after[j] for j in range(i)}
        clause[key[i]] = {"$gt": after[i]}
        ors.append(clause)
    return {"$or": ors}


def side(target: Target) -> SqlSide | MongoSide:
    """The side for ``target``: SQL or MongoDB, as its dialect says."""
    return SqlSide(target) if dialect_of(target).sql else MongoSide(target)
