"""3.0.0 — runs move out of the sessions' ``runs`` arrays into a runs collection, one document per run.

The runs collection with Agno 3.1's indexes (``run_id`` unique, one on each id, status and time
field, and ``(session_id, run_index)``: all but ``run_id``'s built once after the copy), and every
element of every session's ``runs`` array copied into it (``convert.run_rows``, ids by
``convert.rekey_runs``: the same rules as the SQL revision): the plain sessions' runs inside the server
(``migrate.mongo.plain_runs``: ``$unwind`` + ``$merge``, the same documents), the other sessions' by the
Python rules, batch by batch by keyset on ``session_id`` with a checkpoint per batch. Unlike Agno's own v3_0_0: a
run without ``run_id`` gets a deterministic id instead of being dropped; a ``run_id`` that another
session already holds is stored under a derived id and reported; runs already copied (same
session, same position) are skipped, so an interrupted copy completes on the next run. The legacy
``runs`` field is kept on the session documents (Agno's ``cleanup_legacy_runs_field()`` drops it).
"""

from agno_migrate import convert, jsoncodec
from agno_migrate.migrate.mongo import plain_runs

version = "3.0.0"
SERVER_SIDE = True  # tests set False to compare with the Python rules alone on the same data

RUN_INDEXES = (
    (("run_id",), True),
    *[
        ((name,), False)
        for name in (
            "session_id",
            "run_type",
            "agent_id",
            "team_id",
            "workflow_id",
            "user_id",
            "parent_run_id",
            "status",
            "created_at",
            "updated_at",
        )
    ],
    (("session_id", "run_index"), False),
)
SESSION_FIELDS = (
    "session_id",
    "session_type",
    "agent_id",
    "team_id",
    "workflow_id",
    "user_id",
    "created_at",
    "updated_at",
)
WITH_RUNS = plain_runs.WITH_RUNS


def upgrade(step):
    # the unique run_id index first (the copy looks ids up by it); the others once, after the copy
    step.ensure_collection(step.target.runs_table, RUN_INDEXES[:1])
    sessions = step.sessions
    total = sessions.count_documents(WITH_RUNS)
    done = copied = 0
    pending = WITH_RUNS
    plain = plain_runs.plain_query(sessions, step.runs) if SERVER_SIDE else None
    if plain is not None:  # the plain sessions' runs by $merge inside the server; the others below
        done, copied = plain_runs.copy(sessions, step.runs, plain, lambda n: step.tick(n, total))
        pending = {**WITH_RUNS, "$nor": [plain]}
    projection = {name: 1 for name in (*SESSION_FIELDS, "runs")}
    for batch in step.batches(sessions, pending, "3.0.0", projection):
        rows = []
        for session in batch:
            blob = session.get("runs")
            if isinstance(blob, str):
                try:
                    blob = jsoncodec.decode_json(blob)
                except ValueError as exc:
                    step.report.note_unparseable(session.get("session_id"), f"runs is not JSON: {exc}")
                    continue
            if blob is None:
                continue
            if not isinstance(blob, list):
                step.report.note_unparseable(session.get("session_id"), f"runs is a {type(blob).__name__}, not a list")
                continue
            if not isinstance(session.get("session_id"), str):
                step.report.note_unparseable(repr(session.get("session_id")), "session_id is not a string")
                continue
            built, skipped = convert.run_rows({k: session.get(k) for k in SESSION_FIELDS}, blob)
            for index, reason in skipped:
                step.report.note_not_a_run(session["session_id"], index, reason)
            rows.extend(built)
        copied += step.insert_runs(rows)
        done += len(batch)
        step.done_batch("3.0.0", batch)
        step.tick(done, total)
    step.ensure_collection(step.target.runs_table, RUN_INDEXES)
    step.report.add_runs_copied(copied)


def downgrade(step):
    raise NotImplementedError("3.0.0 cannot be undone: runs written since the upgrade live only in the runs collection")
