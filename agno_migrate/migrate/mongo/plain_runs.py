"""The 3.0.0 copy's server-side part on MongoDB: the runs of "plain" sessions copied by aggregation
pipelines inside the server (``$match`` → ``$unwind`` → ``$replaceWith`` → ``$merge`` into the runs
collection), giving exactly the documents the Python rules (``convert.run_rows`` and
``convert.rekey_runs``, written by ``MongoStep.insert_runs``) give them: the same fields in the same
order, the same values of the same BSON types.

A session is plain when its ``session_id`` is a string, its ``created_at``/``updated_at`` are
integers (int or long) or null or absent, it is smaller than 8 MB (so each of its runs' documents
fits BSON's 16 MB), its ``runs`` is an array whose every element is a plain run, and no run id of it
is held by any other element of any session, nor by a stored run of another place (session and
position). A plain run is an object with a non-empty string ``run_id`` that does not have the shape
of a derived id (``run-<uuid>``: what the Python rules give runs without an id or with a taken one),
whose ``agent_id``, ``team_id``, ``workflow_id``, ``parent_run_id`` and ``status`` are strings or null
(or absent), and whose ``created_at``/``updated_at`` are integers or null (or absent).

Every other session goes through the Python rules afterwards, unchanged: its runs' ids never meet a
plain run's id, so the result is the one the Python rules alone give. Resumable: a re-run finds the
same plain sessions, and leaves out of the copy the plain runs stored already (by an interrupted run:
same id, same place, the same document; see :func:`copy`).

Not checked (the Python round trip would change them, and no expression can look inside every nested
value): BSON's deprecated types (undefined, symbol, DBPointer) and a nested ``{"$id", "$ref"}`` in
that order (pymongo reads it as a DBRef and writes ``$ref`` first). Agno writes none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from agno_migrate import convert

CHUNK = 2000
"""Sessions per ``$merge`` (by keyset on ``session_id``): progress and the lock are checked between."""
MAX_CONTESTED = 20_000
"""Above this many sessions holding a shared id, the server-side copy is left out (their ids would
make the plain sessions' query too large): every session then goes through the Python rules."""
MAX_SESSION_BYTES = 8 * 1024 * 1024
LOOKUP_CHUNK = 500
DUPLICATE_KEY = 11000
_INDEX = "agno_migrate_run_index"
_KEYS = ("agent_id", "team_id", "workflow_id", "parent_run_id", "status")
_EPOCHS = ("created_at", "updated_at")
DERIVED_SHAPE = "^run-.{8}-.{4}-.{4}-.{4}-.{12}$"
"""The shape of a derived run id (``convert.derived_run_id``), as a regular expression."""
INT32 = (-(2**31), 2**31 - 1)
WITH_RUNS = {"$expr": {"$not": [{"$in": [{"$type": "$runs"}, ["missing", "null"]]}]}}
"""The sessions holding runs (by ``$type``: the query ``{"runs": {"$ne": None}}`` leaves out an array
holding a null element, and with it the session's runs)."""


# --- expressions -------------------------------------------------------------------------------------


def _type_in(value, *types: str) -> dict:
    return {"$in": [{"$type": value}, list(types)]}


def _true_string(value) -> dict:
    """Whether ``value`` is a string Python finds true (non-empty)."""
    return {"$and": [{"$eq": [{"$type": value}, "string"]}, {"$ne": [value, ""]}]}


def _true_integer(value) -> dict:
    """Whether ``value`` is an integer Python finds true (non-zero)."""
    return {"$and": [_type_in(value, "int", "long"), {"$ne": [value, 0]}]}


def _plain_run(r: str) -> dict:
    run_id = f"{r}.run_id"
    derived = {"$regexMatch": {"input": run_id, "regex": DERIVED_SHAPE, "options": "s"}}
    return {
        "$and": [
            {"$eq": [{"$type": r}, "object"]},
            {"$cond": [_true_string(run_id), {"$not": [derived]}, False]},
            *(_type_in(f"{r}.{k}", "string", "null", "missing") for k in _KEYS),
            *(_type_in(f"{r}.{k}", "int", "long", "null", "missing") for k in _EPOCHS),
        ]
    }


CANDIDATE = {
    "session_id": {"$type": "string"},
    "runs": {"$type": "array"},
    "$expr": {
        "$and": [
            {"$eq": [{"$type": "$session_id"}, "string"]},  # (the query's $type also takes an array holding one)
            *(_type_in(f"${k}", "int", "long", "null", "missing") for k in _EPOCHS),
            {"$lt": [{"$bsonSize": "$$ROOT"}, MAX_SESSION_BYTES]},
            {
                "$cond": [
                    {"$isArray": "$runs"},
                    {"$allElementsTrue": [{"$map": {"input": "$runs", "as": "r", "in": _plain_run("$$r")}}]},
                    False,
                ]
            },
        ]
    },
}
"""The sessions that are plain but for the ids they share (see the module docstring)."""


def _int(value) -> dict:
    """``value`` (an integer) as the Python rules store it: int when it fits 32 bits, long otherwise."""
    fits = {"$and": [{"$gte": [value, INT32[0]]}, {"$lte": [value, INT32[1]]}]}
    return {"$cond": [fits, {"$toInt": value}, {"$toLong": value}]}


def _entity(kind: str) -> dict:
    own = f"$runs.{kind}_id"
    of_session = {"$cond": [{"$eq": ["$session_type", kind]}, {"$ifNull": [f"${kind}_id", None]}, None]}
    return {"$cond": [_true_string(own), own, of_session]}


def _epoch(field: str, fallback) -> dict:
    own, of_session = f"$runs.{field}", f"${field}"
    return {"$cond": [_true_integer(own), own, {"$cond": [_true_integer(of_session), of_session, fallback]}]}


_CREATED = _epoch("created_at", 0)
_RUN_TYPE = {
    "$cond": [
        {"$in": ["$session_type", list(convert.SESSION_TYPES)]},
        "$session_type",
        {
            "$cond": [
                _true_string("$runs.agent_id"),
                "agent",
                {"$cond": [_true_string("$runs.team_id"), "team", "workflow"]},
            ]
        },
    ]
}
RUN_DOCUMENT = {
    "run_id": "$runs.run_id",
    "session_id": "$session_id",
    "run_type": _RUN_TYPE,
    "agent_id": _entity("agent"),
    "team_id": _entity("team"),
    "workflow_id": _entity("workflow"),
    "user_id": {"$ifNull": ["$user_id", None]},
    "parent_run_id": {"$ifNull": ["$runs.parent_run_id", None]},
    "status": {"$ifNull": ["$runs.status", None]},
    "run_index": {"$toInt": f"${_INDEX}"},
    "run_data": "$runs",
    "created_at": _int(_CREATED),
    "updated_at": _int(_epoch("updated_at", _CREATED)),
}
"""A plain run's document, field for field as ``convert.run_rows`` builds it (in its order)."""


# --- the contested ids -------------------------------------------------------------------------------


def _shared(sessions) -> set[str]:
    """Sessions holding a string run id that another element of any session holds too."""
    ids = {"$map": {"input": {"$filter": {"input": "$runs", "as": "r", "cond": _true_string("$$r.run_id")}},
                    "as": "r", "in": "$$r.run_id"}}  # fmt: skip
    pipeline = [
        {"$match": {"session_id": {"$type": "string"}, "runs": {"$type": "array"}}},
        {"$project": {"_id": 0, "session_id": 1, "ids": ids}},
        {"$unwind": "$ids"},
        {"$group": {"_id": "$ids", "n": {"$sum": 1}, "sessions": {"$addToSet": "$session_id"}}},
        {"$match": {"n": {"$gt": 1}}},
        {"$unwind": "$sessions"},
        {"$group": {"_id": "$sessions"}},
    ]
    return {doc["_id"] for doc in sessions.aggregate(pipeline, allowDiskUse=True)}


def _odd_ids(sessions) -> set[str]:
    """Sessions holding a string run id that the Python rules also give a run they key otherwise:
    ``str()`` of a run id that is not a string, or a run of a ``runs`` that is not an array."""
    odd_element = {"$and": [{"$eq": [{"$type": "$$r"}, "object"]},
                            {"$not": [_type_in("$$r.run_id", "string", "null", "missing")]}]}  # fmt: skip
    any_odd = {"$anyElementTrue": [{"$map": {"input": "$runs", "as": "r", "in": odd_element}}]}
    query = {
        "session_id": {"$type": "string"},
        "$expr": {"$cond": [{"$isArray": "$runs"}, any_odd, WITH_RUNS["$expr"]]},
    }
    ids = sorted({i for doc in sessions.find(query, {"_id": 0, "runs": 1}) for i in convert.run_ids_of(doc["runs"])})
    found: set[str] = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):
        where = {"session_id": {"$type": "string"}, "runs.run_id": {"$in": ids[start : start + LOOKUP_CHUNK]}}
        found.update(doc["session_id"] for doc in sessions.find(where, {"_id": 0, "session_id": 1}))
    return found


def _stored_elsewhere(sessions, runs) -> set[str]:
    """Candidate sessions holding a run id that a stored run of another place holds."""
    if runs.find_one({}, {"_id": 1}) is None:
        return set()
    other_place = {"$anyElementTrue": [{"$map": {"input": "$held", "as": "h", "in": {
        "$or": [{"$ne": ["$$h.session_id", "$session_id"]}, {"$ne": ["$$h.run_index", f"${_INDEX}"]}]}}}]}  # fmt: skip
    pipeline = [
        {"$match": CANDIDATE},
        {"$project": {"session_id": 1, "runs.run_id": 1}},
        {"$unwind": {"path": "$runs", "includeArrayIndex": _INDEX}},
        {
            "$lookup": {
                "from": runs.name,
                "localField": "runs.run_id",
                "foreignField": "run_id",
                "as": "held",
                "pipeline": [{"$project": {"_id": 0, "session_id": 1, "run_index": 1}}],
            }
        },  # fmt: skip
        {"$match": {"held": {"$ne": []}}},
        {"$match": {"$expr": other_place}},
        {"$group": {"_id": "$session_id"}},
    ]
    return {doc["_id"] for doc in sessions.aggregate(pipeline, allowDiskUse=True)}


def plain_query(sessions, runs) -> dict | None:
    """The query of the plain sessions (see the module docstring), or None when too many sessions
    share ids for the server-side copy to be worth it."""
    contested = _shared(sessions) | _odd_ids(sessions) | _stored_elsewhere(sessions, runs)
    if len(contested) > MAX_CONTESTED:
        return None
    return {"$and": [CANDIDATE, {"session_id": {"$nin": sorted(contested)}}]}


# --- the copy ----------------------------------------------------------------------------------------


def copy(sessions, runs, plain: dict, tick: Callable[[int], None]) -> tuple[int, int]:
    """Copy the runs of the sessions matching ``plain`` into ``runs``, :data:`CHUNK` sessions at a time
    (their ids read first, by keyset on ``session_id``; ``tick(sessions done)`` before each chunk);
    returns (sessions, runs) copied.

    Each chunk is one ``$merge`` that inserts (``whenMatched: "fail"``: plain inserts, several times
    faster than the upserts of the other modes). When the runs collection held documents before (an
    interrupted run's), the runs stored already are left out of the chunk first: the plain query
    made sure they are these very runs, at their places. A chunk meeting a run written meanwhile (a
    killed runner's aggregation still finishing in the server) is done again that way."""
    before = runs.count_documents({})
    stored = before > 0
    done = 0
    last = None
    while True:
        tick(done)
        keyset = {"$gt": last} if last is not None else {"$type": "string"}
        chunk = sessions.find({"$and": [plain, {"session_id": keyset}]}, {"_id": 0, "session_id": 1})
        ids = [doc["session_id"] for doc in chunk.sort("session_id", 1).limit(CHUNK)]
        if not ids:
            break
        stored = _merge(sessions, runs, ids, stored)
        done += len(ids)
        last = ids[-1]
    return done, runs.count_documents({}) - before


def _merge(sessions, runs, ids: list[str], stored: bool) -> bool:
    """Insert the runs of the (plain) sessions ``ids``, leaving out those stored already when
    ``stored``; returns ``stored`` for the next chunk (True once a stored run was met)."""
    from pymongo.errors import OperationFailure

    pipeline = [{"$match": {"session_id": {"$in": ids}}}, {"$unwind": {"path": "$runs", "includeArrayIndex": _INDEX}}]
    if stored:
        held = {"from": runs.name, "localField": "runs.run_id", "foreignField": "run_id", "as": "agno_migrate_held",
                "pipeline": [{"$project": {"_id": 1}}]}  # fmt: skip
        pipeline += [{"$lookup": held}, {"$match": {"agno_migrate_held": []}}]
    pipeline += [
        {"$replaceWith": RUN_DOCUMENT},
        {"$merge": {"into": runs.name, "on": "run_id", "whenMatched": "fail", "whenNotMatched": "insert"}},
    ]
    try:
        sessions.aggregate(pipeline, allowDiskUse=True)
    except OperationFailure as exc:
        if exc.code != DUPLICATE_KEY or stored:
            raise
        return _merge(sessions, runs, ids, True)
    return stored
