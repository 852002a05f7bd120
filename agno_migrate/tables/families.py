"""The Agno table types beyond sessions and runs: what recognises each, and its layouts per backend.

A family's layouts (columns, keys, indexes per Agno schema point and dialect) are generated data
(:mod:`agno_migrate.tables.layouts`, from ``docs/agno-tables/layouts.json``); what is written here by
hand is what recognises a table whatever its name: a **fingerprint**, a few column names (MongoDB:
document fields or index keys) that every layout of the family has and that no other Agno table — of
any family, the session and runs tables, nor the Agno 1.x tables — has all of (a test checks both).

Points are Agno's own migration numbering (``agno_schema_versions``): 2.0.0, 2.3.0, 2.5.0, 2.5.6
(approvals' ``run_status``), 3.0.0. A table created by a release between two migrations is at the
older one (tables first created by 2.6/2.9 are at 2.5.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from agno_migrate.errors import UsageError
from agno_migrate.tables.layouts import DEFAULT_NAMES, LAYOUTS

POINTS: tuple[str, ...] = ("2.0.0", "2.3.0", "2.5.0", "2.5.6", "3.0.0")
"""Agno's schema points at which a non-session table's layout can change, oldest first."""


@dataclass(frozen=True)
class Family:
    name: str
    default_name: str
    fingerprint: frozenset[str]
    ours: bool = True
    """False: Agno's own bookkeeping (``agno_schema_versions``), recognised so that it is never taken
    for anything else, never migrated as a table of the application."""
    dropped_at_head: bool = False
    """No longer declared by the newest Agno (culture in 3.x): kept and reported, never changed."""

    def layouts(self, backend: str) -> tuple[dict, ...]:
        """The family's layouts on a dialect (by :attr:`Dialect.name`), oldest first; () where the
        backend never has this table."""
        return LAYOUTS[self.name].get(backend, ())

    def head(self, backend: str) -> dict | None:
        """The newest layout on ``backend`` (what a table at head has)."""
        layouts = self.layouts(backend)
        return layouts[-1] if layouts else None


def _f(name: str, *fingerprint: str, **kw) -> Family:
    return Family(name, DEFAULT_NAMES[name], frozenset(fingerprint), **kw)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        _f("memories", "memory_id", "topics"),
        _f("evals", "run_id", "eval_type", "eval_input"),
        _f("metrics", "date", "aggregation_period"),
        _f("knowledge", "linked_to", "access_count", "external_id"),
        _f("culture", "name", "summary", "content", dropped_at_head=True),
        _f("traces", "trace_id", "status", "start_time"),
        _f("spans", "span_id", "trace_id", "span_kind"),
        _f("learnings", "learning_id", "learning_type"),
        _f("approvals", "pause_type", "source_type"),
        _f("components", "component_id", "component_type", "current_version"),
        _f("component_configs", "component_id", "version", "stage", "config"),
        _f("component_links", "parent_component_id", "child_component_id", "link_kind"),
        _f("schedules", "cron_expr", "endpoint", "method"),
        _f("schedule_runs", "schedule_id", "attempt", "triggered_at"),
        _f("auth_tokens", "provider", "service", "token_data"),
        _f("service_accounts", "token_hash", "token_prefix", "scopes"),
        _f("mcp_oauth_clients", "client_id", "client_metadata"),
        _f("mcp_oauth_transactions", "txn_id", "params"),
        _f("mcp_oauth_codes", "code_hash", "payload"),
        _f("mcp_oauth_refresh_tokens", "token_hash", "family_id"),
        _f("mcp_oauth_keys", "kid", "secret"),
        _f("products", "name", "purpose"),
        _f("sources", "product_id", "reference", "credential_ref"),
        _f("projects", "product_id", "outcome", "target_date"),
        _f("tasks", "product_id", "executor_type", "dedupe_key"),
        _f("tool_results", "tool_call_id", "args_hash"),
        _f("compactions", "compaction_id", "first_kept_message_id"),
        _f("transcripts", "framework", "project_key", "entry_uuid"),
        _f("authz_policy", "role", "resource", "action", "effect"),
        _f("authz_grouping", "subject", "role"),
        _f("authz_roles", "slug", "is_default"),
        _f("authz_users", "email", "disabled", "user_metadata"),
        _f("authz_audit", "event_id", "actor", "before", "after"),
        _f("authz_decisions", "event_id", "token_ref", "required"),
        _f("sandbox_bindings", "namespace", "epoch", "record"),
        _f("jobs", "job_type", "idempotency_key", "max_attempts"),
        _f("versions", "table_name", "version", ours=False),
    )
}

OTHER_AGNO_TABLES: dict[str, frozenset[str]] = {
    "sessions": frozenset({"session_id", "session_type"}),
    "runs": frozenset({"run_id", "run_type", "run_data"}),
}
"""Fingerprints of the tables the session flow owns: never one of the families above."""


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown Agno table type {name!r} (known: {', '.join(FAMILIES)})") from None


def check_names(names: dict[str, str]) -> None:
    """UsageError naming the known table types if ``names`` (family → table name, as
    ``Target.tables``) has a family that is none of them (Agno's own version table has its option)."""
    unknown = [fam for fam in names if fam not in FAMILIES or not FAMILIES[fam].ours]
    if unknown:
        known = ", ".join(name for name, fam in FAMILIES.items() if fam.ours)
        raise UsageError(f"unknown Agno table type {unknown[0]!r} (known: {known})")


def matches(fingerprint: frozenset[str], names: set[str] | frozenset[str]) -> bool:
    """Whether a table with these column (or field) names carries the fingerprint."""
    return fingerprint <= names
