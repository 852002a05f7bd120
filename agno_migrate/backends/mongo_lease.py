"""A lease on one MongoDB document: one holder at a time, timed by the server's clock.

The migration lock (``migrate.mongo.state.MongoLock``) and the session store's writer lease on a
standalone server (``store.mongo``) are both a :class:`Lease`: a document ``{_id, owner, host, pid,
acquired_at, expires_at}`` in our state collection. It is taken with one atomic update, an upsert
that only a missing document lets through (two takers collide on the ``_id``, one wins), or a
takeover of a document whose lease expired; ``expires_at`` is computed by the server (``$$NOW``), so
processes with skewed clocks agree on it. A holder that dies leaves a lease that frees itself.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

from agno_migrate.backends import retry

MIN_RENEWAL_INTERVAL = 0.05  # seconds: a lease shorter than 150 ms is still renewed at this pace


class Lease:
    """The lease ``doc_id`` in collection ``coll``, ``seconds`` long, for one owner (this object)."""

    def __init__(self, coll, doc_id: str, seconds: float):
        self.coll = coll
        self.doc_id = doc_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lease_ms = int(seconds * 1000)
        self.lost = False
        """Set by the renewal thread when it found the lease taken over (this process stalled past it)."""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def try_take(self) -> bool:
        """One attempt: create the lease document, or take it over if its lease expired (or it is
        already ours). True if this owner holds the lease now. Raises pymongo's errors."""
        from pymongo.errors import DuplicateKeyError

        take = [
            {
                "$set": {
                    "owner": self.owner,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "acquired_at": "$$NOW",
                    "expires_at": {"$add": ["$$NOW", self.lease_ms]},
                }
            }
        ]
        try:  # no lease document: create it (two creators collide on the _id, one wins)
            self.coll.update_one({"_id": self.doc_id, "owner": {"$exists": False}}, take, upsert=True)
            return True
        except DuplicateKeyError:  # held, or expired
            pass
        expired_or_mine = {"$or": [{"$lt": ["$expires_at", "$$NOW"]}, {"$eq": ["$owner", self.owner]}]}
        return self.coll.find_one_and_update({"_id": self.doc_id, "$expr": expired_or_mine}, take) is not None

    def take(self, timeout: float, backoff: retry.Backoff, give_up: Callable[[], BaseException]) -> None:
        """Take the lease, retrying with ``backoff`` while another owner holds it; ``give_up()`` is
        raised once ``timeout`` seconds have passed."""
        retry.until(self.try_take, backoff, timeout, give_up)

    def holder(self) -> dict:
        """The lease document as it is now ({} if there is none)."""
        return self.coll.find_one({"_id": self.doc_id}) or {}

    def keep_renewed(self) -> None:
        """Renew the lease every third of it from a daemon thread until :meth:`release`. A renewal
        that finds the lease taken over sets :attr:`lost` and stops; a failed one (an error talking
        to the server) is tried again at the next interval, within the lease."""
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="agno-migrate-lock", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        interval = max(self.lease_ms / 3000.0, MIN_RENEWAL_INTERVAL)
        while not self._stop.wait(interval):
            try:
                result = self.coll.update_one(
                    {"_id": self.doc_id, "owner": self.owner},
                    [{"$set": {"expires_at": {"$add": ["$$NOW", self.lease_ms]}}}],
                )
            except Exception:  # a transient error: the next renewal tries again within the lease
                continue
            if result.matched_count == 0:
                self.lost = True
                return

    def release(self) -> None:
        """Stop renewing and delete the lease document if it is still ours (a lease taken over is
        left to its new owner). Raises pymongo's errors from the delete."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        self.coll.delete_one({"_id": self.doc_id, "owner": self.owner})
