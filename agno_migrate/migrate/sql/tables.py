"""The other Agno tables on SQL (memories, evals, metrics, knowledge, ...): each brought to its
family's head by the steps of ``registry.TABLE_STEPS`` (scripts in ``versions/tables``), then stamped
in Agno's ``agno_schema_versions`` so that Agno's MigrationManager finds nothing to do.

A table's steps and its stamp run in one transaction where DDL is transactional (SQLite,
PostgreSQL). On MySQL every DDL statement commits on its own: each primitive of :class:`TableOps`
looks before it acts, so a run killed part-way leaves a table that detection calls interrupted (every
column, key and index as before or as at head) and the next run finishes it.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

import sqlalchemy as sa

from agno_migrate import registry
from agno_migrate.backends import dialect_of
from agno_migrate.errors import Refused
from agno_migrate.migrate.model import AgnoTable, TableUpgrade
from agno_migrate.migrate.report import StepReport
from agno_migrate.migrate.sql import revisions
from agno_migrate.storable import cast_as_is, fit_for_jsonb, may_not_fit_jsonb, server_holds
from agno_migrate.tables import family, reflect_sql
from agno_migrate.target import Target


@cache
def step_module(point: str) -> ModuleType:
    """The script of ``versions/tables`` for Agno's migration ``point`` (loaded by path, once)."""
    from agno_migrate.migrate import versions_root

    path = versions_root() / "tables" / f"v{point.replace('.', '_')}.py"
    spec = importlib.util.spec_from_file_location(f"agno_migrate_table_steps_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade_tables(conn, target: Target, tables: list[AgnoTable], report: StepReport) -> list[TableUpgrade]:
    """Bring each table to head and stamp it (see the module's docstring); one commit per table.
    What a step cannot do (the scripts' ``CHECKS``) is refused before any table changes."""
    work = []
    for table in tables:
        stamped = revisions.agno_stamp(conn, target, table.name)
        steps = table.steps + [s for s in registry.table_steps(table.family, stamped) if s.data_only]
        stamp = table.family in registry.AGNO_WALKS
        if steps or table.missing or (stamp and stamped != registry.AGNO_TABLE_STAMP):
            work.append((table, steps, stamp, TableOps(conn, target, table, report)))
    for table, steps, _, ops in work:
        for step in steps:
            check = getattr(step_module(step.point), "CHECKS", {}).get(table.family)
            if check is not None:
                check(ops)
    conn.rollback()
    done = []
    for table, steps, stamp, ops in work:
        try:
            dialect_of(target).compress_fast(conn)  # (the table's transaction: its JSON columns rewritten)
            for step in steps:
                script = step_module(step.point).STEPS.get(table.family)
                if script is not None:
                    script(ops)
            repaired = ops.create_head_indexes() if table.missing else []
            if stamp:
                revisions.write_table_stamps(conn, target, [table.name])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        head = family(table.family).head(dialect_of(target).name)
        done.append(
            TableUpgrade(
                table.family, table.name, table.version, head["point"], [s.point for s in steps], stamp, repaired
            )
        )
    return done


class TableOps:
    """What a ``versions/tables`` script may do to its table; every method looks before it acts
    (idempotent), so a step re-run on a table it half changed finishes it."""

    def __init__(self, conn, target: Target, table: AgnoTable, report: StepReport):
        revisions.load_alembic()
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        self.conn = conn
        self.target = target
        self.table = table
        self.name = table.name
        self.report = report
        self.dialect = dialect_of(target).name
        self.schema = dialect_of(target).schema_of(target)
        self.op = Operations(MigrationContext.configure(connection=conn))
        self.head = family(table.family).head(self.dialect)
        self._seen = None

    # --- what is there --------------------------------------------------------------------------

    def _inspector(self):
        return sa.inspect(self.conn)  # a new one each time: the table changes under it

    def columns(self) -> dict[str, tuple[str, bool, bool]]:
        """Column name → (type family, nullable, has a server default), as detection reads them."""
        return self._physical().columns

    def _physical(self):
        """The table as detection reads it (its unique keys by (columns, partial), indexes by columns);
        read once, and again after each change this object makes."""
        if self._seen is None:
            self._seen = reflect_sql(self.conn, self.name, self.schema, self.dialect)
        return self._seen

    def _changed(self) -> None:
        self._seen = None

    def _note_column(self, name: str, type_, nullable: bool, default: bool = False) -> None:
        """Note a column this object added or changed as detection would read it, instead of reading the
        table again (a round of catalog queries after every change)."""
        if self._seen is not None:
            family = self._seen.columns[name][0] if name in self._seen.columns else None
            self._seen.columns[name] = (family or dialect_of(self.target).type_family(type_), nullable, default)

    def _note_index(self, columns: list[str], name: str, unique: bool, partial: bool) -> None:
        """Note an index this object created, keyed as detection keys it (see ``_note_column``)."""
        if self._seen is not None:
            if unique:
                self._seen.unique.setdefault((tuple(columns), partial), name)
            else:
                self._seen.indexes.setdefault(tuple(columns), name)

    def _has(self, columns: list[str], unique: bool, partial: bool = False) -> bool:
        phys = self._physical()
        if unique:
            return (tuple(columns), partial) in phys.unique
        return tuple(columns) in phys.indexes

    def head_has_index(self, columns: list[str]) -> bool:
        return tuple(columns) in {tuple(c) for _, c in self.head["indexes"]}

    def varchar(self) -> sa.types.TypeEngine:
        """Agno's ``String`` for an id-like column (MySQL needs a length: Agno's is 128)."""
        return sa.String(128) if self.dialect == "mysql" else sa.String()

    def _named(self, name: str) -> str:
        """``name`` as the database can hold it (``SqlDialect.fit_name``; Agno's MySQL migration skips
        a key whose name is too long and stamps the table anyway)."""
        return dialect_of(self.target).fit_name(name)

    def _full_name(self) -> str:
        quote = self.conn.dialect.identifier_preparer.quote
        return f"{quote(self.schema)}.{quote(self.name)}" if self.schema else quote(self.name)

    # --- changes --------------------------------------------------------------------------------

    def add_column(self, name: str, type_, nullable: bool = True, fill=None) -> None:
        """Add column ``name`` if missing; set ``fill`` (a SQL expression) where it is NULL; make it
        NOT NULL when asked. SQLite cannot add a NOT NULL column without a default nor change it
        afterwards: there the column is added NOT NULL with a neutral default ('' or 0) and filled in
        the same transaction."""
        have = self.columns()
        if name not in have:
            if not nullable and self.dialect == "sqlite":
                neutral = "''" if isinstance(type_, sa.String) else "0"
                self.op.add_column(
                    self.name,
                    sa.Column(name, type_, nullable=False, server_default=sa.text(neutral)),
                    schema=self.schema,
                )
                if fill is not None:
                    self.conn.execute(sa.table(self.name, sa.column(name)).update().values({name: fill}))
                self._note_column(name, type_, nullable=False, default=True)
                return
            self.op.add_column(self.name, sa.Column(name, type_, nullable=True), schema=self.schema)
            self._note_column(name, type_, nullable=True)
        elif not have[name][1]:
            return
        if fill is not None:
            column = sa.column(name)
            table = sa.table(self.name, column, schema=self.schema)
            self.conn.execute(table.update().where(column.is_(None)).values({name: fill}))
        if not nullable:
            self.op.alter_column(self.name, name, existing_type=type_, nullable=False, schema=self.schema)
            self._note_column(name, type_, nullable=False, default=self.columns()[name][2])

    def create_head_indexes(self) -> list[str]:
        """The head layout's plain indexes the table lacks (a run killed between a table and its indexes:
        MySQL commits each DDL), created under their head names; returns those names."""
        created = []
        for name, cols in self.head["indexes"]:
            if not self._has(list(cols), False, False):
                index = self._named(name.replace("{t}", self.name))
                self.op.create_index(index, self.name, list(cols), schema=self.schema)
                self._note_index(list(cols), index, unique=False, partial=False)
                created.append(index)
        return created

    def create_index(
        self, columns: list[str], unique: bool = False, where: str | None = None, name: str | None = None
    ) -> None:
        """Create the index on ``columns`` if no index has exactly them; named as Agno names it:
        ``idx_<table>_<columns>``, or ``<table>_<name>`` for a named (unique) one. ``where``: a
        partial index's condition (SQLite, PostgreSQL)."""
        if self._has(columns, unique, where is not None):
            return
        index = self._named(f"{self.name}_{name}" if name else f"idx_{self.name}_{'_'.join(columns)}")
        options = {}
        if where is not None:
            options = {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}
        self.op.create_index(index, self.name, columns, unique=unique, schema=self.schema, **options)
        self._note_index(columns, index, unique=unique, partial=where is not None)

    def replace_unique(self, old: list[str], new: list[str], name: str) -> None:
        """Make ``new`` the table's unique key instead of ``old`` (``<table>_<name>``). SQLite keeps
        a unique constraint inside CREATE TABLE: the table is rebuilt (Alembic's batch mode: a copy
        under the same name, indexes recreated), in the step's transaction."""
        unique = self._physical().unique
        has_old, has_new = (tuple(old), False) in unique, (tuple(new), False) in unique
        if self.dialect == "sqlite":
            if not has_old and has_new:
                return
            with self.op.batch_alter_table(self.name, recreate="always") as batch:
                if has_old:
                    batch.drop_constraint(unique[(tuple(old), False)], type_="unique")
                if not has_new:
                    batch.create_unique_constraint(self._named(f"{self.name}_{name}"), new)
            self._changed()
            return
        if not has_new:
            self.op.create_unique_constraint(self._named(f"{self.name}_{name}"), self.name, new, schema=self.schema)
        insp = self._inspector()
        dropped = set()
        for u in insp.get_unique_constraints(self.name, schema=self.schema):
            if list(u["column_names"]) == list(old):
                self.op.drop_constraint(u["name"], self.name, type_="unique", schema=self.schema)
                dropped.add(u["name"])
        for i in insp.get_indexes(self.name, schema=self.schema):  # a unique index is dropped as an index
            if i.get("unique") and list(i["column_names"]) == list(old) and i["name"] not in dropped:
                self.op.drop_index(i["name"], table_name=self.name, schema=self.schema)
        self._changed()

    def to_head_types(self) -> None:
        """PostgreSQL: the ``json`` columns whose head type is ``jsonb`` become ``jsonb``, in one
        ALTER TABLE, tried as the rows are (``storable.cast_as_is``); when one does not fit, what jsonb cannot
        hold is made to fit and counted (``storable.fit_for_jsonb``: ``\\u0000`` escapes removed, lone
        surrogate escapes replaced by ``\\ufffd``), then cast."""
        have = self.columns()
        columns = [
            name
            for name, (fam, _) in self.head["columns"].items()
            if fam == "jsonb" and name in have and have[name][0] == "json"
        ]
        if not columns:
            return
        quote = self.conn.dialect.identifier_preparer.quote
        clauses = ", ".join(f"ALTER COLUMN {quote(c)} TYPE JSONB USING {quote(c)}::jsonb" for c in columns)
        alter = sa.text(f"ALTER TABLE {self._full_name()} {clauses}")
        if not cast_as_is(self.conn, lambda: self.conn.execute(alter)):  # a row did not fit: fit, then cast
            self._remove_nul_escapes(columns)
            self.conn.execute(alter)
        for name in columns:
            _, nullable, default = have[name]
            self._seen.columns[name] = ("jsonb", nullable, default)

    def _remove_nul_escapes(self, columns: list[str]) -> None:
        from sqlalchemy.dialects import postgresql

        key = self.head["primary_key"][0]
        table = sa.table(self.name, sa.column(key), *map(sa.column, columns), schema=self.schema)
        holds = server_holds(self.conn.execute(sa.text("SHOW server_encoding")).scalar())
        for column in columns:
            text = sa.cast(table.c[column], sa.Text)
            holding = may_not_fit_jsonb(text, holds)
            rows = self.conn.execute(sa.select(table.c[key], text).where(holding)).all()
            for row_key, value in rows:
                fitted, nuls, surrogates, escaped = fit_for_jsonb(value, holds)
                if nuls or surrogates or escaped:
                    self.conn.execute(
                        table.update()
                        .where(table.c[key] == row_key)
                        .values({column: sa.cast(sa.literal(fitted, sa.Text), postgresql.JSON)})
                    )
                    self.report.note_jsonb_fit(str(row_key), column, nuls, surrogates, escaped, self.name)

    def refuse_duplicates(self, columns: list[str], where: str, what: str) -> None:
        """Refused (nothing changed in this table) when rows matching ``where`` share ``columns``,
        which a unique index about to be built would reject."""
        if self._has(columns, unique=True, partial=True):
            return
        cols = ", ".join(columns)
        rows = self.conn.execute(
            sa.text(
                f"SELECT {cols}, COUNT(*) FROM {self._full_name()} WHERE {where} GROUP BY {cols} HAVING COUNT(*) > 1"
            )
        ).all()
        if rows:
            shown = "; ".join(f"{', '.join(map(repr, r[:-1]))} ({r[-1]} rows)" for r in rows[:10])
            raise Refused(
                f"{self.name}: {what} cannot be told apart once Agno 3 keys them ({cols} unique): {shown}; "
                "rename or remove the duplicates, then run agno-migrate upgrade again (nothing changed in this table)"
            )

    def rekey_learnings(self) -> None:
        """Agno 3.0.0's re-key of namespace-user entity memories (``convert.learnings``): each move
        one UPDATE of the row's key, each merge an UPDATE of the target then the DELETE of the source,
        in the step's transaction."""
        from agno_migrate.convert.learnings import ENTITY, USER, lookup_ids, plan_rekey

        table = sa.Table(self.name, sa.MetaData(), autoload_with=self.conn, schema=self.schema)
        key = table.c.learning_id
        walked = [
            dict(r._mapping)
            for r in self.conn.execute(
                sa.select(table).where(table.c.learning_type == ENTITY, table.c.namespace == USER)
            )
        ]
        wanted = sorted(lookup_ids(walked))
        targets = (
            [dict(r._mapping) for r in self.conn.execute(sa.select(table).where(key.in_(wanted)))] if wanted else []
        )
        plan = plan_rekey({r.get("learning_id"): r for r in walked + targets}.values())
        for move in plan.moves:
            self.conn.execute(
                table.update().where(key == move.old_id).values(learning_id=move.new_id, namespace=move.namespace)
            )
        for merge in plan.merges:
            fields = {k: v for k, v in merge.fields.items() if k in table.c}
            self.conn.execute(table.update().where(key == merge.target_id).values(**fields))
            self.conn.execute(table.delete().where(key == merge.source_id))
        self.report.note_rekey(self.name, plan)
