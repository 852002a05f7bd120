"""The ``agno-migrate`` command: a thin layer that parses, calls the library, prints, exits.

Every expected failure ends in one line on stderr (or one JSON object with ``--json``) and the
documented exit code of its error class (errors.py, README "Exit codes"); never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import click

from agno_migrate import __version__, errors
from agno_migrate.credentials import redact
from agno_migrate.migrate.model import DEFAULT_DDL_LOCK_TIMEOUT, DEFAULT_DDL_RETRIES, Online
from agno_migrate.target import DEFAULT_URL, Target


@dataclass
class Options:
    db_url: str | None
    db_schema: str | None
    session_table: str | None
    runs_table: str | None
    lock_timeout: float | None
    lock_lease: float | None
    json: bool
    verbosity: int
    tables: dict[str, str] | None = None

    def target(self) -> Target:
        target = Target.from_url(
            self.db_url,
            schema=self.db_schema,
            session_table=self.session_table,
            runs_table=self.runs_table,
            lock_timeout=self.lock_timeout,
            lock_lease=self.lock_lease,
            tables=self.tables,
        )
        if target.url_defaulted and self.verbosity >= 0:
            click.echo(f"agno-migrate: no --db-url or AGNO_DB_URL given, using {DEFAULT_URL}", err=True)
        return target

    def say(self, text: str = "") -> None:
        if not self.json and self.verbosity >= 0:
            click.echo(redact(text))

    def detail(self, text: str) -> None:
        if not self.json and self.verbosity >= 1:
            click.echo(redact(text))

    def listed(self, items: list) -> list:
        """The items to list one per line: all of them with -v, else the first five."""
        return items if self.verbosity >= 1 else items[:5]

    def emit(self, payload: dict) -> None:
        if self.json:
            click.echo(redact(json.dumps(payload, sort_keys=True, default=str)))


_GLOBALS: list[tuple[tuple[str, ...], dict]] = [
    (("--db-url",), {"envvar": "AGNO_DB_URL", "help": f"Database URL (env AGNO_DB_URL; default {DEFAULT_URL})."}),
    (
        ("--db-schema",),
        {
            "help": "PostgreSQL schema (default ai), MySQL database or MongoDB database "
            "(default: the URL's; agno on MongoDB)."
        },
    ),
    (("--session-table",), {"help": "Session table (MongoDB: collection) name (default agno_sessions)."}),
    (
        ("--runs-table",),
        {
            "help": (
                "Runs table (MongoDB: collection) name "
                "(default agno_runs; <session-table>_runs for another session table)."
            )
        },
    ),
    (
        ("--table", "tables"),
        {
            "multiple": True,
            "metavar": "FAMILY=NAME",
            "callback": lambda ctx, param, values: _parse_tables(values),
            "help": (
                "Name of another Agno table, e.g. memories=my_memories (repeatable; families: memories, evals, "
                "metrics, knowledge, traces, spans, ...; default: Agno's default names, else found by columns)."
            ),
        },
    ),
    (
        ("--lock-timeout",),
        {
            "type": float,
            "callback": lambda ctx, param, value: _seconds(param, value),
            "help": "Seconds to wait for another migrating process (default 60).",
        },
    ),
    (
        ("--lock-lease",),
        {
            "type": float,
            "callback": lambda ctx, param, value: _seconds(param, value, positive=True),
            "help": (
                "MongoDB: seconds a migration lock stays valid without renewal; "
                "a dead migrator's lock is taken over after it (default 30)."
            ),
        },
    ),
    (("--json", "as_json"), {"is_flag": True, "help": "Machine-readable output: one JSON object."}),
    (("-v", "--verbose"), {"count": True, "help": "More detail."}),
    (("-q", "--quiet"), {"is_flag": True, "help": "Only errors."}),
]
"""The global options. They are taken before the command (``agno-migrate --json current``) and
after it, as people type them (``agno-migrate current --json``): there they override the group's."""

_FIELDS = {"db_url": "db_url", "db_schema": "db_schema", "session_table": "session_table",
           "runs_table": "runs_table", "tables": "tables", "lock_timeout": "lock_timeout",
           "lock_lease": "lock_lease", "as_json": "json"}  # fmt: skip


def _global_options(on_command: bool):
    """Decorate the group (``on_command`` False: its parameters make :class:`Options`) or a command
    (the same options, given after the command's name, update the group's :class:`Options`)."""

    def decorate(func):
        for decls, spec in reversed(_GLOBALS):
            spec = dict(spec)
            if on_command:
                spec.pop("envvar", None)  # the environment is the group's: it must not override an option
                spec.update(expose_value=False, callback=_after_command(spec.get("callback")))
            func = click.option(*decls, **spec)(func)
        return func

    return decorate


def _after_command(convert):
    """The callback of a global option given after the command: update the group's Options."""
    from click.core import ParameterSource

    def callback(ctx, param, value):
        if convert is not None:
            value = convert(ctx, param, value)
        if ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            return value
        opts = ctx.find_object(Options)
        if param.name == "verbose":
            opts.verbosity = max(opts.verbosity, 0) + value
        elif param.name == "quiet":
            opts.verbosity = -1 if value else opts.verbosity
        elif param.name == "tables" and opts.tables:
            opts.tables = {**opts.tables, **(value or {})}
        else:
            setattr(opts, _FIELDS[param.name], value)
        return value

    return callback


def pass_options(func):
    """Pass the command the group's :class:`Options` (with the global options given after it)."""
    return _global_options(on_command=True)(click.make_pass_decorator(Options)(func))


def _seconds(param, value: float | None, positive: bool = False) -> float | None:
    """A number of seconds: finite, at least 0 (above 0 if ``positive``); else a usage error."""
    from agno_migrate.target import seconds_problem

    problem = None if value is None else seconds_problem(value, positive)
    if problem is not None:
        raise click.BadParameter(problem, param=param)
    return value


def _parse_tables(values: tuple[str, ...]) -> dict[str, str] | None:
    """``--table FAMILY=NAME`` (repeatable) → family → name; UsageError (exit 2, one line) for a
    value without ``=``, a family given twice or an unknown one (the names are checked by Target)."""
    if not values:
        return None
    from agno_migrate.tables import check_names

    tables: dict[str, str] = {}
    for value in values:
        fam, sep, name = value.partition("=")
        fam, name = fam.strip(), name.strip()
        if not sep or not fam or not name:
            raise errors.UsageError(f"--table expects FAMILY=NAME (e.g. memories=my_memories), got {value!r}")
        if fam in tables and tables[fam] != name:
            raise errors.UsageError(f"--table {fam} given twice ({tables[fam]}, {name})")
        tables[fam] = name
    check_names(tables)
    return tables


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_global_options(on_command=False)
@click.version_option(__version__, prog_name="agno-migrate")
@click.pass_context
def cli(ctx, db_url, db_schema, session_table, runs_table, tables, lock_timeout, lock_lease, as_json, verbose, quiet):
    """Keep an Agno session database on the current schema, with nothing lost.

    Exit codes: 0 ok, 1 behind head, 2 usage error, 3 database ahead of this tool, 4 schema drift,
    5 cannot connect, 6 lock timeout, 8 refused (nothing changed),
    9 completed but some rows could not be converted, 10 database error.
    """
    ctx.obj = Options(
        db_url,
        db_schema,
        session_table,
        runs_table,
        lock_timeout,
        lock_lease,
        as_json,
        -1 if quiet else verbose,
        tables,
    )


LEGACY_HELP = (
    "An Agno 1.x session table to import, NAME[:agent|team|workflow|workflow_v2] "
    "(repeatable; default: found by columns)."
)


@cli.command()
@click.option("--to", "to", default="head", show_default=True, help="Version to upgrade to.")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL instead of running it (changes nothing).")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--legacy-table", "legacy_tables", multiple=True, help=LEGACY_HELP)
@click.option(
    "--report",
    "report_path",
    default="agno-migrate-report.jsonl",
    show_default=True,
    help="Where rows that could not be imported or collided are listed (written only if any).",
)
@click.option(
    "--accept-unreadable",
    "accept_unreadable",
    multiple=True,
    metavar="TABLE",
    help=(
        "Accept the loss of the Agno 1.x rows of TABLE that still cannot be read after this run's "
        "pass (repeatable); without it, such a table stays pending: check fails, upgrade reads it again."
    ),
)
@click.option(
    "--online",
    is_flag=True,
    help=(
        "PostgreSQL: let the application go on writing during the upgrade (short DDL locks, retried; "
        "indexes built concurrently; data changed in short transactions). See docs/online.md."
    ),
)
@click.option(
    "--ddl-lock-timeout",
    type=float,
    default=DEFAULT_DDL_LOCK_TIMEOUT,
    show_default=True,
    callback=lambda ctx, param, value: _seconds(param, value, positive=True),
    help="With --online: seconds each DDL statement waits for its table's lock before it is retried.",
)
@click.option(
    "--ddl-retries",
    type=click.IntRange(min=0),
    default=DEFAULT_DDL_RETRIES,
    show_default=True,
    help="With --online: how often a DDL statement is retried before the upgrade gives up (exit 6).",
)
@pass_options
def upgrade(
    opts: Options,
    to,
    as_sql,
    dry_run,
    legacy_tables,
    report_path,
    accept_unreadable,
    online,
    ddl_lock_timeout,
    ddl_retries,
):
    """Upgrade the database to head (or --to), importing Agno 1.x tables at head. Safe to run from
    several processes at once; an interrupted run is finished by the next one."""
    from agno_migrate.migrate import runner

    target = opts.target()
    legacy_tables = list(legacy_tables) or None
    if dry_run:
        _print_plan(opts, runner.plan(target, to, legacy_tables=legacy_tables))
        return
    with _Progress(opts) as progress:
        outcome = runner.upgrade(
            target,
            to=to,
            sql=as_sql,
            progress=progress,
            legacy_tables=legacy_tables,
            accept_unreadable=list(accept_unreadable) or None,
            online=Online(ddl_lock_timeout, ddl_retries) if online else False,
        )
    if as_sql:
        if opts.json:
            opts.emit({"sql": outcome.sql, "database": target.masked_url})
        else:
            click.echo(redact(outcome.sql), nl=False)
        return
    opts.emit(outcome.as_dict())
    for line in outcome.drift:
        opts.say(f"drift: {line}")
    if outcome.created:
        opts.say(f"created {target.session_table} at {outcome.after} (head) in {target.masked_url}")
    elif outcome.applied:
        start = outcome.before or "nothing"
        opts.say(
            f"upgraded {target.session_table} from {start} to {outcome.after}: applied {', '.join(outcome.applied)}"
        )
    else:
        done = "" if outcome.repaired or any(t.repaired for t in outcome.tables) else ": nothing to do"
        opts.say(f"{target.session_table} is already at {outcome.after}{done}")
    if outcome.adopted:
        opts.detail(f"the database was not managed yet: detected and recorded {outcome.adopted}")
    from agno_migrate.backends import dialect_of

    if dialect_of(target).write_note:
        opts.detail(dialect_of(target).write_note)
    _print_table_steps(opts, outcome.tables, "was")
    if online:
        opts.detail(
            f"online: {outcome.report.ddl_retries} DDL statement(s) retried after waiting "
            f"{ddl_lock_timeout:g}s for a lock (at most {ddl_retries} retries each)"
        )
    repaired = outcome.repaired + [f"{t.name}.{index}" for t in outcome.tables for index in t.repaired]
    if repaired:
        opts.say(f"repaired indexes: {', '.join(repaired)}")
    _say_additions(opts, outcome.additions)
    _report(opts, outcome.report, report_path, set(accept_unreadable))


def _say_additions(opts: Options, additions: list[str], tables=()) -> None:
    """One line naming a user's additions to the Agno tables, which every upgrade keeps."""
    every = additions + [f"{t.name}: {line}" for t in tables for line in t.additions]
    if every:
        opts.say(f"additions: {', '.join(every)} — kept")


def _report(opts: Options, report: dict, report_path: str, accept: set[str] | None = None) -> None:
    """Print what the data steps met; rows that could not be converted end the command with exit 9
    (Agno 1.x rows whose loss is accepted, ``accept``: a warning)."""
    failures = []
    if report.get("legacy") is not None:
        failures += _report_legacy(opts, report["legacy"], report_path, accept or set())
    if "runs_copied" in report:
        opts.say(f"copied {report['runs_copied']} runs into the runs table (legacy runs column kept)")
    _warn_duplicates(opts, report.get("duplicate_run_ids", []))
    _say_nul_removed(opts, report.get("nul_removed", []))
    _say_surrogates_replaced(opts, report.get("surrogates_replaced", []))
    for key, column, count, table in opts.listed(report.get("escapes_kept_as_text", [])):
        where = f"session {key}" if table is None else f"{table} row {key}"
        opts.say(
            f"{where}: {count} escape(s) of characters the database's encoding cannot hold kept as text in {column}"
        )
    _say_learnings(opts, report.get("learnings", []))
    blobs = report.get("unparseable", []) + [(sid, f"runs[{i}]: {why}") for sid, i, why in report.get("not_runs", [])]
    for session_id, reason in opts.listed(blobs):
        opts.say(f"session {session_id}: {reason} (left in the legacy runs column)")
    if blobs:  # (one session can hold several: its runs and its session_data, say)
        sessions = len({session_id for session_id, _ in blobs})
        failures.append(f"{sessions} session(s) had runs that could not be converted (left in the legacy runs column)")
    if failures:
        raise errors.Incomplete("; ".join(failures))


def _say_learnings(opts: Options, learnings: list) -> None:
    """What Agno 3.0's re-key of user entity memories did, per outcome (each one with -v)."""
    if not learnings:
        return
    for table, learning_id, outcome, detail in learnings:
        opts.detail(f"{table}: learning {learning_id}: {outcome}{f' ({detail})' if detail else ''}")
    counts: dict[str, int] = {}
    for entry in learnings:
        counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
    opts.say(
        "learnings re-keyed per user (Agno 3.0): " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    )


def _say_nul_removed(opts: Options, removed: list) -> None:
    """The NUL characters the JSONB casts removed (PostgreSQL JSONB cannot hold them)."""
    _say_per_row(opts, removed, "NUL character(s) removed from {column}", "removed {total} NUL character(s) from "
                 "{rows}: PostgreSQL's JSONB cannot hold them (every other character kept)")  # fmt: skip


def _say_surrogates_replaced(opts: Options, replaced: list) -> None:
    """The lone surrogate escapes the JSONB casts replaced by U+FFFD (PostgreSQL JSONB cannot hold them)."""
    _say_per_row(opts, replaced, "lone surrogate escape(s) replaced by \\ufffd in {column}",
                 "replaced {total} lone surrogate escape(s) in {rows} by \\ufffd (U+FFFD): PostgreSQL's JSONB "
                 "cannot hold half of a UTF-16 pair (every other character kept)")  # fmt: skip


def _say_per_row(opts: Options, entries: list, each: str, summary: str) -> None:
    """One line per (session or row, column, count, table) entry (listed as ``opts`` lists), then the
    summary; rows are "session(s)" when every entry is a session's."""
    if not entries:
        return
    for key, column, count, table in opts.listed(entries):
        where = f"session {key}" if table is None else f"{table} row {key}"
        opts.say(f"{where}: {count} " + each.format(column=column))
    rows = len({(table, key) for key, _, _, table in entries})
    noun = "session(s)" if all(entry.table is None for entry in entries) else "row(s)"
    opts.say(summary.format(total=sum(entry.count for entry in entries), rows=f"{rows} {noun}"))


def _report_legacy(opts: Options, legacy, report_path: str, accept: set[str]) -> list[str]:
    """Print the Agno 1.x import's summary; list unreadable rows and collisions in ``report_path``.
    Returns the failure to report (unreadable rows), if any."""
    for name, table in legacy.tables.items():
        opts.detail(f"Agno 1.x table {name} ({table['mode']}, {table['rows']} rows): imported")
    opts.say(f"imported {legacy.sessions} Agno 1.x sessions ({legacy.runs} runs) from {', '.join(legacy.tables)}")
    if legacy.memories:
        opts.say(
            f"imported {legacy.memories} Agno 1.x memories into the memories table "
            f"({legacy.memories_from_sessions} found only in session blobs)"
        )
    if legacy.nul_bytes_removed:
        opts.say(f"removed {legacy.nul_bytes_removed} NUL characters (PostgreSQL text and JSONB cannot hold them)")
    if legacy.created_at_filled:
        opts.say(
            f"note: {len(legacy.created_at_filled)} session(s) had no created_at (NULL); given their "
            f"updated_at (or 0), as the current schema requires one"
        )
    for table, session_id, count in opts.listed(legacy.deep_as_text):
        opts.say(f"{table} session {session_id}: {count} part(s) nested too deep stored as JSON text")
    if legacy.deep_as_text:
        opts.say(
            f"note: {len(legacy.deep_as_text)} session(s) held JSON nested deeper than the database holds "
            "(MariaDB: 31 levels); their deepest parts are stored as JSON text (strings), nothing lost"
        )
    _warn_duplicates(opts, legacy.duplicate_run_ids)
    problems = [("unparseable", *row) for row in legacy.unparseable] + [
        ("collision", *row) for row in legacy.collisions
    ]
    if not problems:
        return []
    with open(report_path, "w", encoding="utf-8") as out:
        for kind, table, session_id, reason in problems:
            line = json.dumps({"kind": kind, "table": table, "session_id": session_id, "reason": reason})
            out.write(redact(line) + "\n")
    if legacy.collisions:
        opts.say(
            f"warning: {len(legacy.collisions)} session id(s) already stored with other content; "
            f"not overwritten (listed in {report_path})"
        )
    if not legacy.unparseable:
        return []
    pending = sorted(name for name, table in legacy.tables.items() if not table["done"])
    accepted = sorted({row.table for row in legacy.unparseable})
    if not pending and set(accepted) <= accept:
        opts.say(
            f"warning: {len(legacy.unparseable)} Agno 1.x row(s) could not be read and were not imported "
            f"(listed in {report_path}); their loss is accepted for {', '.join(accepted)}"
        )
        return []
    then = (
        f"; {', '.join(pending)} stays pending: repair the rows and run agno-migrate upgrade again, or accept "
        f"their loss with " + " ".join(f"--accept-unreadable {name}" for name in pending)
        if pending
        else ""
    )
    return [
        f"{len(legacy.unparseable)} Agno 1.x row(s) could not be read and were not imported; listed in "
        f"{report_path} (the legacy tables are unchanged){then}"
    ]


def _warn_duplicates(opts: Options, dups: list) -> None:
    if dups:
        opts.say(f"warning: {len(dups)} run id(s) were already used by another run; stored under derived ids")
        for run_id, session_id, owner, new_id in opts.listed(dups):
            opts.say(f"  run {run_id} of session {session_id} (owned by session {owner}) -> {new_id}")


@cli.command()
@click.option("--to", "to", required=True, help="Version to downgrade to.")
@pass_options
def downgrade(opts: Options, to):
    """Downgrade the database to --to; refuses (exit 8) if a step on the way is irreversible."""
    from agno_migrate.migrate import runner

    outcome = runner.downgrade(opts.target(), to)
    opts.emit(outcome.as_dict())
    if outcome.applied:
        opts.say(f"downgraded from {outcome.before} to {outcome.after}: undid {', '.join(outcome.applied)}")
    else:
        opts.say(f"already at {outcome.after}: nothing to do")


@cli.command()
@pass_options
def current(opts: Options):
    """Show the database's schema version (recorded, or detected if not managed yet)."""
    from agno_migrate.migrate import runner

    status = runner.current(opts.target())
    opts.emit(status.as_dict())
    _print_status(opts, status)


def _print_status(opts: Options, status) -> None:
    target = status.target
    if status.not_agno:
        opts.say(f"{target.masked_url}: {target.session_table} is not Agno's (head is {status.head})")
    elif status.version is None:
        what = "Agno 1.x tables only" if status.legacy else f"no {target.session_table} table"
        opts.say(f"{target.masked_url}: {what} (head is {status.head})")
    else:
        where = "head" if status.at_head else f"behind head {status.head}"
        how = "recorded" if status.managed else "detected, not managed yet"
        opts.say(f"{target.session_table}: {status.version} ({where}; {how})")
    if status.agno_stamp:
        opts.detail(f"Agno's own stamp: {status.agno_stamp}")
    for table in status.legacy:
        unreadable = status.legacy_unreadable.get(table.name, 0)
        if table.name not in status.legacy_pending:
            state = f"imported, {unreadable} unreadable row(s) accepted as lost" if unreadable else "imported"
        elif unreadable:
            state = f"not imported: {unreadable} row(s) could not be read (repair them and run upgrade again)"
        else:
            state = "not imported yet"
        opts.say(f"Agno 1.x table {table.name} ({table.mode}, {table.rows} rows): {state}")
    for line in status.drift:
        opts.say(f"drift: {line}")
    if status.repairs:
        opts.say(f"missing: {'; '.join(status.repairs)} (agno-migrate upgrade creates them)")
    _say_additions(opts, status.additions, status.tables)
    for table in status.tables:
        opts.say(_describe_agno_table(table))
    for fam, name in status.missing_tables.items():
        opts.say(f"Agno {fam} table {name} (named explicitly): missing")


def _describe_agno_table(table) -> str:
    """One line for one of the other Agno tables: its family, point and whether it is at head."""
    if table.elsewhere:
        state = "kept as it is (Agno has no such table on this backend, and does not use it)"
    elif table.version is None:
        state = f"matches no layout: {'; '.join(table.drift)}"
    elif table.missing:
        state = f"{table.version}, lacks the indexes {', '.join(table.missing)} (agno-migrate upgrade creates them)"
    elif table.at_head:
        state = f"{table.version} (head)"
    else:
        cut = "an upgrade cut short; " if table.interrupted else ""
        state = f"{table.version} ({cut}behind head {table.head})"
    return f"Agno {table.family} table {table.name} (found by {table.found_by}): {state}"


@cli.command()
@pass_options
def check(opts: Options):
    """Exit 0 when the database is at head with the head schema; otherwise a one-line reason."""
    from agno_migrate.migrate import runner

    status = runner.check(opts.target())
    opts.emit({"ok": True, **status.as_dict()})
    used = [t for t in status.tables if not t.elsewhere]
    others = f", and {len(used)} other Agno tables at head" if used else ""
    if len(used) < len(status.tables):
        others += f" ({len(status.tables) - len(used)} more kept as they are: Agno has no such table on this backend)"
    opts.say(f"ok: {status.target.session_table} is at head {status.version}{others}")
    _say_additions(opts, status.additions, status.tables)


@cli.command()
@click.option("--to", "to", default="head", show_default=True)
@click.option("--legacy-table", "legacy_tables", multiple=True, help=LEGACY_HELP)
@pass_options
def plan(opts: Options, to, legacy_tables):
    """Show what upgrade would do (schema steps, Agno 1.x tables with row counts); change nothing."""
    from agno_migrate.migrate import runner

    _print_plan(opts, runner.plan(opts.target(), to, legacy_tables=list(legacy_tables) or None))


def _print_plan(opts: Options, the_plan) -> None:
    opts.emit(the_plan.as_dict())
    t = the_plan.target
    for line in the_plan.drift:
        opts.say(f"drift: {line}")
    for table in the_plan.legacy:
        opts.say(f"Agno 1.x table {table.name} ({table.mode}, {table.rows} rows): would be imported at head")
    _print_table_steps(opts, the_plan.tables, "would be")
    if the_plan.repairs:
        opts.say(f"would repair: {'; '.join(the_plan.repairs)} (created at head)")
    if the_plan.create_head:
        opts.say(f"no session table: would create {t.session_table} and {t.runs_table} at {the_plan.goal} directly")
        return
    if the_plan.adopt:
        opts.say(f"not managed yet: would record the detected version {the_plan.adopt}")
    if not the_plan.steps:
        opts.say(f"{t.session_table} is at {the_plan.current}: nothing to do")
    for step in the_plan.steps:
        data = " (copies data)" if step.copies_data else ""
        opts.say(f"{step.direction} to {step.version}: {step.summary}{data}")


def _print_table_steps(opts: Options, tables, tense: str) -> None:
    """One line per other Agno table an upgrade brings to head (``tense``: "would be" or "was"),
    its steps below it (and with -v, a table that was only stamped)."""
    from agno_migrate import registry

    for t in tables:
        if not t.steps:
            opts.detail(f"{t.name} ({t.family}) at head: Agno's stamp {registry.AGNO_TABLE_STAMP} written")
            continue
        opts.say(f"{t.name} ({t.family}) {tense} brought from {t.before} to head {t.after}")
        for step in registry.TABLE_STEPS:
            if step.family == t.family and step.point in t.steps:
                opts.say(f"  {step.point}: {step.summary}")


@cli.command()
@pass_options
def history(opts: Options):
    """List the schema versions this tool knows, oldest first."""
    from agno_migrate import registry

    rows = [
        {
            "version": v.version,
            "summary": v.summary,
            "agno_stamp": v.agno_stamp,
            "reversible": v.reversible,
            "copies_data": v.copies_data,
            "head": v == registry.HEAD,
        }
        for v in registry.VERSIONS
    ]
    opts.emit({"versions": rows})
    for row in rows:
        flags = ", ".join(f for f, on in (("head", row["head"]), ("irreversible", not row["reversible"])) if on)
        opts.say(f"{row['version']:<7} {row['summary']}" + (f" [{flags}]" if flags else ""))


@cli.command()
@click.argument("version")
@click.option("--force", is_flag=True, help="Record VERSION even where the session table matches no version.")
@pass_options
def stamp(opts: Options, version, force):
    """Record VERSION as the database's version without running anything (a session table that
    matches no version, or is not Agno's, needs --force)."""
    from agno_migrate import registry
    from agno_migrate.migrate import runner

    registry.get(version)  # an unknown version is a usage error before any connection
    outcome = runner.stamp(opts.target(), version, force=force)
    opts.emit(outcome.as_dict())
    opts.say(f"stamped {outcome.target.session_table} as {outcome.after} (was {outcome.before or 'unmanaged'})")


@cli.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL", help="The database to copy into (created at head).")
@click.option("--to-schema", help="The target's PostgreSQL schema (default ai), MySQL or MongoDB database.")
@click.option(
    "--if-exists",
    type=click.Choice(["skip", "replace"]),
    help="A target holding sessions: keep its rows and copy the others (skip), or let the source's win (replace).",
)
@click.option(
    "--verify", "then_verify", is_flag=True, help="Compare source and target afterwards (exit 1 if they differ)."
)
@click.option("--batch", type=click.IntRange(min=1), default=500, show_default=True, help="Sessions per batch.")
@pass_options
def copy_command(opts: Options, to_url, to_schema, if_exists, then_verify, batch):
    """Copy the whole database (any version, Agno 1.x included) into --to, at head, on any backend.
    The source is only read; a killed copy resumes when run again."""
    from agno_migrate.move.copy import copy, destination

    source = opts.target()
    target = destination(to_url, source, to_schema)
    with _Progress(opts, "copying sessions") as progress:
        outcome = copy(source, target, if_exists=if_exists, verify=then_verify, batch=batch, progress=progress)
    opts.emit(outcome.as_dict())
    resumed = " (resumed)" if outcome.resumed else ""
    opts.say(
        f"copied {outcome.sessions} session(s) and {outcome.runs} run(s) from {outcome.source} "
        f"({outcome.source_version or 'Agno 1.x'}) to {outcome.target}{resumed}"
    )
    _say_tables(opts, outcome.tables)
    if outcome.skipped_sessions:
        opts.say(f"{outcome.skipped_sessions} session(s) already in the target were kept")
    _say_changes(opts, outcome)
    if outcome.verify is not None:
        _say_verify(opts, outcome.verify)
    if outcome.verify is not None and not outcome.verify.equal:
        raise errors.Differs(f"{outcome.source} and {outcome.target} differ (see above)")
    if outcome.not_copied:
        raise errors.Incomplete(f"{len(outcome.not_copied)} session(s) or run(s) could not be copied (named above)")


@cli.command("verify")
@click.option("--against", "against", required=True, metavar="URL", help="The database to compare with.")
@click.option("--against-schema", help="Its PostgreSQL schema (default ai), MySQL or MongoDB database.")
@pass_options
def verify_command(opts: Options, against, against_schema):
    """Compare the database with --against table by table (row counts, a digest per session and run);
    exit 0 only if nothing differs. Reads only."""
    from agno_migrate.move.copy import destination
    from agno_migrate.move.verify import verify

    source = opts.target()
    outcome = verify(source, destination(against, source, against_schema))
    opts.emit(outcome.as_dict())
    _say_verify(opts, outcome)
    if not outcome.equal:
        raise errors.Differs(f"{outcome.source} and {outcome.target} differ (see above)")


def _say_changes(opts: Options, outcome) -> None:
    """What a copy or an import changed to fit the target (``outcome.fitted``), re-keyed
    (``outcome.rekeyed``) or could not move as it was (``outcome.problems``), one line each."""
    changed = outcome.fitted
    _say_named(opts, changed.nul_removed, "session {0}: {1} NUL character(s) removed (the target cannot hold them)")
    _say_named(opts, changed.surrogates_replaced, "session {0}: {1} lone surrogate(s) replaced by U+FFFD")
    _say_named(opts, changed.deep_as_text, "session {0}: {1} part(s) nested too deep kept as their JSON text")
    _say_named(opts, changed.big_ints_as_text, "session {0}: {1} kept as its JSON text (an integer beyond 64 bits)")
    rekeyed = [(r.session_id, f"{r.run_id} -> {r.new_id}") for r in outcome.rekeyed]
    _say_named(opts, rekeyed, "session {0}: run id held by another session, stored under a derived id: {1}")
    _say_named(opts, [(f"{p.table}/{p.session_id}", p.what) for p in outcome.problems], "{0}: {1}")


def _say_named(opts: Options, entries: list[tuple], line: str) -> None:
    """One line per (name, what) entry (as ``opts`` lists them), then how many if some were not shown."""
    for entry in opts.listed(entries):
        opts.say(line.format(*entry))
    if len(opts.listed(entries)) < len(entries):
        opts.say(f"... {len(entries)} in all (-v lists every one)")


def _say_verify(opts: Options, outcome) -> None:
    for table in outcome.tables:
        counts = ", ".join(f"{n} {kind}" for kind, n in table.counts.items() if n)
        rows = f"{table.rows[0]} / {table.rows[1]} rows"
        opts.say(f"verify {table.name}: {rows}, " + ("equal" if table.equal else f"differ: {counts}"))
        for kind in ("missing", "extra", "changed"):
            for key in opts.listed(getattr(table, kind)):
                opts.say(f"  {kind}: {key}")
    opts.say(f"{outcome.source} and {outcome.target} are " + ("equal" if outcome.equal else "NOT equal"))


def _selection_options(func):
    """The filters of ``sessions list`` and ``export`` (agno_migrate.selection)."""
    options = [
        click.option("--user-id", help="Only this user's sessions."),
        click.option("--agent-id", help="Only this agent's sessions."),
        click.option("--team-id", help="Only this team's sessions."),
        click.option("--workflow-id", help="Only this workflow's sessions."),
        click.option(
            "--since",
            metavar="WHEN",
            help="Only sessions created at or after WHEN: an ISO 8601 date or date and time (UTC unless it "
            "says otherwise) or seconds since the epoch.",
        ),
        click.option("--session-type", type=click.Choice(["agent", "team", "workflow"]), help="Only this type."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _selection(**filters):
    from agno_migrate.selection import Selection

    return Selection.named(**filters)


@cli.group()
def sessions():
    """Look at the stored sessions (a database at head): list them, show one."""


@sessions.command("list")
@_selection_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Sessions per page.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="Page, from 1.")
@pass_options
def sessions_list(opts: Options, user_id, agent_id, team_id, workflow_id, since, session_type, limit, page):
    """List the sessions, newest first, a page at a time."""
    from agno_migrate.store import browse

    selection = _selection(user_id=user_id, agent_id=agent_id, team_id=team_id, workflow_id=workflow_id, since=since,
                           session_type=session_type)  # fmt: skip
    found = browse.list_sessions(opts.target(), selection, limit=limit, page=page)
    opts.emit(found.as_dict())
    for line in browse.page_lines(found, full=opts.verbosity >= 1):
        opts.say(line)


@sessions.command("show")
@click.argument("session_id")
@pass_options
def sessions_show(opts: Options, session_id):
    """Show a session: state, summary, metrics, and each run with its messages (trimmed; -v: in full,
    --json: everything as stored)."""
    from agno_migrate.store import browse

    session = browse.show_session(opts.target(), session_id)
    opts.emit({"session": session.to_dict()})
    for line in browse.session_lines(session, full=opts.verbosity >= 1):
        opts.say(line)


@cli.command("export")
@click.argument("path", metavar="FILE")
@_selection_options
@pass_options
def export_(opts: Options, path, user_id, agent_id, team_id, workflow_id, since, session_type):
    """Write the database's sessions with their runs into FILE (JSON Lines, gzip if it ends in .gz),
    as Agno 3.1 stores them, whatever version the database is at (read only). Format:
    docs/export-format.md."""
    from agno_migrate.move import transfer

    selection = dict(user_id=user_id, agent_id=agent_id, team_id=team_id, workflow_id=workflow_id, since=since,
                     session_type=session_type)  # fmt: skip
    _selection(**selection)  # a bad filter is a usage error before any connection
    with _Progress(opts, "exporting sessions") as progress:
        outcome = transfer.export(opts.target(), path, progress=progress, **selection)
    opts.emit(outcome.as_dict())
    counts = outcome.counts
    others = f" and {counts.table_rows} rows of other tables" if counts.table_rows else ""
    opts.say(f"exported {counts.sessions} sessions ({counts.runs} runs){others} from {outcome.source} to {path}")
    _say_named(opts, [(f"{p.table}/{p.session_id}", p.what) for p in outcome.problems], "{0}: {1}")
    _lost(outcome.problems, "exported")


@cli.command("import")
@click.argument("path", metavar="FILE")
@click.option(
    "--if-exists",
    type=click.Choice(["skip", "replace"]),
    help="The target already holds sessions: skip keeps them (the file's others are written), replace "
    "puts the file's in their place. Without it a non-empty target is refused (exit 8).",
)
@pass_options
def import_(opts: Options, path, if_exists):
    """Load an export FILE into the database (created at head; any backend). A killed import resumes
    when run again with the same file."""
    from agno_migrate.move import transfer

    outcome = transfer.import_(opts.target(), path, if_exists=if_exists)
    opts.emit(outcome.as_dict())
    resumed = " (resumed)" if outcome.resumed else ""
    opts.say(f"imported {outcome.sessions} sessions ({outcome.runs} runs) from {path} into "
             f"{outcome.target}{resumed}")  # fmt: skip
    _say_tables(opts, outcome.tables)
    if outcome.skipped_sessions:
        opts.say(f"{outcome.skipped_sessions} session(s) already in the target were kept")
    _say_changes(opts, outcome)
    _lost(outcome.problems, "imported")


def _say_tables(opts: Options, copied) -> None:
    """The other Agno tables a copy or an import wrote (``move.tables.TablesCopied``), one line each."""
    for table in copied.tables if copied is not None else []:
        skipped = (
            f", {table.skipped} not written (named below, or kept as the target held them)" if table.skipped else ""
        )
        layout = "" if table.agno_layout else " (Agno has no such table on this backend: another backend's layout)"
        opts.say(f"{table.target} ({table.family}): {table.rows} rows{skipped}{layout}")
        for line in opts.listed(table.named):
            opts.say(f"  {line}")


def _lost(problems: list, verb: str) -> None:
    """Exit 9 when a session or row (named above) could not be moved at all."""
    lost = [p for p in problems if not p.copied or p.what.endswith("not copied")]
    if lost:
        raise errors.Incomplete(f"{len(lost)} session(s) or row(s) could not be {verb} (named above)")


class _Progress:
    """A progress bar with rows per second for data steps, on a terminal only (never with --json or
    -q). A step that reports a new total (the next data step) starts a new bar."""

    def __init__(self, opts: Options, label: str = "copying rows"):
        self.label = label
        self.enabled = not opts.json and opts.verbosity >= 0 and sys.stderr.isatty()
        self.bar = None
        self.total = None
        self.done = 0
        self.started = 0.0

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, done: int, total: int) -> None:
        import time

        if total != self.total:
            self._close()
            self.total, self.done, self.started = total, 0, time.monotonic()
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr)
            self.bar.__enter__()
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.bar.label = f"{self.label} ({rate:,.0f}/s)"
        self.bar.update(done - self.done)
        self.done = done

    def _close(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*(exc or (None, None, None)))
            self.bar = None

    def __exit__(self, *exc):
        self._close(*exc)
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: run, print one line on failure, return the exit code."""
    import logging

    from agno_migrate.credentials import remember

    # drivers log warnings (psycopg: "error ignored terminating <Pipeline>" after a lost connection);
    # with no handler Python prints them to stderr, a second line after our one error line
    logging.getLogger().addHandler(logging.NullHandler())
    args = list(argv if argv is not None else sys.argv[1:])
    as_json = "--json" in args
    remember(os.environ.get("AGNO_DB_URL"))  # masked in every line, even before the URL is parsed
    for i, arg in enumerate(args):
        if arg.startswith("--db-url="):
            remember(arg.partition("=")[2])
        elif arg == "--db-url" and i + 1 < len(args):
            remember(args[i + 1])
        elif arg.startswith(("--to=", "--against=")):
            remember(arg.partition("=")[2])
        elif arg in ("--to", "--against") and i + 1 < len(args):
            remember(args[i + 1])
    try:
        cli.main(args=argv, prog_name="agno-migrate", standalone_mode=False)
        return errors.EXIT_OK
    except errors.AgnoMigrateError as exc:
        return _fail(as_json, redact(str(exc)), exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return _fail(as_json, redact(exc.format_message()), errors.EXIT_USAGE)
    except click.exceptions.Abort:
        return _fail(as_json, "aborted", 130)
    except KeyboardInterrupt:
        return _fail(as_json, "interrupted", 130)
    except Exception as exc:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get("AGNO_MIGRATE_DEBUG"):
            raise
        detail = f"{exc.__class__.__name__}: {exc}"
        return _fail(
            as_json,
            f"unexpected error ({redact(detail)[:300]}); set AGNO_MIGRATE_DEBUG=1 for details",
            errors.EXIT_DATABASE,
        )


def _fail(as_json: bool, message: str, code: int) -> int:
    message = redact(" ".join(message.split()))
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": code}))
    else:
        click.echo(f"agno-migrate: error: {message}", err=True)
    return code


def run() -> None:
    sys.exit(main())
