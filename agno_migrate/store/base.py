"""SessionStore: the schema semantics every backend shares.

* A brand-new database is created at head on first use, whatever the flag.
* A database behind head: with ``auto_upgrade_schema=True`` the first use upgrades it (locked,
  exactly as ``agno-migrate upgrade``); otherwise every call raises SchemaBehind naming the version
  found and the command to run. ``upgrade_schema()`` always upgrades, whatever the flag.
* A database ahead of this tool raises SchemaAhead.
The "at head?" check is one query, done once per store object.
"""
from __future__ import annotations

import threading

from .. import registry
from ..errors import SchemaBehind
from ..target import Target


class SessionStore:
    """Base of the session stores. Subclasses implement the session methods on their backend."""

    def __init__(self, target: Target, auto_upgrade_schema: bool = False):
        self.target = target
        self.auto_upgrade_schema = auto_upgrade_schema
        self._schema_ok = False
        self._schema_lock = threading.Lock()

    # --- schema ---------------------------------------------------------------------------------

    @property
    def schema_version(self) -> str | None:
        """The database's schema version (recorded, or detected when not managed); None if empty."""
        from ..migrate import runner

        return runner.current(self.target).version

    def upgrade_schema(self, to: str = "head"):
        """Upgrade the database to ``to`` now, whatever ``auto_upgrade_schema`` says (locked, as the
        CLI). Returns the runner's Outcome."""
        from ..migrate import runner

        outcome = runner.upgrade(self.target, to=to)
        self._schema_ok = outcome.after == registry.HEAD.version
        return outcome

    def _ensure_schema(self) -> None:
        """Once per store object: make sure the database is at head (see the module docstring)."""
        if self._schema_ok:
            return
        with self._schema_lock:
            if self._schema_ok:
                return
            found = self._recorded_version()
            if found == registry.HEAD.version:
                self._schema_ok = True
                return
            from ..migrate import runner

            status = runner.current(self.target) if found is None else None
            if status is not None and not status.legacy_pending and status.version in (None, registry.HEAD.version):
                self.upgrade_schema()  # brand new: create at head; unmanaged at head: record it
                return
            if not self.auto_upgrade_schema:
                what = f"schema {found or status.version}" if (found or status.version) else "no session table"
                if status is not None and status.legacy_pending:
                    what += f" and Agno 1.x tables not imported ({', '.join(status.legacy_pending)})"
                raise SchemaBehind(
                    f"{self.target.session_table} has {what}, head is {registry.HEAD.version}: run "
                    f"`agno-migrate upgrade` (or pass auto_upgrade_schema=True, or call upgrade_schema())",
                    found=found or (status.version if status else None),
                )
            self.upgrade_schema()

    def _recorded_version(self) -> str | None:
        """One query: the version our version table records (None if the table is missing)."""
        raise NotImplementedError
