"""Our state on MongoDB: one collection per managed session collection (``Target.version_table``).

Documents in it:

* ``{_id: "version", version, updated_at, seq}`` — the version the database is at (none: not
  managed; ``{_id: "version", creating}`` alone: head was being created when the run stopped);
* ``{_id: "step:<version>:<direction>", attempts, started_at, completed_at, ...}`` — one record per
  step, ``attempts`` counting how often it was started (a crash and re-run makes it 2);
* ``{_id: "history:<n>", seq}`` — append-only: each version reached, how (create, detect, upgrade,
  downgrade, stamp), when, by which tool version; ``seq`` numbers the records (the version
  document holds the last), so a record cut short is written again, not twice;
* ``{_id: "lock", owner, expires_at, ...}`` — the migration lock (see :class:`MongoLock`);
* ``{_id: "checkpoint:<name>", ...}`` — where a resumable data step or legacy import stands.

Agno's ``agno_schema_versions`` collection (``{table_name, version, updated_at}``) is kept in sync
with the version reached, so that an Agno application on the same database sees it as current:
Agno never stamps MongoDB databases by itself and reads a missing stamp as 2.0.0.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from agno_migrate import __version__, registry
from agno_migrate.backends.mongo_lease import Lease

# the version document is read by the store too: defined below both (re-exported here)
from agno_migrate.backends.records import VERSION_ID
from agno_migrate.backends.records import mongo_recorded_version as recorded_version  # noqa: F401
from agno_migrate.backends.retry import Backoff
from agno_migrate.errors import LockTimeout
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target

LOCK_ID = "lock"
WAIT_FOR_LOCK = Backoff(first=0.05, factor=1.5, cap=0.5)  # between attempts at a held migration lock


def state(db, target: Target):
    return db[target.version_table]


def record(db, target: Target, version: SchemaVersion, action: str) -> None:
    """Record that the database reached ``version``: a history entry, then the version document
    (the record proper: written last, so a run killed before it does the work again). The entry
    carries the next sequence number, so one written by a run killed before the version document
    is overwritten by the re-run's, not doubled."""
    coll = state(db, target)
    now = int(time.time())
    seq = int((coll.find_one({"_id": VERSION_ID}, {"seq": 1}) or {}).get("seq", 0)) + 1
    key = f"history:{time.time_ns():020d}:{uuid.uuid4().hex[:8]}"  # sorts in the order written
    entry = {
        "seq": seq,
        "version": version.version,
        "revision": version.revision,
        "action": action,
        "applied_at": now,
        "tool_version": __version__,
    }
    coll.update_one(
        {"_id": {"$regex": "^history:"}, "seq": seq}, {"$set": entry, "$setOnInsert": {"_id": key}}, upsert=True
    )
    coll.update_one(
        {"_id": VERSION_ID},
        {"$set": {"version": version.version, "updated_at": now, "seq": seq}, "$unset": {"creating": ""}},
        upsert=True,
    )


def mark_creating(db, target: Target, version: SchemaVersion) -> None:
    """Note that head is being created (before its first collection): a run killed before the
    record leaves collections that would read as an older Agno database; the mark says otherwise."""
    state(db, target).update_one({"_id": VERSION_ID}, {"$set": {"creating": version.version}}, upsert=True)


def creating(db, target: Target) -> bool:
    """Whether head was being created by a run that did not record it."""
    doc = state(db, target).find_one({"_id": VERSION_ID})
    return doc is not None and doc.get("version") is None and doc.get("creating") is not None


def history(db, target: Target) -> list[dict]:
    """The history entries, oldest first."""
    return list(state(db, target).find({"_id": {"$regex": "^history:"}}).sort("_id", 1))


def start_step(db, target: Target, version: SchemaVersion, direction: str) -> None:
    state(db, target).update_one(
        {"_id": f"step:{version.version}:{direction}"},
        {
            "$inc": {"attempts": 1},
            "$set": {
                "started_at": int(time.time()),
                "version": version.version,
                "direction": direction,
                "completed_at": None,
            },
        },
        upsert=True,
    )


def finish_step(db, target: Target, version: SchemaVersion, direction: str, report: dict) -> None:
    counts = {k: (len(v) if isinstance(v, list) else v) for k, v in report.items() if isinstance(v, (int, list))}
    state(db, target).update_one(
        {"_id": f"step:{version.version}:{direction}"},
        {"$set": {"completed_at": int(time.time()), "report": counts}},
    )


def step_records(db, target: Target) -> list[dict]:
    return list(state(db, target).find({"_id": {"$regex": "^step:"}}))


def checkpoint(db, target: Target, name: str) -> dict | None:
    return state(db, target).find_one({"_id": f"checkpoint:{name}"})


def save_checkpoint(db, target: Target, name: str, **values) -> None:
    state(db, target).update_one({"_id": f"checkpoint:{name}"}, {"$set": values}, upsert=True)


def clear_checkpoint(db, target: Target, name: str) -> None:
    state(db, target).delete_one({"_id": f"checkpoint:{name}"})


# --- Agno's stamps ------------------------------------------------------------------------------


def agno_stamp(db, target: Target, table_name: str | None = None) -> str | None:
    doc = db[target.agno_versions_table].find_one({"table_name": table_name or target.session_table})
    return doc.get("version") if doc else None


def write_agno_stamps(db, target: Target, version: SchemaVersion) -> None:
    """Make Agno's stamps agree with ``version`` (the session collection, and the runs collection
    from 3.0.0); a stamp that already means this version is kept."""
    coll = db[target.agno_versions_table]
    wanted = {target.session_table: version.agno_stamp}
    wanted[target.runs_table] = version.agno_stamp if version.key >= (3, 0, 0) else None
    for table_name, stamp in wanted.items():
        current = coll.find_one({"table_name": table_name})
        if stamp is None:
            if current is not None:
                coll.delete_many({"table_name": table_name})
        elif current is None or registry.from_agno_stamp(current.get("version")) != version:
            write_agno_stamp(db, target, table_name, stamp)


def write_agno_stamp(db, target: Target, table_name: str, stamp: str) -> None:
    """Agno's stamp of one table, as Agno 3.1.10's ``MongoDb.upsert_schema_version`` writes it."""
    db[target.agno_versions_table].update_one(
        {"table_name": table_name},
        {"$set": {"table_name": table_name, "version": stamp, "updated_at": int(time.time())}},
        upsert=True,
    )


def stamp_table(db, target: Target, table_name: str, stamp: str) -> None:
    """Agno's stamp of one collection (``table_name`` → ``stamp``), written when missing or different."""
    coll = db[target.agno_versions_table]
    current = coll.find_one({"table_name": table_name})
    if current is None or current.get("version") != stamp:
        coll.update_one(
            {"table_name": table_name},
            {"$set": {"table_name": table_name, "version": stamp, "updated_at": int(time.time())}},
            upsert=True,
        )


# --- the lock -------------------------------------------------------------------------------------


class MongoLock:
    """The migration lock: a lease document (``backends.mongo_lease.Lease``) in our state collection.

    Only one process can hold it; an expired lease can be taken over; its expiry is timed by the
    server's clock, so replicas with skewed clocks agree. While held, a thread renews the lease every
    third of it; if a renewal finds the lock taken over (this process stalled past its lease),
    :meth:`check` raises LockTimeout so the step stops before its next write. Waiting for a held
    lock gives up after the target's ``lock_timeout``.
    """

    def __init__(self, db, target: Target):
        self.target = target
        self.lease = Lease(state(db, target), LOCK_ID, target.lock_lease)

    def __enter__(self) -> MongoLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def lost(self) -> bool:
        """Whether another process took the lock over while this one held it."""
        return self.lease.lost

    def acquire(self) -> None:
        """Take the lock (waiting for another holder up to ``lock_timeout``, then LockTimeout) and
        keep it renewed until :meth:`release`."""
        self.lease.take(self.target.lock_timeout, WAIT_FOR_LOCK, self._timed_out)
        self.lease.keep_renewed()

    def _timed_out(self) -> LockTimeout:
        holder = self.lease.holder()
        return LockTimeout(
            f"another process ({holder.get('owner', 'unknown')}) holds the migration lock on "
            f"{self.target.masked_url} until {holder.get('expires_at', '?')} UTC; gave up after "
            f"{self.target.lock_timeout:g}s (--lock-timeout)"
        )

    def check(self) -> None:
        """Raise LockTimeout if the lease was lost (another process took the lock over)."""
        if self.lease.lost:
            raise LockTimeout(
                f"the migration lock on {self.target.masked_url} was taken over by another process after "
                f"this one overran its lease ({self.target.lock_lease:g}s); stopped before writing more"
            )

    def release(self) -> None:
        """Give the lock back; an unreachable server is ignored (the lease expires by itself)."""
        with contextlib.suppress(Exception):
            self.lease.release()
