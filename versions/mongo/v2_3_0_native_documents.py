"""2.3.0 — JSON fields as native documents (MongoDB's counterpart of PostgreSQL's JSON → JSONB).

Agno 2.0.0–2.1.0 stored the JSON fields of a session (``session_data``, ``runs``, ``metadata``, …)
as JSON *strings*; 2.1.1 and later store native sub-documents and read nothing else, and no Agno
migration ever converts the old ones. This step decodes them, batch by batch (idempotent: a decoded
document no longer matches). A string that is not JSON, or that BSON cannot hold once decoded (an
integer beyond 64 bits), is reported and left as it is. A lone UTF-16 surrogate escape (``\\ud83d``
without its pair; BSON text is UTF-8) becomes U+FFFD, counted and named per session, as in
PostgreSQL's JSON → JSONB step (``agno_migrate.storable``). Agno's own v2_3_0 does nothing on MongoDB.

Undoing it changes nothing: native documents are what every 2.x release from 2.1.1 on writes.
"""

import json
import re

from agno_migrate.storable import may_hold_lone_surrogate, replace_lone_surrogates

version = "2.3.0"

JSON_FIELDS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "runs", "summary")
STRING_ENCODED = {"$or": [{name: {"$type": "string"}} for name in JSON_FIELDS]}
INT64 = (-(2**63), 2**63 - 1)
LONG_NUMBER = re.compile(r"[0-9]{19}")  # an integer beyond 64 bits has 19 digits or more


def upgrade(step):
    from pymongo import UpdateOne

    sessions = step.sessions
    total = sessions.count_documents(STRING_ENCODED)
    done = decoded = 0
    projection = {name: 1 for name in ("session_id", *JSON_FIELDS)}
    for batch in step.batches(sessions, STRING_ENCODED, "2.3.0", projection):
        updates = []
        for doc in batch:
            values = {}
            for name in JSON_FIELDS:
                if isinstance(doc.get(name), str):
                    value, problem = _decoded(doc[name])
                    if problem:
                        step.report.note_unparseable(doc.get("session_id"), f"{name}: {problem}")
                        continue
                    replaced = 0
                    if may_hold_lone_surrogate(doc[name]):  # else no walk: nothing to replace
                        value, replaced = replace_lone_surrogates(value)
                    if replaced:
                        step.report.note_surrogates_replaced(doc.get("session_id"), name, replaced)
                    values[name] = value
            if values:
                updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": values}))
        if updates:
            sessions.bulk_write(updates, ordered=False)
            decoded += len(updates)
        done += len(batch)
        step.done_batch("2.3.0", batch)
        step.tick(done, total)
    step.report.add_documents_decoded(decoded)


def _decoded(text):
    """(the decoded value, None) or (None, why it stays a string)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if LONG_NUMBER.search(text) and _too_big(value):
        return None, "holds an integer beyond 64 bits, which MongoDB cannot store natively"
    return value, None


def _too_big(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not INT64[0] <= value <= INT64[1]
    if isinstance(value, dict):
        return any(_too_big(v) for v in value.values())
    if isinstance(value, list):
        return any(_too_big(v) for v in value)
    return False


def downgrade(step):
    pass
