"""Run Agno 3.1.10's own ``MigrationManager(MongoDb(...)).up()`` on a MongoDB database.

    python agno_mongo_migrate.py MONGO_URL DB_NAME [--rekey]   # with the reference environment's python

``--rekey``: run Agno's ``rekey_user_entity_learnings(db, dry_run=False)`` itself instead, with the
learnings collection opened first. (``MigrationManager`` in a fresh process re-keys nothing on
MongoDB: ``MongoDb.list_learnings`` answers ``[]`` for a collection this process has not opened with
``create_collection_if_not_found=True``, so the 3.0.0 re-key scans 0 rows and stamps the table.)
"""

from __future__ import annotations

import asyncio
import sys

from agno.db.migrations.manager import MigrationManager
from agno.db.mongo import MongoDb


def main() -> int:
    url, name = sys.argv[1], sys.argv[2]
    db = MongoDb(db_url=url, db_name=name)
    if "--rekey" in sys.argv:
        from agno.learn.migrations import rekey_user_entity_learnings

        db._get_collection(table_type="learnings", create_collection_if_not_found=True)
        rekey_user_entity_learnings(db, dry_run=False)
        return 0
    asyncio.run(MigrationManager(db).up())
    return 0


if __name__ == "__main__":
    sys.exit(main())
