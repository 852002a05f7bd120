"""3.0.0 — the other table types gain an owner (``user_id``); metrics are kept per user.

evals, knowledge, components, schedule runs: ``user_id`` (nullable) and its index; knowledge also
``(user_id, linked_to)`` where Agno declares it (not on MySQL).

metrics: ``user_id`` NOT NULL, ``''`` for the existing rows (Agno's "no user"), indexed, and the unique
key ``(date, aggregation_period)`` replaced by ``<table>_uq_metrics_user_date_period (user_id, date,
aggregation_period)``. Unlike Agno's migration, no row is deleted: Agno drops the newest metrics day
when it is unfinished so that it is recalculated per user; here that day is kept as it was (zero
loss), and the next calculation adds the per-user rows beside it.

schedules (SQLite, PostgreSQL): ``user_id`` and the provenance columns (``managed_by``, ``target_type``,
``target_id``, ``created_by_run_id``, ``created_by_session_id``, ``updated_by_run_id``,
``updated_by_session_id``, ``disabled_reason``), their indexes, and schedule names unique per user
(``<table>_uq_user_name``) and among unowned schedules (``<table>_uq_unowned_name``). Every existing
schedule is unowned, so two with the same name make the second key impossible: refused before any
other table changes, naming them (Agno's migration fails on them half-way).

learnings: the entity memories of namespace ``user`` re-keyed per user (content only, no DDL).
"""

import sqlalchemy as sa

PROVENANCE = (
    "managed_by",
    "target_type",
    "target_id",
    "created_by_run_id",
    "created_by_session_id",
    "updated_by_run_id",
    "updated_by_session_id",
    "disabled_reason",
)


def _owner(t):
    t.add_column("user_id", t.varchar())
    t.create_index(["user_id"])


def evals(t):
    _owner(t)


def components(t):
    _owner(t)


def schedule_runs(t):
    _owner(t)


def knowledge(t):
    _owner(t)
    if t.head_has_index(["user_id", "linked_to"]):
        t.create_index(["user_id", "linked_to"])


def metrics(t):
    t.add_column("user_id", t.varchar(), nullable=False, fill=sa.literal(""))
    t.create_index(["user_id"])
    t.replace_unique(
        ["date", "aggregation_period"], ["user_id", "date", "aggregation_period"], "uq_metrics_user_date_period"
    )


def unique_schedule_names(t):
    """Checked for every table before any table changes: no two unowned schedules share a name."""
    unowned = "user_id IS NULL" if "user_id" in t.columns() else "1 = 1"  # before 3.0 no schedule has one
    t.refuse_duplicates(["name"], where=unowned, what="schedules with the same name and no owner")


def schedules(t):
    _owner(t)
    for name in PROVENANCE:
        t.add_column(name, t.varchar())
    for cols in (["managed_by"], ["target_id"], ["user_id", "enabled", "next_run_at"]):
        t.create_index(cols)
    t.create_index(["user_id", "name"], unique=True, where="user_id IS NOT NULL", name="uq_user_name")
    t.create_index(["name"], unique=True, where="user_id IS NULL", name="uq_unowned_name")


def learnings(t):
    t.rekey_learnings()


CHECKS = {"schedules": unique_schedule_names}

STEPS = {
    "evals": evals,
    "components": components,
    "schedule_runs": schedule_runs,
    "knowledge": knowledge,
    "metrics": metrics,
    "schedules": schedules,
    "learnings": learnings,
}
