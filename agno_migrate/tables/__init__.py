"""Agno's tables beyond sessions and runs: per-family knowledge (layouts per point and backend,
fingerprints) and physical detection. No migration here: the flow asks these modules."""

from agno_migrate.tables.detect import (
    Found,
    FoundTable,
    Physical,
    TableDetection,
    detect_all,
    detect_table,
    existing_tables,
    find_tables,
    reflect_mongo,
    reflect_sql,
)
from agno_migrate.tables.families import FAMILIES, POINTS, Family, check_names, family

__all__ = [
    "FAMILIES",
    "POINTS",
    "Family",
    "Found",
    "FoundTable",
    "Physical",
    "TableDetection",
    "check_names",
    "detect_all",
    "detect_table",
    "existing_tables",
    "family",
    "find_tables",
    "reflect_mongo",
    "reflect_sql",
]
