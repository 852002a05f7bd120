"""Assertions shared by the lineage tests: what an upgraded database must hold."""

from __future__ import annotations

import json

import sqlalchemy as sa

from agno_migrate import jsoncodec
from agno_migrate.migrate.sql import detect
from agno_migrate.target import Target


def schema_without_legacy_runs(url: str) -> dict:
    """The physical signature of the session tables, minus the kept legacy ``runs`` column."""
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            sig = detect.signature(conn, target)
    finally:
        engine.dispose()
    sig[target.session_table]["columns"].pop("runs", None)
    sig[target.session_table].get("collations", {}).pop("runs", None)  # MySQL only
    return sig


def stored_runs(url: str) -> dict[str, list[str]]:
    """session_id -> the top-level run ids of its runs-table rows, in run_index order (run_data's id)."""
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    runs = sa.table(target.runs_table, sa.column("session_id"), sa.column("run_index"), sa.column("parent_run_id"),
                    sa.column("run_data"), schema=schema)  # fmt: skip
    engine = sa.create_engine(target.driver_url)
    out: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            query = sa.select(runs.c.session_id, runs.c.run_data).where(runs.c.parent_run_id.is_(None))
            for sid, data in conn.execute(query.order_by(runs.c.session_id, runs.c.run_index)):
                out.setdefault(sid, []).append(jsoncodec.decode_json(data)["run_id"])
    finally:
        engine.dispose()
    return out


def session_ids(url: str) -> set[str]:
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    table = sa.table(target.session_table, sa.column("session_id"), schema=schema)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(sa.select(table.c.session_id))}
    finally:
        engine.dispose()


def agno_stamps(url: str) -> dict[str, str]:
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    table = sa.table(target.agno_versions_table, sa.column("table_name"), sa.column("version"), schema=schema)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(table.c.table_name, table.c.version)).all())
    finally:
        engine.dispose()


def dump_table(url: str, name: str, order_by: str) -> list[tuple]:
    """Every row of a table, JSON decoded, in a stable order: for byte-level comparisons."""
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
            columns = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c
                       for c in table.columns]  # fmt: skip
            rows = conn.execute(sa.select(*columns).order_by(table.c[order_by])).all()
    finally:
        engine.dispose()
    return [tuple(_canonical(v) for v in row) for row in rows]


def _canonical(value):
    """JSON values (whatever their encoding on this backend) as canonical text; others as they are."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        try:
            decoded = jsoncodec.decode_json(value)
        except ValueError:
            return value
        return json.dumps(decoded, sort_keys=True) if isinstance(decoded, (dict, list)) else value
    return value
