"""Agno 3.1.10's own whole-database upgrade, ``MigrationManager(db).up()`` (run with the Agno environment's python).

python agno_whole_side.py (sqlite:///FILE | postgresql+psycopg://... | mongodb://HOST/DB)

Prints one JSON line: the seconds ``up()`` itself took (the process's start-up and imports excluded; the
benchmark times the whole process as well).
"""

import asyncio
import json
import logging
import sys
import time

from agno.db.migrations.manager import MigrationManager


def main(url: str) -> None:
    if url.startswith("mongodb"):
        from urllib.parse import urlsplit, urlunsplit

        from agno.db.mongo import MongoDb

        parts = urlsplit(url)
        db = MongoDb(db_url=urlunsplit(parts._replace(path="/")), db_name=parts.path.strip("/"))
    elif url.startswith("sqlite"):
        from agno.db.sqlite import SqliteDb

        db = SqliteDb(db_file=url.split("///", 1)[1])
    else:
        from agno.db.postgres import PostgresDb

        db = PostgresDb(db_url=url, db_schema="ai")
    logging.getLogger("agno").setLevel(logging.WARNING)  # as quiet as our side's -q
    start = time.perf_counter()
    asyncio.run(MigrationManager(db).up())
    print(json.dumps({"up_seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main(sys.argv[1])
