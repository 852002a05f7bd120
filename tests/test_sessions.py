"""Session records: their JSON fields are the head schema's JSON columns, decoded from any encoding."""

from __future__ import annotations

import json

from agno_migrate import schema, sessions


def test_the_json_fields_are_the_head_json_columns():
    assert sessions.JSON_FIELDS == schema.JSON_COLUMNS


def test_from_row_decodes_every_json_field_from_text_or_double_encoded_text():
    values = {name: {"field": name} for name in sessions.JSON_FIELDS}
    row = {"session_id": "s1", "session_type": "team", **values}
    row["session_data"] = json.dumps(json.dumps(values["session_data"]))  # SQLite, Agno 2.0 - 3.0.7
    row["metadata"] = json.dumps(values["metadata"])  # MariaDB hands JSON over as text
    session = sessions.Session.from_row(row)
    assert isinstance(session, sessions.TeamSession)
    assert {name: getattr(session, name) for name in sessions.JSON_FIELDS} == values
