"""The session store on MongoDB, on the head layout (as Agno 3.1's MongoDb writes it), with pymongo.

Documents: one per session in the session collection (the 14 session fields, JSON fields as native
sub-documents, plus MongoDB's ``_id``, which is never returned), one per run in the runs collection
(the runs-table row: ``run_id`` unique, ``session_id``, ``run_index``, ``run_data``, ...), exactly
what Agno 3.1's own MongoDb writes and reads. A session document of an upgraded database may still
carry its legacy ``runs`` array: reads merge it as SQL does (``sessions.merge_runs``), writes keep
it (Agno's ``cleanup_legacy_runs_field()`` drops it).

Writes: on a replica set or a sharded cluster, each call is one multi-document transaction
(``ClientSession.with_transaction``, retried on conflicts) — but one that writes a single document
(``upsert_session`` of a session without runs), atomic by itself, is that one write; an ``upsert_sessions`` call bigger
than TRANSACTION_DOCUMENTS documents or TRANSACTION_BYTES is written in several, each holding
whole sessions, as a transaction must fit in the server's cache and lifetime. Every write touches
the session document first, so two writers to one session conflict and one of them retries: no run
is lost and each new run gets its own position. (MongoDB skips an update that changes nothing, and
two writers in the same second set the same ``updated_at``: so the touch also sets a claim field to
a fresh ObjectId and unsets it again in the same transaction; the document committed is unchanged
apart from ``updated_at``.) A standalone server has no transactions: there every write of this
store first takes a lease document in our state collection (one writer at a time per session
collection; a dead writer's lease expires after ``lock_lease`` seconds), and a call is checked
before it writes but not atomic: a crash in the middle leaves what was written so far, and calling
it again completes it (every write is an upsert).

Limits (BSON): integers up to 64 bits (-2**63..2**63-1) and documents up to 16 MB (a session
without its runs; one run). Every document is encoded and measured before anything is written: a
value outside them raises UsageError and nothing is written (the SQL stores take both).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agno_migrate import convert, jsoncodec
from agno_migrate.backends import dialect_of, mongo, retry
from agno_migrate.backends.mongo import mongo_errors
from agno_migrate.backends.mongo_lease import Lease
from agno_migrate.backends.records import mongo_recorded_version
from agno_migrate.backends.retry import FULL_JITTER, HALF_JITTER, Backoff
from agno_migrate.errors import LockTimeout, RunIdTaken, UnknownSession, UsageError
from agno_migrate.sessions import Run, Session, merge_runs
from agno_migrate.store.base import SessionStore, check_listing, check_name, check_run, with_run_id
from agno_migrate.target import Target

ID_CHUNK = 1000  # ids per $in
DELETE_CHUNK = 500  # sessions per transaction of delete_sessions
KEPT_SESSION_FIELDS = ("created_at",)  # an update keeps these
KEPT_RUN_FIELDS = ("session_id", "run_index", "created_at")  # an update keeps these (as the SQL store)
OWNER_FIELDS = ("session_type", "user_id", "agent_id", "team_id", "workflow_id", "created_at")
WRITER_LEASE_ID = "store-writer"
CLAIM = "_agno_migrate_claim"  # set and unset in one transaction: a write even when nothing else changes
DOCUMENT_TOO_LARGE = (10334, 17419, 17420)  # BSONObjectTooLarge and friends
DEFAULT_MAX_DOCUMENT = 16 * 1024 * 1024
# One transaction of upsert_sessions holds at most this much: a server's transaction must fit in its
# cache (TransactionTooLargeForCache) and within transactionLifetimeLimitSeconds (60 s by default).
TRANSACTION_DOCUMENTS = 1000
TRANSACTION_BYTES = 16 * 1024 * 1024
# between the attempts of a transaction that conflicted with another writer's
CONFLICT_RETRIES = Backoff(first=0.004, cap=0.1, jitter=FULL_JITTER)
# between the attempts at the writer lease another writer holds (standalone servers)
WAIT_FOR_WRITER = Backoff(first=0.002, cap=0.1, jitter=HALF_JITTER)


class MongoDb(SessionStore):
    """Sessions on MongoDB, in ``db_name`` (default: the URL's database, else ``agno``, as Agno)."""

    dialect = mongo.DIALECT

    def __init__(
        self,
        db_url: str,
        db_name: str | None = None,
        session_collection: str | None = None,
        runs_collection: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        names = {"schema": db_name, "session_table": session_collection, "runs_table": runs_collection}
        target = Target.from_url(db_url, **{k: v for k, v in names.items() if v is not None})
        self._setup(target, auto_upgrade_schema)

    @classmethod
    def of(cls, target: Target, auto_upgrade_schema: bool = False) -> MongoDb:
        """The store of a MongoDB ``target`` (its database and collection names as they are)."""
        store = cls.__new__(cls)
        store._setup(target, auto_upgrade_schema)
        return store

    def _setup(self, target: Target, auto_upgrade_schema: bool) -> None:
        if dialect_of(target) is not self.dialect:
            raise UsageError(f"MongoDb needs a mongodb:// URL, not {target.masked_url}")
        super().__init__(target, auto_upgrade_schema)
        self._transactions: bool | None = None  # does the server have them? (asked once)
        self._collections_of: tuple | None = None  # (database, sessions, runs)
        self._max_document = DEFAULT_MAX_DOCUMENT

    # --- plumbing -------------------------------------------------------------------------------

    def _recorded_version(self) -> str | None:
        with mongo_errors(self.target):
            return mongo_recorded_version(mongo.database(self.target), self.target)

    @property
    def _db(self):
        return mongo.database(self.target)

    @property
    def _sessions(self):
        return self._collections()[0]

    @property
    def _runs(self):
        return self._collections()[1]

    def _collections(self) -> tuple:
        """(sessions, runs) of the current client, reading 64-bit integers as int (``_plain_ints``)."""
        db = self._db
        if self._collections_of is None or self._collections_of[0] is not db:
            options = db.codec_options.with_options(type_registry=_plain_ints())
            names = (self.target.session_table, self.target.runs_table)
            self._collections_of = (db, *(db.get_collection(name, codec_options=options) for name in names))
        return self._collections_of[1:]

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        self._ensure_schema()
        with mongo_errors(self.target):
            yield

    def _write(self, work: Callable[[Any], Any], one_document: bool = False) -> Any:
        """Run ``work(session)`` as one transaction, retried on conflicts; ``session`` is None on a
        standalone server, where ``work`` runs under the writer lease instead. ``one_document``:
        ``work(None)`` writes a single document, atomic by itself: neither is needed (a
        transaction holding that document makes the write wait for its commit)."""
        self._ensure_schema()
        with mongo_errors(self.target), _bson_limits(self.target):
            if one_document:
                return work(None)
            client = self._db.client
            if self._has_transactions(client):
                pace = retry.pacer(CONFLICT_RETRIES)

                def attempt(session):
                    pace()  # before a retry (a conflict): jittered, so many writers' retries spread out
                    return work(session)

                with client.start_session() as session:
                    return session.with_transaction(attempt)
            with _WriterLease(self._db, self.target):
                return work(None)

    def _sizes(self, docs: Iterable[dict]) -> list[int]:
        """The BSON size of each document about to be written; UsageError (nothing written yet) if
        one cannot be stored: beyond the server's document size, an integer beyond 64 bits, a key
        BSON refuses."""
        import bson
        from pymongo.errors import DocumentTooLarge

        self._ensure_schema()
        with mongo_errors(self.target), _bson_limits(self.target):
            self._has_transactions(self._db.client)  # learns the server's document size
            sizes = []
            for doc in docs:
                sizes.append(len(bson.encode(doc)))
                if sizes[-1] > self._max_document:
                    raise DocumentTooLarge(f"BSON document too large ({sizes[-1]} bytes)")
            return sizes

    def _has_transactions(self, client) -> bool:
        """True on a replica set member or a mongos (one ``hello`` per store object)."""
        if self._transactions is None:
            from pymongo.errors import OperationFailure

            try:
                hello = client.admin.command("hello")
            except OperationFailure:  # a server older than 4.4.2
                hello = client.admin.command("isMaster")
            sessions = hello.get("logicalSessionTimeoutMinutes") is not None
            self._max_document = hello.get("maxBsonObjectSize") or DEFAULT_MAX_DOCUMENT
            self._transactions = sessions and bool(hello.get("setName") or hello.get("msg") == "isdbgrid")
        return self._transactions

    # --- writes ---------------------------------------------------------------------------------

    def upsert_sessions(self, sessions: Iterable[Session], preserve_updated_at: bool = False) -> list[Session]:
        """Bulk :meth:`upsert_session`: one transaction (one bulk write per collection) for up to
        TRANSACTION_DOCUMENTS documents or TRANSACTION_BYTES; a bigger call is written in several,
        each holding whole sessions with their runs.

        A run already stored keeps its position; new runs go after the session's last stored run,
        in list order. A run id that belongs to another session raises RunIdTaken, and a session or
        run BSON cannot hold raises UsageError, both before anything is written.
        """
        sessions = list(sessions)
        _, rows, run_rows = self._session_rows(sessions, preserve_updated_at)
        if not rows:
            self._ensure_schema()
            return sessions
        sizes = self._sizes([*rows, *run_rows])
        parts = _transactions(rows, run_rows, sizes)
        if len(parts) > 1:  # refuse a foreign run id before the first part is committed
            with self._read():
                _refuse_foreign(run_rows, self._owners(None, run_rows))
        one_document = len(rows) == 1 and not run_rows  # atomic alone: no transaction, no claim
        for part_rows, part_runs in parts:
            self._write(lambda session, r=part_rows, rr=part_runs: self._write_sessions(session, r, rr), one_document)
        return sessions

    def _write_sessions(self, session, rows: list[dict], run_rows: list[dict]) -> None:
        """One transaction of upsert_sessions (``session`` None: standalone, under the lease)."""
        from bson import ObjectId
        from pymongo import UpdateMany, UpdateOne

        def session_ops(claim: bool) -> list:
            ops = []
            for row in rows:
                update = _upsert(row, KEPT_SESSION_FIELDS)
                if claim:
                    update["$set"][CLAIM] = ObjectId()
                ops.append(UpdateOne({"session_id": row["session_id"]}, update, upsert=True))
            if claim:
                ids = list({row["session_id"] for row in rows})
                ops += [
                    UpdateMany({"session_id": {"$in": ids[i : i + ID_CHUNK]}}, {"$unset": {CLAIM: ""}})
                    for i in range(0, len(ids), ID_CHUNK)
                ]
            return ops

        if session is not None:  # claim the sessions first: concurrent writers to them conflict
            self._sessions.bulk_write(session_ops(claim=True), ordered=True, session=session)
        self._place_runs(session, run_rows)
        if session is None:  # checked first, then written
            self._sessions.bulk_write(session_ops(claim=False), ordered=True)
        if run_rows:
            ops = [UpdateOne({"run_id": r["run_id"]}, _upsert(r, KEPT_RUN_FIELDS), upsert=True) for r in run_rows]
            self._runs.bulk_write(ops, ordered=True, session=session)

    def _owners(self, session, run_rows: list[dict]) -> dict:
        """run_id -> the session holding it, for the stored ones among ``run_rows``."""
        owners: dict = {}
        ids = list({row["run_id"] for row in run_rows})
        for start in range(0, len(ids), ID_CHUNK):
            query = {"run_id": {"$in": ids[start : start + ID_CHUNK]}}
            for found in self._runs.find(query, {"_id": 0, "run_id": 1, "session_id": 1}, session=session):
                owners[found["run_id"]] = found.get("session_id")
        return owners

    def _place_runs(self, session, run_rows: list[dict]) -> None:
        """Give new runs the positions after their session's stored runs; refuse foreign run ids."""
        owners = self._owners(session, run_rows)
        _refuse_foreign(run_rows, owners)
        sessions = list({row["session_id"] for row in run_rows})
        following: dict = {}
        for start in range(0, len(sessions), ID_CHUNK):
            chunk = sessions[start : start + ID_CHUNK]
            pipeline = [
                {"$match": {"session_id": {"$in": chunk}, "run_index": {"$type": "number"}}},
                {"$group": {"_id": "$session_id", "top": {"$max": "$run_index"}}},
            ]
            for found in self._runs.aggregate(pipeline, session=session):
                following[found["_id"]] = int(found["top"]) + 1
        placed: dict = {}
        for row in run_rows:
            if owners.get(row["run_id"]) is None:
                if row["run_id"] in placed:  # listed twice: the first copy took the position
                    row["run_index"] = placed[row["run_id"]]
                    continue
                row["run_index"] = placed[row["run_id"]] = following.get(row["session_id"], 0)
                following[row["session_id"]] = row["run_index"] + 1

    def upsert_run(self, session_id: str, run: dict) -> Run:
        """Append ``run`` to the session (or update it in place, by ``run_id``) without rewriting the
        session's other runs. Raises UnknownSession (a UsageError, also a KeyError) for a missing
        session, RunIdTaken if the run
        id belongs to another session. The session document is written first, so concurrent writers
        to one session conflict (and retry): each run gets its own position."""
        from bson import ObjectId

        check_run(run)
        run = with_run_id(Run(run))
        now = int(time.time())
        projection = {"_id": 0, **{name: 1 for name in OWNER_FIELDS}}
        (sized,), _ = convert.run_rows({"session_id": session_id}, [run])
        self._sizes([sized])

        def work(session):
            touch = {"updated_at": now}
            if session is not None:  # a claim: concurrent writers to this session conflict
                touch[CLAIM] = ObjectId()
            owner = self._sessions.find_one_and_update(
                {"session_id": {"$eq": session_id}}, {"$set": touch}, projection=projection, session=session
            )
            if owner is None:
                raise UnknownSession(f"no session {session_id!r}: upsert_session() it first, then add runs")
            if session is not None:
                self._sessions.update_one({"session_id": {"$eq": session_id}}, {"$unset": {CLAIM: ""}}, session=session)
            (row,), _ = convert.run_rows({**owner, "session_id": session_id}, [run])
            stored, following = self._run_place(session, session_id, run.run_id)
            if stored is not None and stored.get("session_id") != session_id:
                owner_id = stored.get("session_id")
                raise RunIdTaken(f"run {run.run_id!r} belongs to session {owner_id!r}, not {session_id!r}")
            if stored is None:  # a new run goes last; an existing one keeps its position
                row["run_index"] = following
            row.update(updated_at=now, run_data=dict(run))
            self._runs.update_one({"run_id": run.run_id}, _upsert(row, KEPT_RUN_FIELDS), upsert=True, session=session)

        self._write(work)
        return run

    def _run_place(self, session, session_id: str, run_id: str) -> tuple[dict | None, int]:
        """One query: (the stored run ``run_id`` as ``{"session_id": ...}``, or None; the position after
        session ``session_id``'s last numbered run, 0 for none). Values are ``$literal``: never paths."""
        numbered = {"session_id": {"$eq": session_id}, "run_index": {"$type": "number"}}
        ours = {"$and": [{"$eq": ["$session_id", {"$literal": session_id}]}, {"$isNumber": "$run_index"}]}
        that = {"$eq": ["$run_id", {"$literal": run_id}]}
        pipeline = [
            {"$match": {"$or": [{"run_id": {"$eq": run_id}}, numbered]}},
            {
                "$group": {  # $max skips the nulls: one stored run at most has this id
                    "_id": None,
                    "stored": {"$max": {"$cond": [that, {"session_id": "$session_id"}, None]}},
                    "top": {"$max": {"$cond": [ours, "$run_index", None]}},
                }
            },
        ]
        found = next(iter(self._runs.aggregate(pipeline, session=session)), {})
        top = found.get("top")
        return found.get("stored"), 0 if top is None else int(top) + 1

    def rename_session(self, session_id: str, name: str) -> Session | None:
        """Set the session's name (``session_data.session_name``); None if there is no such session."""
        check_name(name)

        def work(session) -> bool:
            now = int(time.time())
            query = {"session_id": {"$eq": session_id}}
            found = self._sessions.find_one(query, {"_id": 0, "session_data": 1}, session=session)
            if found is None:
                return False
            data = found.get("session_data")
            if isinstance(data, dict):
                change = {"session_data.session_name": name, "updated_at": now}
            else:  # none yet (or a JSON string from an old Agno)
                data = jsoncodec.decode_json(data)
                data = {**(data if isinstance(data, dict) else {}), "session_name": name}
                change = {"session_data": data, "updated_at": now}
            self._sessions.update_one(query, {"$set": change}, session=session)
            return True

        return self.get_session(session_id) if self._write(work) else None

    def delete_sessions(self, session_ids: Iterable[str]) -> int:
        """Delete these sessions and their runs; returns how many sessions were deleted. One
        transaction per DELETE_CHUNK sessions (each session goes with its runs)."""
        ids = list(dict.fromkeys(session_ids))
        self._ensure_schema()
        deleted = 0
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = {"session_id": {"$in": ids[start : start + DELETE_CHUNK]}}

            def work(session, chunk=chunk) -> int:
                gone = self._sessions.delete_many(chunk, session=session).deleted_count
                self._runs.delete_many(chunk, session=session)  # also runs left by an interrupted call
                return gone

            deleted += self._write(work)
        return deleted

    # --- reads ----------------------------------------------------------------------------------

    def get_session(
        self, session_id: str, session_type: str | None = None, user_id: str | None = None
    ) -> Session | None:
        """The session with its runs, or None (also when ``session_type``/``user_id`` do not match)."""
        query = {"session_id": {"$eq": session_id}}
        if session_type is not None:
            query["session_type"] = {"$eq": session_type}
        if user_id is not None:
            query["user_id"] = {"$eq": user_id}
        with self._read():
            doc = self._sessions.find_one(query, {"_id": 0})
            return None if doc is None else self._with_runs([doc])[0]

    def get_sessions(
        self,
        session_type: str | None = None,
        user_id: str | None = None,
        component_id: str | None = None,
        session_name: str | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        limit: int | None = None,
        page: int | None = None,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> tuple[list[Session], int]:
        """Sessions matching every given filter, a page of them, and the total count of matches.

        ``page`` counts from 1 and needs ``limit``. ``sort_by`` is one of SORTABLE; ties are broken
        by ``session_id``. ``session_name`` matches a case-insensitive substring of the name.
        """
        check_listing(
            sort_by, sort_order, limit, page, (("start_timestamp", start_timestamp), ("end_timestamp", end_timestamp))
        )
        where = _filters(session_type, user_id, component_id, session_name, start_timestamp, end_timestamp)
        with self._read():
            total = self._sessions.count_documents(where)
            if limit == 0:
                return [], total
            # The page's ids first (a sort of small documents), then the documents themselves.
            order = [(sort_by, 1 if sort_order == "asc" else -1)]
            if sort_by != "session_id":
                order.append(("session_id", 1))
            cursor = self._sessions.find(where, {"_id": 0, "session_id": 1}).sort(order)
            if limit is not None:
                cursor = cursor.skip(((page or 1) - 1) * limit).limit(limit)
            ids = [d["session_id"] for d in cursor]
            return self._with_runs(self._documents(ids)), total

    def get_all_session_ids(
        self, user_id: str | None = None, component_id: str | None = None, session_type: str | None = None
    ) -> list[str]:
        """The ids of the matching sessions, newest first."""
        where = _filters(session_type, user_id, component_id, None, None, None)
        with self._read():
            cursor = self._sessions.find(where, {"_id": 0, "session_id": 1})
            return [d["session_id"] for d in cursor.sort([("created_at", -1), ("session_id", 1)])]

    # --- read helpers ---------------------------------------------------------------------------

    def _documents(self, ids: list) -> list[dict]:
        """The session documents of ``ids``, in that order."""
        by_id: dict = {}
        for start in range(0, len(ids), ID_CHUNK):
            for doc in self._sessions.find({"session_id": {"$in": ids[start : start + ID_CHUNK]}}, {"_id": 0}):
                by_id[doc["session_id"]] = doc
        return [by_id[sid] for sid in ids if sid in by_id]

    def _with_runs(self, docs: list[dict]) -> list[Session]:
        """Sessions from documents, each with its runs (one query per chunk of sessions)."""
        ids = [doc["session_id"] for doc in docs]
        by_session: dict = {sid: [] for sid in ids}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            query = {"session_id": chunk[0]} if len(chunk) == 1 else {"session_id": {"$in": chunk}}
            cursor = self._runs.find(query, {"_id": 0, "session_id": 1, "run_data": 1})
            for run in cursor.sort([("session_id", 1), ("run_index", 1), ("created_at", 1)]):
                by_session[run["session_id"]].append(jsoncodec.decode_json(run.get("run_data")))
        out = []
        for doc in docs:
            out.append(Session.from_row(doc, merge_runs(by_session[doc["session_id"]], doc.get("runs"))))
        return out


def _filters(session_type, user_id, component_id, session_name, start, end) -> dict:
    """The query for get_sessions / get_all_session_ids (values compared with $eq: never operators)."""
    clauses: list[dict] = []
    if session_type is not None:
        clauses.append({"session_type": {"$eq": session_type}})
    if user_id is not None:
        clauses.append({"user_id": {"$eq": user_id}})
    if component_id is not None:
        kinds = [session_type] if session_type else ["agent", "team", "workflow"]
        clauses.append({"$or": [{f"{kind}_id": {"$eq": component_id}} for kind in kinds]})
    if start is not None:
        clauses.append({"created_at": {"$gte": start}})
    if end is not None:
        clauses.append({"created_at": {"$lte": end}})
    if session_name is not None:  # as Agno: a case-insensitive substring, regex characters literal
        clauses.append({"session_data.session_name": {"$regex": re.escape(session_name), "$options": "i"}})
    return {"$and": clauses} if clauses else {}


def _upsert(row: dict, kept: tuple[str, ...]) -> dict:
    """The update document that writes ``row``: ``kept`` fields only when the document is new."""
    out: dict = {"$set": {k: v for k, v in row.items() if k not in kept}}
    on_insert = {k: row[k] for k in kept if k in row}
    if on_insert:
        out["$setOnInsert"] = on_insert
    return out


@functools.cache
def _plain_ints():
    """The type registry that reads BSON 64-bit integers as ``int`` (pymongo's default is
    ``bson.Int64``, an int subclass): documents come back as plain JSON values, decoded in C."""
    from bson.codec_options import TypeDecoder, TypeRegistry
    from bson.int64 import Int64

    class PlainInt(TypeDecoder):
        bson_type = Int64

        def transform_bson(self, value):
            return int(value)

    return TypeRegistry([PlainInt()])


@contextlib.contextmanager
def _bson_limits(target: Target) -> Iterator[None]:
    """Values BSON cannot hold become one UsageError line (nothing was written: the transaction
    was aborted, or the documents were checked before writing)."""
    from bson.errors import InvalidDocument
    from pymongo.errors import BulkWriteError, OperationFailure

    try:
        yield
    except OverflowError:
        raise UsageError(
            "MongoDB stores integers of up to 64 bits (-9223372036854775808..9223372036854775807); "
            "a session or run holds a larger one: nothing was written"
        ) from None
    except InvalidDocument as exc:  # DocumentTooLarge, keys that are not strings or hold NUL
        raise UsageError(f"MongoDB cannot store this session or run ({_too_large(exc)}): nothing was written") from None
    except OperationFailure as exc:
        codes = {exc.code}
        if isinstance(exc, BulkWriteError):
            codes = {error.get("code") for error in exc.details.get("writeErrors", [])}
        if not codes & set(DOCUMENT_TOO_LARGE):
            raise
        raise UsageError(
            "a session document would exceed MongoDB's 16 MB document limit (BSON): the write was rolled back"
        ) from None


def _too_large(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if "too large" in text:
        return f"a document exceeds MongoDB's 16 MB limit: {text}"
    return text


def _refuse_foreign(run_rows: list[dict], owners: dict) -> None:
    for row in run_rows:
        owner = owners.get(row["run_id"])
        if owner is not None and owner != row["session_id"]:
            raise RunIdTaken(f"run {row['run_id']!r} belongs to session {owner!r}, not {row['session_id']!r}")


def _transactions(rows: list[dict], run_rows: list[dict], sizes: list[int]) -> list[tuple[list, list]]:
    """``rows`` and ``run_rows`` cut into transactions of whole sessions (a session with its runs,
    never split) of at most TRANSACTION_DOCUMENTS documents and TRANSACTION_BYTES each (a session
    bigger than that alone)."""
    units: dict = {}  # session_id -> [rows, run rows, documents, bytes], in the call's order
    for row, size in zip(rows, sizes, strict=False):
        unit = units.setdefault(row["session_id"], [[], [], 0, 0])
        unit[0].append(row)
        unit[2], unit[3] = unit[2] + 1, unit[3] + size
    for row, size in zip(run_rows, sizes[len(rows) :], strict=False):
        unit = units[row["session_id"]]
        unit[1].append(row)
        unit[2], unit[3] = unit[2] + 1, unit[3] + size
    parts: list[tuple[list, list]] = []
    documents = size = 0
    for unit_rows, unit_runs, unit_documents, unit_size in units.values():
        fits = documents + unit_documents <= TRANSACTION_DOCUMENTS and size + unit_size <= TRANSACTION_BYTES
        if not parts or not fits:
            parts.append(([], []))
            documents = size = 0
        parts[-1][0].extend(unit_rows)
        parts[-1][1].extend(unit_runs)
        documents, size = documents + unit_documents, size + unit_size
    return parts


class _WriterLease:
    """Standalone servers: one writer of this store at a time per session collection.

    A lease document ``{_id: "store-writer", owner, expires_at, ...}`` in our state collection
    (``backends.mongo_lease.Lease``: taken by creating it or by taking over an expired one, timed by
    the server's clock), not renewed (a store call is short), deleted when the write is done. Waiting
    gives up after the target's ``lock_timeout`` with LockTimeout.
    """

    def __init__(self, db, target: Target):
        self.target = target
        self.lease = Lease(db[target.version_table], WRITER_LEASE_ID, target.lock_lease)

    def __enter__(self) -> None:
        self.lease.take(self.target.lock_timeout, WAIT_FOR_WRITER, self._timed_out)

    def _timed_out(self) -> LockTimeout:
        return LockTimeout(
            f"another writer held the store's write lease on {self.target.masked_url} for longer than "
            f"{self.target.lock_timeout:g}s (a standalone server: writes take turns)"
        )

    def __exit__(self, *exc) -> None:
        self.lease.release()
