"""2.5.6 — approvals (SQLite, PostgreSQL) gain ``run_status`` and its index.

Agno's own migration names the index ``ix_<table>_run_status`` and types the column TEXT; a table
created by 2.5.6 or later has ``idx_<table>_run_status`` and VARCHAR, which this step writes. Both
are accepted as head.
"""

import sqlalchemy as sa


def approvals(t):
    t.add_column("run_status", sa.String())
    t.create_index(["run_status"])


STEPS = {"approvals": approvals}
