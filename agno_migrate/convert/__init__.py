"""Pure functions that turn stored session data into current records (shared by SQL and MongoDB).

No I/O here: values in, values out, deterministic (the same input gives the same output).

* ``runs``: a session's runs as runs-table rows, derived run ids, and the one rule for run ids
  already taken (:func:`rekey_runs`);
* ``v1``: Agno 1.x session rows → current sessions rows; ``v1_runs``: their runs, messages, media,
  workflow steps; ``metrics``: v1 metrics; ``reserve``: where v1 data without a place is kept;
* ``nul``: NUL characters out of values, for PostgreSQL.

JSON decoding lives in :mod:`agno_migrate.jsoncodec`. The names below are this package's interface.
"""

from agno_migrate.convert.metrics import METRIC_RENAMES, TOKEN_ALIASES, convert_v1_metrics
from agno_migrate.convert.nul import strip_nul
from agno_migrate.convert.reserve import V1_KEY
from agno_migrate.convert.runs import (
    RUN_ID_NAMESPACE,
    SESSION_TYPES,
    Rekeyed,
    RunKey,
    derived_run_id,
    rekey_runs,
    run_ids_of,
    run_rows,
)
from agno_migrate.convert.v1 import (
    V1_SESSION_TYPES,
    ConversionError,
    convert_v1_session,
    convert_v1_session_data,
    convert_v1_summary,
    fill_created_at,
    pop_v1_summary,
)
from agno_migrate.convert.v1_runs import (
    EXTRA_DATA_FIELDS,
    convert_v1_media,
    convert_v1_message,
    convert_v1_run,
    convert_v1_tool,
    v1_memory_runs,
    v1_workflow_v2_runs,
)

__all__ = [
    "EXTRA_DATA_FIELDS",
    "METRIC_RENAMES",
    "RUN_ID_NAMESPACE",
    "SESSION_TYPES",
    "TOKEN_ALIASES",
    "V1_KEY",
    "V1_SESSION_TYPES",
    "ConversionError",
    "Rekeyed",
    "RunKey",
    "convert_v1_media",
    "convert_v1_message",
    "convert_v1_metrics",
    "convert_v1_run",
    "convert_v1_session",
    "convert_v1_session_data",
    "convert_v1_summary",
    "convert_v1_tool",
    "derived_run_id",
    "fill_created_at",
    "pop_v1_summary",
    "rekey_runs",
    "run_ids_of",
    "run_rows",
    "strip_nul",
    "v1_memory_runs",
    "v1_workflow_v2_runs",
]
