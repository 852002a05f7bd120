"""The MongoDB side of the reliability suite's helpers (support.py dispatches here for mongodb://
URLs): the logical state of a database (documents, our state collection, Agno's stamps, indexes),
the data points the races and the crashes start from, and a child process killed at a chosen
command (pymongo's command monitoring instead of SQLAlchemy's cursor events).

The Mongo helpers of tests/test_mongo_migrate.py are reused (the fixture loader, the 1.x multiplier
idea, the stored-runs reader); what is here is what the reliability suite compares.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator

from agno_migrate.backends import dispose
from agno_migrate.backends.mongo import database
from agno_migrate.target import Target

LEGACY = ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions")
LOCK_ID = "lock"


@contextlib.contextmanager
def opened(url: str) -> Iterator[tuple[object, Target]]:
    """(the pymongo Database of ``url``, its Target); the client is closed afterwards."""
    target = Target.from_url(url)
    try:
        yield database(target), target
    finally:
        dispose(target)


def canonical(doc: dict) -> str:
    from bson import json_util

    return json_util.dumps(doc, sort_keys=True)


def dump(db, collection: str, drop: tuple[str, ...] = ("_id",)) -> list[str]:
    """Every document of ``collection`` without the ``drop`` fields, canonical and sorted."""
    projection = {name: 0 for name in drop} or None
    return sorted(canonical(d) for d in db[collection].find({}, projection))


def head_dump(url: str) -> tuple[list[str], list[str]]:
    """Sessions and runs (a run's ``updated_at`` is "now" when copied, so it is left out)."""
    with opened(url) as (db, target):
        return dump(db, target.session_table), dump(db, target.runs_table, ("_id", "updated_at"))


def version_rows(url: str) -> list[tuple]:
    """(version, revision, action) of the history entries, in the order written."""
    from agno_migrate.migrate.mongo import state as mongo_state

    with opened(url) as (db, target):
        return [(h["version"], h.get("revision"), h["action"]) for h in mongo_state.history(db, target)]


def step_rows(url: str, with_attempts: bool = False) -> list[tuple]:
    """(version, direction, completed) of every step record (and how often it was started)."""
    from agno_migrate.migrate.mongo import state as mongo_state

    with opened(url) as (db, target):
        rows = [(r["version"], r["direction"], r.get("completed_at") is not None) + ((r.get("attempts"),) if with_attempts else ())
                for r in mongo_state.step_records(db, target)]  # fmt: skip
    return sorted(rows)


def checkpoint_rows(url: str) -> list[tuple]:
    """Every checkpoint document as (name, mode, last, sessions, failed, done), the shape of the
    SQL import's checkpoint rows; a legacy collection's is named after the collection."""
    with opened(url) as (db, target):
        docs = list(db[target.version_table].find({"_id": {"$regex": "^checkpoint:"}}))
    out = []
    for doc in docs:
        name = doc["_id"][len("checkpoint:") :]
        name = name[len("legacy:") :] if name.startswith("legacy:") else name
        out.append((name, doc.get("mode"), doc.get("last"), doc.get("sessions"), doc.get("failed"), doc.get("done")))
    return sorted(out, key=repr)


def agno_stamps(url: str) -> list[tuple]:
    with opened(url) as (db, target):
        return sorted((d.get("table_name"), d.get("version")) for d in db[target.agno_versions_table].find())


def indexes(db, collection: str) -> list[tuple]:
    return sorted((name, tuple(k for k, _ in info["key"]), bool(info.get("unique")))
                  for name, info in db[collection].index_information().items())  # fmt: skip


def signature(url: str) -> dict:
    """The physical layout: every collection and its indexes."""
    with opened(url) as (db, _):
        return {name: indexes(db, name) for name in sorted(db.list_collection_names())}


def legacy_state(url: str) -> dict:
    with opened(url) as (db, _):
        present = set(db.list_collection_names())
        return {name: dump(db, name) for name in LEGACY if name in present}


def full_state(url: str) -> dict:
    """Everything in the database: each collection's documents (``_id`` included) and indexes.
    The lock document is left out: a waiting process takes no part in it, but its holder renews
    its lease while it waits."""
    with opened(url) as (db, target):
        out = {}
        for name in sorted(db.list_collection_names()):
            query = {"_id": {"$ne": LOCK_ID}} if name == target.version_table else {}
            out[name] = {"docs": sorted(canonical(d) for d in db[name].find(query)), "indexes": indexes(db, name)}
        return out


def lock_is_free(url: str) -> bool:
    """No lock document, or one whose lease has expired by the server's clock (takeable at once)."""
    with opened(url) as (db, target):
        live = {"_id": LOCK_ID, "$expr": {"$gt": ["$expires_at", "$$NOW"]}}
        return db[target.version_table].find_one(live) is None


def lock_document(url: str) -> dict | None:
    with opened(url) as (db, target):
        return db[target.version_table].find_one({"_id": LOCK_ID})


# --- the points the races and crashes start from ------------------------------------------------


def insert_string_sessions(url: str, sessions: list[dict]) -> None:
    """Sessions (test_data_step.session's rows) as Agno 2.0.0 wrote them on MongoDB: the JSON
    fields as JSON strings."""
    docs = [{**s, "runs": json.dumps(s["runs"]) if s.get("runs") is not None else None} for s in sessions]
    with opened(url) as (db, target):
        db[target.session_table].insert_many(docs)


def multiply_agent_collection(url: str, copies: int) -> None:
    """More Agno 1.x documents to interrupt: copies of agent_sessions under new session ids (as
    test_mongo_migrate.multiply_agent_collection, with a number of copies)."""
    with opened(url) as (db, _):
        agents = db["agent_sessions"]
        docs = list(agents.find({}, {"_id": 0}))
        for k in range(1, copies):
            agents.insert_many([{**d, "session_id": f"{d['session_id']}-copy{k:02d}"} for d in docs])


# --- a victim: SIGKILLed at a chosen command ----------------------------------------------------

# As support.VICTIM, but counting MongoDB commands (pymongo's command monitoring: ``started`` runs
# before the command is sent, ``succeeded`` after its reply) by category (statements.classify_mongo).
# The lock's lease is 2 s (the console script's --lock-lease; a store's through the default, which
# it has no option for), so that the re-run takes the dead runner's lock over soon.
VICTIM = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    entry, url, category, kill_at, phase, delay, log_path = sys.argv[1:8]
    kill_at, delay = int(kill_at), float(delay)
    sys.path.insert(0, sys.argv[8])
    from statements import classify_mongo, describe_mongo
    from pymongo import monitoring
    import agno_migrate.target
    agno_migrate.target.DEFAULT_LOCK_LEASE = 2.0
    t = agno_migrate.target.Target.from_url(url)
    names = (t.version_table, t.agno_versions_table, t.session_table, t.runs_table)
    seen, counted, lock = [], [], threading.Lock()
    armed = {"id": None}
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    class Listener(monitoring.CommandListener):
        def started(self, event):
            text = describe_mongo(event.command_name, event.command)
            with lock:
                seen.append(text)
                if category in ("any", classify_mongo(text, *names)):
                    counted.append(text)
                    if len(counted) == kill_at:
                        if phase == "before":
                            die()
                        armed["id"] = event.request_id
                        if phase == "during":
                            threading.Timer(delay, die).start()
        def succeeded(self, event):
            if phase == "after" and armed["id"] == event.request_id:
                die()
        def failed(self, event):
            pass
    monitoring.register(Listener())
    import agno_migrate, agno_migrate.cli
    if entry == "cli":
        code = agno_migrate.cli.main(["--db-url", url, "--lock-timeout", "120", "--lock-lease", "2", "upgrade"])
    else:
        agno_migrate.connect(url, auto_upgrade_schema=True).get_sessions(limit=1)
        code = 0
    if log_path != "-":
        with open(log_path, "w") as fh:
            json.dump(seen, fh)
    sys.exit(code)
    """
)
