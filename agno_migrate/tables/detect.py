"""Physical detection of Agno's non-session tables: which layout (schema point) a table is at, or drift.

* :func:`reflect_sql` / :func:`reflect_mongo` read what is physically there (SQLAlchemy's inspector;
  MongoDB's ``index_information()`` and a sample of documents) into a :class:`Physical`.
* :func:`detect_table` compares it with every layout a family accepts (the fresh table of each Agno
  release and what Agno's own ``MigrationManager`` leaves, :mod:`agno_migrate.tables.layouts`) and gives
  the point it is at, or the drift (one line per difference) from the closest layout. Columns and
  indexes a user added (nullable or defaulted columns, non-unique indexes, unknown document fields)
  are reported as additions, never drift (:func:`extra_column`, :func:`extra_index`: the one rule for
  every Agno table, the session and runs tables included). Indexes and keys are matched by their
  columns, not their names (a renamed table keeps its old index names; Agno's migration names some
  indexes ``ix_``).
* :func:`find_tables` says which Agno tables a database holds: explicit names first, then default
  names, then fingerprints (a table of any name with a family's fingerprint columns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from agno_migrate.backends import dialect_of
from agno_migrate.tables.families import FAMILIES, Family, family, matches

MONGO_SAMPLE = 200  # documents read to know a collection's fields and their BSON types


@dataclass
class Physical:
    """A table (or collection) as it is, normalised for comparison."""

    name: str
    backend: str
    columns: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)
    """SQL: name → (type family of the dialect, nullable, has a server default)."""
    primary_key: tuple[str, ...] = ()
    unique: dict[tuple[tuple[str, ...], bool], str | None] = field(default_factory=dict)
    """SQL: (columns, partial) → name, for unique constraints and unique indexes alike."""
    indexes: dict[tuple[str, ...], str | None] = field(default_factory=dict)
    """SQL: columns → name of the non-unique indexes."""
    mongo_indexes: dict[tuple[tuple[tuple[str, int], ...], bool], str] = field(default_factory=dict)
    """MongoDB: (key, unique) → name, ``_id_`` left out."""
    fields: dict[str, set[str]] = field(default_factory=dict)
    """MongoDB: field → BSON types seen in the sampled documents (``string(json)``: a string holding JSON)."""

    @property
    def names(self) -> set[str]:
        """The column names; on MongoDB the sampled fields and the fields of every index key."""
        if self.columns:
            return set(self.columns)
        return set(self.fields) | {k for key, _ in self.mongo_indexes for k, _ in key}


@dataclass
class TableDetection:
    family: str
    table: str
    version: str | None
    """The Agno schema point of the layout the table matches; None when it matches none (drift)."""
    covers: tuple[str, ...] = ()
    """Every point at which a table has that layout (a table no migration changed since)."""
    at_head: bool = False
    """The table has the newest layout of its family on this backend."""
    origin: str | None = None
    """Which accepted layout it matched (``fresh 2.3.26``, ``Agno 3.1.10 MigrationManager from 2.5.0``, ...)."""
    drift: list[str] = field(default_factory=list)
    """Differences from the closest layout when none matches; one line each."""
    additions: list[str] = field(default_factory=list)
    """What a user added that no Agno layout has and that Agno does not mind."""
    closest: str | None = None
    """With drift: the point of the closest layout."""
    found_by: str | None = None
    """How :func:`detect_all` found the table (:attr:`FoundTable.how`); None from :func:`detect_table`."""
    interrupted: bool = False
    """The table is part-way from ``version``'s layout to head (every column, key and index as in one
    or the other): an upgrade cut short between two statements that commit on their own (MySQL's DDL,
    MongoDB's index builds). Not drift: the upgrade's steps, each idempotent, finish it."""
    missing: list[str] = field(default_factory=list)
    """MongoDB: the indexes of ``version``'s layout that the collection lacks (a collection restored
    by ``mongoimport`` has none): not drift, the upgrade creates head's. Never at head meanwhile."""

    @property
    def ok(self) -> bool:
        return self.version is not None


# --- reading what is there --------------------------------------------------------------------------


def backend_of(conn) -> str:
    """Our dialect name for a SQLAlchemy connection (MariaDB is driven as MySQL)."""
    return dialect_of(conn.dialect.name).name


def reflect_sql(conn, table: str, schema: str | None = None, backend: str | None = None) -> Physical:
    import sqlalchemy as sa

    backend = backend or backend_of(conn)
    dialect = dialect_of(backend)
    insp = sa.inspect(conn)
    phys = Physical(table, backend)
    for c in insp.get_columns(table, schema=schema):
        phys.columns[c["name"]] = (dialect.type_family(c["type"]), bool(c["nullable"]), has_default(c))
    phys.primary_key = tuple(insp.get_pk_constraint(table, schema=schema).get("constrained_columns") or ())
    for u in insp.get_unique_constraints(table, schema=schema):
        phys.unique.setdefault((tuple(u["column_names"]), False), u.get("name"))
    for i in insp.get_indexes(table, schema=schema):
        cols = tuple(i["column_names"])
        if None in cols:  # an expression index: not Agno's
            cols = tuple(str(c) for c in cols)
        if i.get("unique"):
            partial = any(k.endswith("_where") and v is not None for k, v in (i.get("dialect_options") or {}).items())
            phys.unique.setdefault((cols, partial), i["name"])
        else:
            phys.indexes.setdefault(cols, i["name"])
    return phys


def bson_type(value) -> str:
    """The BSON type name layouts.json uses for a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        if value[:1] in "{[":
            try:
                json.loads(value)
                return "string(json)"
            except ValueError:
                pass
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return {"ObjectId": "objectId", "datetime": "date", "Int64": "long"}.get(type(value).__name__, type(value).__name__)


def reflect_mongo(db, collection: str, sample: int = MONGO_SAMPLE) -> Physical:
    """``db``: a pymongo Database."""
    phys = Physical(collection, "mongodb")
    for name, info in db[collection].index_information().items():
        if name == "_id_":
            continue
        key = tuple((k, int(v)) if isinstance(v, (int, float)) else (k, v) for k, v in info["key"])
        phys.mongo_indexes[(key, bool(info.get("unique", False)))] = name
    for doc in db[collection].find({}, limit=sample):
        for k, v in doc.items():
            if k != "_id":
                phys.fields.setdefault(k, set()).add(bson_type(v))
    return phys


# --- a user's additions: the one rule ---------------------------------------------------------------------

NOT_NULL_EXTRA = (
    "is NOT NULL without a default and not in Agno's layout: Agno's inserts, which do not set it, would fail"
)
UNIQUE_EXTRA = "is not in Agno's layout: Agno's writes could fail on it"


def has_default(column: dict) -> bool:
    """Whether a reflected column (SQLAlchemy's ``get_columns`` entry) is filled when an insert omits it:
    a server default, an identity or auto-increment, a computed value."""
    return bool(
        column.get("default") is not None
        or column.get("identity")
        or column.get("computed")
        or column.get("autoincrement") is True
    )


def extra_column(name: str, fam: str, nullable: bool, defaulted: bool) -> tuple[str | None, str | None]:
    """(drift, addition) for a column that no Agno layout has: an addition when Agno's inserts, which
    never name it, still work (nullable, or NOT NULL with a default); drift otherwise (one of the two
    is None)."""
    if nullable or defaulted:
        return None, f"column {name} added ({fam}, {'nullable' if nullable else 'NOT NULL with a default'})"
    return f"column {name} {NOT_NULL_EXTRA}", None


def extra_index(name: str | None, cols, unique: bool) -> tuple[str | None, str | None]:
    """(drift, addition) for an index that no Agno layout has: a plain index is an addition (kept by
    every upgrade); a unique one is drift, since rows Agno writes could violate it."""
    label = f"{name} " if name else ""
    if unique:
        return f"unique key {label}{_cols(cols)} {UNIQUE_EXTRA}", None
    return None, f"index {label}{_cols(cols)} added"


# --- comparing -----------------------------------------------------------------------------------------


def _cols(cols) -> str:
    return "(" + ", ".join(cols) + ")"


def _null(nullable: bool) -> str:
    return "nullable" if nullable else "NOT NULL"


def compare_sql(layout: dict, phys: Physical, missing: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(drift, additions) of a physical table against one layout. ``missing``: where to put the names of
    the plain (not unique) indexes it lacks, which an upgrade creates, instead of calling them drift."""
    drift, additions = [], []
    for name, (fam, nullable) in layout["columns"].items():
        found = phys.columns.get(name)
        if found is None:
            drift.append(f"column {name} missing")
            continue
        if found[0] != fam:
            drift.append(f"column {name} is {found[0]}, expected {fam}")
        if found[1] != nullable:
            drift.append(f"column {name} is {_null(found[1])}, expected {_null(nullable)}")
    for name, (fam, nullable, defaulted) in phys.columns.items():
        if name not in layout["columns"]:
            file_under(extra_column(name, fam, nullable, defaulted), drift, additions)
    if set(phys.primary_key) != set(layout["primary_key"]):
        drift.append(f"primary key is {_cols(phys.primary_key)}, expected {_cols(layout['primary_key'])}")
    expected_unique = {(tuple(cols), partial): name for name, cols, partial in layout["unique"]}
    for (cols, partial), name in expected_unique.items():
        if (cols, partial) not in phys.unique:
            label = (name or "unique key").replace("{t}", phys.name)
            drift.append(f"unique key {label} {_cols(cols)}{' (partial)' if partial else ''} missing")
    for (cols, partial), name in phys.unique.items():
        if (cols, partial) not in expected_unique and set(cols) != set(phys.primary_key):
            drift.append(extra_index(f"{name or ''}{' (partial)' if partial else ''}".strip(), cols, True)[0])
    expected_indexes = {tuple(cols): name for name, cols in layout["indexes"]}
    for cols, name in expected_indexes.items():
        if cols not in phys.indexes:
            label = name.replace("{t}", phys.name)
            if missing is not None:
                missing.append(label)
            else:
                drift.append(f"index {label} {_cols(cols)} missing")
    for cols, name in phys.indexes.items():
        if cols not in expected_indexes:
            file_under(extra_index(name, cols, False), drift, additions)
    return drift, additions


def file_under(
    judged: tuple[str | None, str | None], drift: list[str], additions: list[str], table: str | None = None
) -> None:
    """Append a (drift, addition) pair of :func:`extra_column` / :func:`extra_index` where it belongs
    (``table``: named in front of the line)."""
    for line, into in zip(judged, (drift, additions), strict=True):
        if line:
            into.append(f"{table}: {line}" if table else line)


def compare_mongo(
    layout: dict, phys: Physical, known_fields: set[str], missing: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """(drift, additions) of a collection against one layout. ``missing``: where to put the names of
    the layout's indexes the collection lacks instead of drift (an index is built on the documents
    there, so the upgrade creates it: a collection restored without its indexes is repairable)."""
    drift, additions = [], []
    expected = {(tuple(tuple(k) for k in key), unique): name for name, key, unique in layout["indexes"]}
    for (key, unique), name in expected.items():
        if (key, unique) not in phys.mongo_indexes:
            if missing is not None and not any(k == key for k, _ in phys.mongo_indexes):
                missing.append(name)
            else:
                drift.append(f"{'unique ' if unique else ''}index {name} missing")
    for (key, unique), name in phys.mongo_indexes.items():
        if (key, unique) not in expected:
            file_under(extra_index(name, [k for k, _ in key], unique), drift, additions)
    for name, types in sorted(phys.fields.items()):
        wanted = set(layout["fields"].get(name, ()))
        if "string(json)" in types and "string(json)" not in wanted and wanted & {"object", "array"}:
            drift.append(f"field {name} holds JSON as a string")
        if name not in known_fields:
            additions.append(f"field {name} added")
    return drift, additions


def _accepted(entry: dict) -> list[tuple[str, dict]]:
    return [(entry["origins"][0], entry), *entry["variants"]]


def _renamed(layout: dict, phys: Physical) -> int:
    """How many of the layout's index names the table does not carry (names never decide a match)."""
    if _documents(phys):
        return sum(name not in phys.mongo_indexes.values() for name, _, _ in layout["indexes"])
    present = set(phys.indexes.values()) | set(phys.unique.values())
    return sum(name.replace("{t}", phys.name) not in present for name, _ in layout["indexes"])


def detect_table(fam: Family | str, phys: Physical) -> TableDetection:
    """The point a table is at, or its drift from the closest layout of its family."""
    fam = family(fam) if isinstance(fam, str) else fam
    layouts = fam.layouts(phys.backend)
    result = TableDetection(fam.name, phys.name, None)
    if not layouts:
        result.drift.append(f"Agno has no {fam.name} table on {phys.backend}")
        return result
    known_fields = set()
    for entry in layouts:
        if _documents(phys):
            known_fields |= set(entry["fields"]) | {k for _, key, _ in entry["indexes"] for k, _ in key}
    tried = []  # (drift, additions, position, origin, entry)
    for position, entry in enumerate(layouts):
        for origin, layout in _accepted(entry):
            if _documents(phys):
                drift, additions = compare_mongo(layout, phys, known_fields)
            else:
                drift, additions = compare_sql(layout, phys)
                newer = {c for later in layouts[position + 1 :] for c in later["columns"]} - set(layout["columns"])
                # a column a newer layout brings is that layout half-applied, not a user's addition
                drift += [
                    f"column {c} is from a layout newer than {entry['point']}" for c in phys.columns if c in newer
                ]
            tried.append((drift, additions, position, origin, entry, _renamed(layout, phys)))
    matched = [t for t in tried if not t[0]]
    if matched:  # the most specific match (fewest additions), then the one whose index names agree
        # (Agno's MigrationManager names some indexes ix_...), then the newest
        drift, additions, position, origin, entry, _ = min(matched, key=lambda t: (len(t[1]), t[5], -t[2]))
        result.version, result.covers, result.origin = entry["point"], tuple(entry["covers"]), origin
        result.at_head = position == len(layouts) - 1
        result.additions = additions
        return result
    for entry in layouts[:-1]:  # the oldest layout it is on its way from
        for _, older in _accepted(entry):
            for _, head in _accepted(layouts[-1]):
                drift, additions = _between(older, head, phys, known_fields)
                if not drift:
                    result.version, result.covers, result.origin = entry["point"], tuple(entry["covers"]), "interrupted"
                    result.interrupted, result.additions = True, additions
                    return result
    # the newest layout it matches but for (plain, on SQL) indexes it lacks: an upgrade creates them
    for position in range(len(layouts) - 1, -1, -1):
        for origin, layout in _accepted(layouts[position]):
            missing: list[str] = []
            if _documents(phys):
                drift, additions = compare_mongo(layout, phys, known_fields, missing)
            else:
                drift, additions = compare_sql(layout, phys, missing)
            if not drift:
                entry = layouts[position]
                result.version, result.covers, result.origin = entry["point"], tuple(entry["covers"]), origin
                result.missing, result.additions = missing, additions
                return result
    drift, additions, position, origin, entry, _ = min(tried, key=lambda t: (len(t[0]), -t[2]))
    result.drift, result.additions, result.closest = drift, additions, entry["point"]
    return result


def _either(element, old: dict, new: dict, phys: dict, kept: bool = False) -> bool:
    """Whether ``phys`` has ``element`` as ``old`` or as ``new`` has it (present or absent);
    ``kept``: an element both have must be there."""
    present = element in phys
    if kept and element in old and element in new:
        return present
    return present in (element in old, element in new)


def _between(older: dict, head: dict, phys: Physical, known_fields: set[str]) -> tuple[list[str], list[str]]:
    """(drift, additions) of a table that may be part-way from ``older`` to ``head``: every column,
    key and index is as one of the two layouts has it (a column being added may still be nullable)."""
    drift, additions = [], []
    if _documents(phys):
        old_ix = {(tuple(tuple(k) for k in key), unique) for _, key, unique in older["indexes"]}
        new_ix = {(tuple(tuple(k) for k in key), unique) for _, key, unique in head["indexes"]}
        have = set(phys.mongo_indexes)
        for element in old_ix | new_ix:
            if not _either(element, old_ix, new_ix, have, kept=True):
                drift.append(f"index {element[0]} neither as at {older.get('point')} nor as at head")
        rest = {k: v for k, v in phys.mongo_indexes.items() if k not in old_ix | new_ix}
        extra = Physical(phys.name, phys.backend, mongo_indexes=rest, fields=phys.fields)
        more_drift, additions = compare_mongo({"indexes": (), "fields": head["fields"]}, extra, known_fields)
        return drift + more_drift, additions
    for name in set(older["columns"]) | set(head["columns"]) | set(phys.columns):
        old, new, found = older["columns"].get(name), head["columns"].get(name), phys.columns.get(name)
        if old is None and new is None:
            continue  # not Agno's: judged below as in compare_sql
        if found is None:
            if old is not None and new is not None:
                drift.append(f"column {name} missing")
            continue
        families = {c[0] for c in (old, new) if c}
        nullables = {c[1] for c in (old, new) if c} | ({True} if old is None else set())
        if found[0] not in families or found[1] not in nullables:
            drift.append(f"column {name} is neither as at {older.get('point')} nor as at head")
    if set(phys.primary_key) not in (set(older["primary_key"]), set(head["primary_key"])):
        drift.append(f"primary key is {_cols(phys.primary_key)}")
    old_u = {(tuple(c), p) for _, c, p in older["unique"]}
    new_u = {(tuple(c), p) for _, c, p in head["unique"]}
    for element in old_u | new_u:
        if not _either(element, old_u, new_u, phys.unique, kept=True):
            drift.append(f"unique key {_cols(element[0])} missing")
    for cols, _ in phys.unique:
        if (cols, _) not in old_u | new_u and set(cols) != set(phys.primary_key):
            drift.append(f"unique key {_cols(cols)} is not in Agno's layout")
    old_i = {tuple(c) for _, c in older["indexes"]}
    new_i = {tuple(c) for _, c in head["indexes"]}
    for element in old_i | new_i:
        if not _either(element, old_i, new_i, phys.indexes, kept=True):
            drift.append(f"index {_cols(element)} missing")
    for name, (fam, nullable, defaulted) in phys.columns.items():
        if name not in older["columns"] and name not in head["columns"]:
            file_under(extra_column(name, fam, nullable, defaulted), drift, additions)
    for cols, name in phys.indexes.items():
        if cols not in old_i | new_i:
            file_under(extra_index(name, cols, False), drift, additions)
    return drift, additions


# --- finding the tables --------------------------------------------------------------------------------


@dataclass
class FoundTable:
    family: str
    table: str
    how: str
    """``explicit``, ``default name`` or ``columns`` (recognised by its fingerprint)."""


@dataclass
class Found:
    tables: dict[str, FoundTable] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Families with several candidate tables by fingerprint (none chosen: name one explicitly)."""
    missing: dict[str, str] = field(default_factory=dict)
    """Explicitly named tables that do not exist (family → name)."""


def _is_document_db(db) -> bool:
    """A pymongo Database (collections of documents), not a SQLAlchemy connection."""
    return hasattr(db, "list_collection_names")


def _documents(phys: Physical) -> bool:
    """Whether the table was read from a document database (its dialect is not SQL)."""
    return not dialect_of(phys.backend).sql


def table_names(db, schema: str | None = None) -> dict[str, set[str]]:
    """Every table (collection) of the database → its column (field) names."""
    if _is_document_db(db):
        return {name: reflect_mongo(db, name, sample=20).names for name in db.list_collection_names()}
    import sqlalchemy as sa

    # one reflection query for every table's columns, not one per table
    columns = sa.inspect(db).get_multi_columns(schema=schema)
    return {table: {c["name"] for c in cols} for (_, table), cols in columns.items()}


def existing_tables(db, schema: str | None = None) -> set[str]:
    """The names of the tables (collections) of the database, nothing reflected."""
    if _is_document_db(db):
        return set(db.list_collection_names())
    import sqlalchemy as sa

    return set(sa.inspect(db).get_table_names(schema=schema))


def find_tables(db, schema: str | None = None, names: dict[str, str] | None = None, *, skip=()) -> Found:
    """Which Agno tables ``db`` (a SQLAlchemy connection, or a pymongo Database) holds.

    ``names``: family → table name, taking precedence over default names and fingerprints; ``skip``:
    table names never to take (e.g. the session and runs tables of the target)."""
    present = table_names(db, schema)
    found = Found()
    claimed = set(skip)
    for fam_name, table in (names or {}).items():
        family(fam_name)
        if table in present:
            found.tables[fam_name] = FoundTable(fam_name, table, "explicit")
            claimed.add(table)
        else:
            found.missing[fam_name] = table
    for fam in FAMILIES.values():
        if fam.name in found.tables or fam.name in found.missing:
            continue
        if fam.default_name in present and fam.default_name not in claimed:
            found.tables[fam.name] = FoundTable(fam.name, fam.default_name, "default name")
            claimed.add(fam.default_name)
    candidates = {
        fam.name: sorted(t for t, cols in present.items() if t not in claimed and matches(fam.fingerprint, cols))
        for fam in FAMILIES.values()
        if fam.name not in found.tables and fam.name not in found.missing
    }
    for fam_name, tables in candidates.items():
        if len(tables) == 1:
            found.tables[fam_name] = FoundTable(fam_name, tables[0], "columns")
        elif tables:
            found.ambiguous[fam_name] = tables
    return found


def detect_all(
    db, schema: str | None = None, names: dict[str, str] | None = None, *, skip=()
) -> dict[str, TableDetection]:
    """Every Agno table found in ``db`` (see :func:`find_tables`), detected: family → detection."""
    found = find_tables(db, schema, names, skip=skip)
    out = {}
    for fam_name, ft in found.tables.items():
        phys = reflect_mongo(db, ft.table) if _is_document_db(db) else reflect_sql(db, ft.table, schema)
        out[fam_name] = detect_table(fam_name, phys)
        out[fam_name].found_by = ft.how
    return out
