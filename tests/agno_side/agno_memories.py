"""Runs INSIDE the real Agno 3.1.10 venv (never imported by the test-suite): lists every user memory
with Agno's own ``get_user_memories()`` and writes them as plain JSON.

    python agno_memories.py REQUEST.json RESULT.json

REQUEST: {"db": <as agno_sessions.py>}; RESULT: {"memories": [UserMemory.to_dict() ...], "count": N}
(``get_user_memories()`` without a filter, and ``get_user_memory(id)`` of each, which must agree).
"""

from __future__ import annotations

import json
import sys

from agno_sessions import open_db, plain


def main(request_path: str, result_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    db = open_db(request["db"])
    listed = db.get_user_memories()
    memories = [plain(m.to_dict()) for m in listed]
    for m in listed:
        again = db.get_user_memory(m.memory_id)
        assert again is not None and again.memory == m.memory, m.memory_id
    # the raw fields too (to_dict leaves out None values and formats times)
    raw = [
        {
            "memory_id": m.memory_id, "memory": m.memory, "topics": m.topics, "input": m.input,
            "user_id": m.user_id, "agent_id": m.agent_id, "team_id": m.team_id, "feedback": m.feedback,
            "created_at": m.created_at, "updated_at": m.updated_at,
        }
        for m in listed
    ]  # fmt: skip
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump({"memories": memories, "raw": plain(raw), "count": len(listed)}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
