"""3.0.1 — id columns compare exactly: a binary collation on MySQL/MariaDB.

Nothing to do on MongoDB, either way: it compares strings bytewise already (ids differing only by
case or by emoji are distinct keys, as on SQLite and PostgreSQL).
"""

version = "3.0.1"


def upgrade(step):
    """Nothing to do: MongoDB compares strings bytewise already."""


def downgrade(step):
    """Nothing to undo: MongoDB compares strings bytewise already."""
