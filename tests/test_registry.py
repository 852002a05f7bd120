"""The registry is the single source of truth: the Alembic chain must mirror it."""

import pytest

from agno_migrate import registry
from agno_migrate.errors import UnknownVersion
from agno_migrate.migrate.sql import revisions as sql


def test_revision_chain_matches_registry():
    assert sql.registry_mismatches(sql.revision_chain()) == []
    assert sql.revision_chain() == [v.revision for v in registry.VERSIONS]


@pytest.mark.parametrize(
    "chain",
    [
        ["v2_0_0", "v2_3_0", "v3_0_0", "v3_0_1"],  # a revision missing
        ["v2_0_0", "v2_5_0", "v2_3_0", "v3_0_0", "v3_0_1"],  # out of order
        ["v2_0_0", "v2_3_0", "v2_5_0", "v3_0_0", "v3_0_1", "v3_1_0"],  # a revision the registry does not know
    ],
)
def test_a_disagreeing_chain_is_reported(chain):
    assert sql.registry_mismatches(chain)


def test_every_revision_script_names_its_registry_version():
    script = sql.script_directory()
    for version in registry.VERSIONS:
        rev = script.get_revision(version.revision)
        assert rev is not None
        assert version.version in rev.doc


def test_versions_are_strictly_ordered_and_head_is_3_0_1():
    keys = [v.key for v in registry.VERSIONS]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert registry.HEAD.version == "3.0.1"
    assert registry.get("head") is registry.HEAD


def test_agno_stamps_map_to_versions():
    assert registry.from_agno_stamp("2.5.6").version == "2.5.0"
    assert registry.from_agno_stamp("2.3.0").version == "2.3.0"
    assert registry.from_agno_stamp("3.0.0").version == "3.0.0"  # the oldest version the stamp means
    assert [v.version for v in registry.meant_by_agno_stamp("3.0.0")] == ["3.0.0", "3.0.1"]
    assert [v.version for v in registry.meant_by_agno_stamp("2.5.6")] == ["2.5.0"]
    assert registry.meant_by_agno_stamp(None) == [] and registry.meant_by_agno_stamp("4.0.0") == []
    assert registry.newest_agno_stamp_key() == (3, 0, 0)
    assert registry.from_agno_stamp("4.0.0") is None
    assert registry.from_agno_stamp(None) is None


def test_plans_up_and_down():
    assert [v.version for v in registry.steps_up(None, "head")] == ["2.0.0", "2.3.0", "2.5.0", "3.0.0", "3.0.1"]
    assert [v.version for v in registry.steps_up("2.3.0", "3.0.0")] == ["2.5.0", "3.0.0"]
    assert [v.version for v in registry.steps_up("3.0.0", "head")] == ["3.0.1"]
    assert registry.steps_up("3.0.1", "head") == []
    assert [v.version for v in registry.steps_down("3.0.1", "3.0.0")] == ["3.0.1"]
    assert [v.version for v in registry.steps_down("2.5.0", "2.0.0")] == ["2.5.0", "2.3.0"]
    assert registry.previous("2.3.0").version == "2.0.0"
    assert registry.previous("2.0.0") is None


def test_unknown_version_is_a_usage_error():
    with pytest.raises(UnknownVersion) as err:
        registry.get("9.9.9")
    assert err.value.exit_code == 2


def test_every_version_names_the_table_families_it_changes():
    for version in registry.VERSIONS:
        assert version.families and set(version.families) <= set(registry.FAMILIES), version.version
    assert {f for v in registry.VERSIONS for f in v.families} == set(registry.FAMILIES)
    assert [v.version for v in registry.changing("sessions")] == ["2.0.0", "2.3.0", "2.5.0", "3.0.1"]
    assert [v.version for v in registry.changing("runs")] == ["3.0.0", "3.0.1"]
    with pytest.raises(UnknownVersion):
        registry.changing("memories")  # not a family of this registry yet


def test_every_table_step_has_its_sql_script_and_no_script_is_unlisted():
    from agno_migrate.migrate.sql.tables import step_module

    listed = {(s.point, s.family) for s in registry.TABLE_STEPS}
    scripts = {(point, fam) for point in {p for p, _ in listed} for fam in step_module(point).STEPS}
    assert scripts == listed
    for step in registry.TABLE_STEPS:
        assert step.family in registry.AGNO_WALKS, step
