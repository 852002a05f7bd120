"""The parts of a MongoDB source: collections read by keyset on ``session_id`` (string ids, in
MongoDB's order), reads only."""

from __future__ import annotations

from agno_migrate.backends import mongo as mongo_backend
from agno_migrate.move import rows as conv
from agno_migrate.target import Target


class _Part:
    """One collection of the source."""

    def __init__(self, target: Target, collection: str):
        self.target = target
        self.name = collection

    @property
    def collection(self):
        return mongo_backend.database(self.target)[self.name]

    def count(self) -> int:
        with mongo_backend.mongo_errors(self.target):
            return self.collection.count_documents({"session_id": {"$type": "string"}})

    def rows(self, after: str | None, size: int) -> list[dict]:
        where = {"session_id": {"$gt": after} if after is not None else {"$type": "string"}}
        with mongo_backend.mongo_errors(self.target):
            rows = list(self.collection.find(where, {"_id": 0}).sort("session_id", 1).limit(size))
            self.attach(rows)
        return rows

    def attach(self, rows: list[dict]) -> None:
        """Read what belongs to the batch's documents from elsewhere (the head part: their runs)."""

    def close(self) -> None:
        """(The client is the target's: ``backends.dispose`` closes it.)"""


class HeadPart(_Part):
    """3.x: the sessions collection and the runs collection, merged by session. Documents are native
    (a string stays a string)."""

    def __init__(self, target: Target):
        super().__init__(target, target.session_table)

    def attach(self, rows: list[dict]) -> None:
        ids = [row["session_id"] for row in rows]
        runs = mongo_backend.database(self.target)[self.target.runs_table]
        by_session: dict = {}
        found = runs.find({"session_id": {"$in": ids}}, {"_id": 0}).sort(
            [("session_id", 1), ("run_index", 1), ("created_at", 1), ("run_id", 1)]
        )
        for run in found:
            by_session.setdefault(run["session_id"], []).append(run)
        for row in rows:
            row["__runs"] = by_session.get(row["session_id"], [])

    def unit(self, row: dict, problems: list) -> conv.SessionUnit:
        session = conv.head_session(row, self.name, problems, decode=False)
        runs = [conv.head_run(run, self.target.runs_table, problems, decode=False) for run in row["__runs"]]
        return conv.SessionUnit(session, runs)


class BlobPart(conv.BlobRows, _Part):
    """2.x: runs in the sessions' ``runs`` arrays; JSON strings (2.0.0) decoded as the 2.3.0 step does."""

    def __init__(self, target: Target):
        super().__init__(target, target.session_table)


class LegacyPart(conv.LegacyRows, _Part):
    """An Agno 1.x collection of one mode."""

    def __init__(self, target: Target, collection: str, mode: str):
        super().__init__(target, collection)
        self.mode = mode
