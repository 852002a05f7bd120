"""2.5.0 — a primary key on session_id (PostgreSQL, MySQL).

On MongoDB the unique ``session_id_1`` index has existed since 2.0.0 (Agno's v2_5_0 is a no-op
there): this step only makes sure it is present. Reversible (nothing to undo).
"""

version = "2.5.0"


def upgrade(step):
    step.ensure_collection(step.target.session_table, ((("session_id",), True),))


def downgrade(step):
    pass
