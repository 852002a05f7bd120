"""Run Agno 3.1.10's own ``rekey_user_entity_learnings`` (dry_run=False) on learning rows given as
JSON on stdin (the result goes to the file named as argument: Agno logs to stdout), over an in-memory table with the methods the re-key calls (as ``MongoDb`` does them:
an upsert sets Agno's fields, ``created_at`` only on insert); print the rows after it and its report.

    python agno_learnings.py OUT.json < rows.json     # with the reference environment's python
"""

from __future__ import annotations

import json
import sys

from agno.learn.migrations import rekey_user_entity_learnings

NOW = 2_000_000_000  # the "migration time" Agno stamps on the rows it writes


class Table:
    def __init__(self, rows):
        self.rows = {r["learning_id"]: dict(r) for r in rows}

    def list_learnings(self, learning_type=None, namespace=None, limit=100, page=1, sort_by=None, sort_order=None):
        found = [
            dict(r)
            for r in self.rows.values()
            if (learning_type is None or r.get("learning_type") == learning_type)
            and (namespace is None or r.get("namespace") == namespace)
        ]
        found.sort(key=lambda r: r.get(sort_by or "updated_at"), reverse=sort_order != "asc")
        return found[(page - 1) * limit : page * limit], len(found)

    def get_learning_by_id(self, id):
        row = self.rows.get(id)
        return dict(row) if row is not None else None

    def upsert_learning(self, id, learning_type, content, user_id=None, agent_id=None, team_id=None,
                        session_id=None, namespace=None, entity_id=None, entity_type=None, metadata=None):  # fmt: skip
        row = self.rows.setdefault(id, {"created_at": NOW})
        row.update(learning_id=id, learning_type=learning_type, namespace=namespace, user_id=user_id,
                   agent_id=agent_id, team_id=team_id, session_id=session_id, entity_id=entity_id,
                   entity_type=entity_type, content=content, metadata=metadata, updated_at=NOW)  # fmt: skip

    def delete_learning(self, id):
        return self.rows.pop(id, None) is not None


def main() -> int:
    table = Table(json.load(sys.stdin))
    report = rekey_user_entity_learnings(table, dry_run=False)
    with open(sys.argv[1], "w") as out:
        json.dump({"rows": list(table.rows.values()), "report": report}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
