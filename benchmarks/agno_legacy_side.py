"""Agno 3.1.10's own v1→v2 migration on an Agno 1.x database (run with the Agno environment's python).

python agno_legacy_side.py (sqlite:///FILE | postgresql+psycopg://...)
"""

import sys

from agno.db.migrations.v1_to_v2 import migrate


def main(url: str) -> None:
    if url.startswith("sqlite"):
        from agno.db.sqlite import SqliteDb

        db, schema = SqliteDb(db_file=url.split("///", 1)[1]), ""
    else:
        from agno.db.postgres import PostgresDb

        db, schema = PostgresDb(db_url=url, db_schema="ai"), "ai"
    migrate(
        db,
        schema,
        agent_sessions_table_name="agent_sessions",
        team_sessions_table_name="team_sessions",
        workflow_sessions_table_name="workflow_sessions",
        batch_size=5000,
    )


if __name__ == "__main__":
    main(sys.argv[1])
