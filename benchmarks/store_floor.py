"""The store benchmark's floor side: the raw driver doing what our store needs for the same result.

python store_floor.py DATA.jsonl (sqlite:///FILE | postgresql+psycopg://... | mongodb://HOST/DB) > results.json

The database is created at head by agno-migrate's store in the first upsert_session, as ours and
Agno's create theirs in their first call. Then the workload (store_workload.py) runs on the bare
driver — sqlite3, psycopg or pymongo — sending the statements (commands) our store sends, in the
same transactions and commits (so at the same durability and with the same guarantees: a run's
position is read under the session's lock, a foreign run id is refused), with nothing around them:
values taken straight from the workload's dicts, JSON encoded by the statements' own bind
processors, rows decoded into dicts. No argument checks, no Session objects, no connection pool.
On SQL the statements are the store's own compiled SQL; on MongoDB the commands are written out
here, one for one with the store's (store/mongo.py).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from store_workload import load, run  # noqa: E402

JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary", "run_data")
RUN_FIELDS = ("run_id", "agent_id", "team_id", "workflow_id", "parent_run_id", "status", "created_at")


def run_values(s: dict, r: dict) -> dict:
    """upsert_run's parameters from the workload's run: its own columns, the session id and now."""
    own = {name: r.get(name) for name in RUN_FIELDS}
    return {
        **own,
        "session_id": s["session_id"],
        "run_type": None,
        "user_id": None,
        "run_index": None,
        "updated_at": None,
        "run_data": r,
        "sid": s["session_id"],
        "now": int(time.time()),
    }


CREATED: list = []


def create_at_head(url: str) -> None:
    """On the first write, as both stores: the database created at head (tables, indexes, our
    version record) by agno-migrate's store — the same work ours does in its first call."""
    if not CREATED:
        import agno_migrate

        agno_migrate.connect(url).get_sessions(limit=0)
        CREATED.append(url)


def sql_ops(url: str) -> dict:
    import agno_migrate
    from agno_migrate.backends.sql import engine
    from agno_migrate.store.driver import Statement

    # the store's statements, compiled in the driver's own parameter style (ours are compiled for
    # PostgreSQL's numbered parameters, as its pipeline sends them prepared); this store object
    # only compiles, it never runs a call
    store = agno_migrate.connect(url)
    dialect = engine(store.target).dialect
    store._compiled = lambda clause: Statement(clause, dialect)
    upsert = store._upsert_statement(store._sessions, ("created_at",))
    runs_statements = store._run_statements
    get = store._statement(("session", (False, False)), lambda: store._session_query(False, False))
    get_runs = [] if store._runs_in_row else [store._session_runs_statement]
    count, listing, *page_runs = store._listing_statements((False,) * 6 + (None, "created_at", "desc", True))
    pg = url.startswith("postgresql")
    if pg:
        import psycopg

        conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
    else:
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")  # as both stores (synchronous stays FULL: durable commits)
        conn.execute("PRAGMA foreign_keys=ON")  # as ours

    def steps(todo: list, write: bool) -> list[list]:
        """Each (statement, values)'s rows; a write is one transaction (on PostgreSQL one pipeline:
        BEGIN, the statements, COMMIT in one round trip, as ours)."""
        if pg:
            with conn.pipeline():
                if write:
                    conn.execute("BEGIN")
                cursors = [conn.execute(st.sql, st.params(values)) for st, values in todo]
                if write:
                    conn.execute("COMMIT")
            return [c.fetchall() if c.description else [] for c in cursors]
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        out = [conn.execute(st.sql, st.params(values)).fetchall() for st, values in todo]
        conn.execute("COMMIT")
        return out

    def decoded(statement, rows: list) -> list[dict]:
        out = []
        for row in rows:
            row = dict(zip(statement.columns, row, strict=False))
            for name, value in row.items():
                if isinstance(value, str) and (name in JSON_COLUMNS or name == "table_runs"):
                    row[name] = json.loads(value)
            out.append(row)
        return out

    def upsert_session(s):
        create_at_head(url)
        steps([(upsert, {k: v for k, v in s.items() if k != "runs"})], write=True)

    def upsert_run(s, r, index):
        values = run_values(s, r)
        *_, ((found,),) = steps([(st, values) for st in runs_statements], write=True)
        assert found == s["session_id"], found

    def get_session(s):
        values = {"sid": s["session_id"], "st": None, "uid": None}
        rows, *runs = steps([(get, values)] + [(st, values) for st in get_runs], write=False)
        session = decoded(get, rows)[0]
        runs = decoded(get_runs[0], runs[0]) if get_runs else session["table_runs"] or []
        assert len(runs) >= len(s["runs"]), s["session_id"]

    def get_page(page, size):
        values = {"st": None, "uid": None, "cid": None, "start": None, "end": None, "name": None}
        values.update(limit=size, offset=(page - 1) * size)
        if page_runs and not pg:  # SQLite: the page's runs by its ids (ours: runs_by_ids)
            (total,), rows = steps([(count, values), (listing, values)], write=False)
            ids = json.dumps([row[listing.columns.index("session_id")] for row in rows])
            runs = decoded(page_runs[0], steps([(page_runs[0], {"ids": ids})], write=False)[0]) if rows else []
        else:
            (total,), rows, *runs = steps([(st, values) for st in (count, listing, *page_runs)], write=False)
        return len(decoded(listing, rows))

    return {
        "upsert_session": upsert_session,
        "upsert_run": upsert_run,
        "get_session": get_session,
        "get_page": get_page,
    }


def mongo_ops(url: str) -> dict:
    """The store's commands (store/mongo.py), one for one: upsert_session one upsert of the session
    document (one document: atomic without a transaction); upsert_run one transaction (claim the
    session document and read its owner fields, unset the claim, one aggregation for the run's owner
    and the next position, upsert the run, commit); get_session the document and its runs; a page
    the count, the page's ids, their documents and their runs."""
    import pymongo
    from bson import ObjectId

    import agno_migrate

    store = agno_migrate.connect(url)  # for the collections' names
    client = pymongo.MongoClient(url)
    db = client.get_default_database()
    sessions, runs = db[store.target.session_table], db[store.target.runs_table]
    owner_fields = {"_id": 0, "session_type": 1, "user_id": 1, "agent_id": 1, "team_id": 1, "workflow_id": 1}
    claim = "_agno_migrate_claim"

    def upsert_session(s):
        create_at_head(url)
        row = {k: v for k, v in s.items() if k not in ("runs", "created_at")}
        update = {"$set": row, "$setOnInsert": {"created_at": s["created_at"]}}
        sessions.update_one({"session_id": s["session_id"]}, update, upsert=True)

    def upsert_run(s, r, index):
        sid, now = s["session_id"], int(time.time())

        def work(txn):
            query = {"session_id": {"$eq": sid}}
            touch = {"$set": {"updated_at": now, claim: ObjectId()}}
            owner = sessions.find_one_and_update(query, touch, projection=owner_fields, session=txn)
            sessions.update_one(query, {"$unset": {claim: ""}}, session=txn)
            numbered = {"session_id": {"$eq": sid}, "run_index": {"$type": "number"}}
            ours = {"$and": [{"$eq": ["$session_id", {"$literal": sid}]}, {"$isNumber": "$run_index"}]}
            that = {"$eq": ["$run_id", {"$literal": r["run_id"]}]}
            pipeline = [
                {"$match": {"$or": [{"run_id": {"$eq": r["run_id"]}}, numbered]}},
                {
                    "$group": {
                        "_id": None,
                        "stored": {"$max": {"$cond": [that, {"session_id": "$session_id"}, None]}},
                        "top": {"$max": {"$cond": [ours, "$run_index", None]}},
                    }
                },
            ]
            found = next(iter(runs.aggregate(pipeline, session=txn)), {})
            assert found.get("stored") is None
            top = found.get("top")
            row = {
                "run_type": owner["session_type"],
                "agent_id": r.get("agent_id") or owner.get("agent_id"),
                "team_id": r.get("team_id") or owner.get("team_id"),
                "workflow_id": r.get("workflow_id") or owner.get("workflow_id"),
                "user_id": owner.get("user_id"),
                "parent_run_id": r.get("parent_run_id"),
                "status": r.get("status"),
                "run_data": r,
                "updated_at": now,
            }
            kept = {"session_id": sid, "run_index": 0 if top is None else top + 1, "created_at": r.get("created_at")}
            runs.update_one({"run_id": r["run_id"]}, {"$set": row, "$setOnInsert": kept}, upsert=True, session=txn)

        with client.start_session() as txn:
            txn.with_transaction(work)

    def with_runs(docs: list) -> list:
        ids = [d["session_id"] for d in docs]
        found = runs.find({"session_id": {"$in": ids}}, {"_id": 0, "session_id": 1, "run_data": 1})
        by_session: dict = {sid: [] for sid in ids}
        for run_doc in found.sort([("session_id", 1), ("run_index", 1), ("created_at", 1)]):
            by_session[run_doc["session_id"]].append(run_doc["run_data"])
        return [{**d, "runs": by_session[d["session_id"]]} for d in docs]

    def get_session(s):
        doc = sessions.find_one({"session_id": {"$eq": s["session_id"]}}, {"_id": 0})
        (got,) = with_runs([doc])
        assert len(got["runs"]) >= len(s["runs"]), s["session_id"]

    def get_page(page, size):
        sessions.count_documents({})
        cursor = sessions.find({}, {"_id": 0, "session_id": 1}).sort([("created_at", -1), ("session_id", 1)])
        ids = [d["session_id"] for d in cursor.skip((page - 1) * size).limit(size)]
        by_id = {d["session_id"]: d for d in sessions.find({"session_id": {"$in": ids}}, {"_id": 0})}
        return len(with_runs([by_id[i] for i in ids]))

    return {
        "upsert_session": upsert_session,
        "upsert_run": upsert_run,
        "get_session": get_session,
        "get_page": get_page,
    }


def main(data_path: str, url: str) -> None:
    ops = mongo_ops(url) if url.startswith("mongodb") else sql_ops(url)
    print(json.dumps(run(ops, load(data_path))))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
