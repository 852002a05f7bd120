"""2.0.0 — the unified sessions collection with Agno 2.x's indexes, as Agno 2.x's MongoDb creates them.

The base of the lineage: nothing comes before it, so it cannot be undone.
"""

version = "2.0.0"

SESSION_INDEXES = (
    (("session_id",), True),
    *[
        ((name,), False)
        for name in ("user_id", "session_type", "agent_id", "team_id", "workflow_id", "created_at", "updated_at")
    ],
)


def upgrade(step):
    step.ensure_collection(step.target.session_table, SESSION_INDEXES)


def downgrade(step):
    raise NotImplementedError("2.0.0 is the base of the lineage")
