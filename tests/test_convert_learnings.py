"""The learnings re-key of Agno 3.0.0 (``convert.learnings``), pinned to Agno 3.1.10's own
``rekey_user_entity_learnings``: the same rows go through Agno's function (in the reference
environment, tests/agno_side/agno_learnings.py) and through ours; the rows left and the report must
agree, except where ours keeps what Agno loses (timestamps of moved rows, a taken quarantine key)."""

from __future__ import annotations

import copy
import json

import pytest

from agno_migrate.convert.learnings import (
    Merge,
    Move,
    apply_plan,
    legacy_entity_id,
    plan_rekey,
    user_entity_id,
)

AGNO_FIELDS = (
    "learning_id",
    "learning_type",
    "namespace",
    "user_id",
    "agent_id",
    "team_id",
    "session_id",
    "entity_id",
    "entity_type",
    "content",
    "metadata",
)


def row(learning_id, *, user_id="alice", entity_id="acme", entity_type="company", namespace="user", **kw):
    base = {
        "learning_id": learning_id,
        "learning_type": "entity_memory",
        "namespace": namespace,
        "user_id": user_id,
        "agent_id": "agent-1",
        "team_id": None,
        "session_id": "s-old",
        "entity_id": entity_id,
        "entity_type": entity_type,
        "content": {"name": entity_id, "facts": [{"id": "f1", "content": "Founded 1999"}]},
        "metadata": None,
        "created_at": 1_700_000_000,
        "updated_at": 1_700_000_100,
    }
    base.update(kw)
    return base


def legacy(entity_id, **kw):
    return row(legacy_entity_id(entity_id, kw.get("entity_type", "company"), "user"), entity_id=entity_id, **kw)


def keyed(user_id, entity_id, **kw):
    return row(user_entity_id(user_id, kw.get("entity_type", "company"), entity_id), user_id=user_id,
               entity_id=entity_id, **kw)  # fmt: skip


def rows_agno_agrees_with():
    return [
        legacy("plain"),  # re-keyed
        legacy(  # merged into the row the 3.x application already wrote
            "acme",
            metadata={"source": "old"},
            content={
                "name": "ACME",
                "aliases": ["Acme Inc"],
                "description": "old description",
                "facts": [{"id": "f1", "content": "Founded  1999"}, {"id": "f2", "content": "Makes anvils"}],
                "events": [{"content": "IPO", "date": "2001-01-01"}],
                "relationships": [{"entity_id": "bob", "entity_type": "person", "relation": "ceo"}],
                "properties": {"hq": "Phoenix", "size": "big"},
                "extra": "only in the source",
            },
        ),
        keyed(
            "alice",
            "acme",
            agent_id="agent-2",
            session_id="s-new",
            metadata={"source": "new"},
            content={
                "name": "Acme Corporation",
                "description": "",
                "facts": [{"id": "x9", "content": "founded 1999"}],
                "events": [],
                "properties": {"size": "huge"},
            },
        ),
        legacy("globex", user_id="bob", content={"name": "Globex", "user_id": "carol"}),  # contaminated
        legacy("initech", user_id=None),  # unowned
        row("entity_user_None_hooli", entity_id="hooli", entity_type=None),  # malformed (no type)
        legacy("umbrella", content="not json"),  # malformed (content does not parse)
        keyed("dave", "stark"),  # already keyed
        keyed("erin", "wayne", content={"name": "Wayne", "user_id": "frank"}),  # contaminated_keyed
        legacy("numeric", user_id=123, content={"name": "n", "user_id": "123"}),  # same user: str(123)
        legacy("cyberdyne", user_id="gina"),  # its target's content does not parse: conflict
        keyed("gina", "cyberdyne", content="{broken"),
        legacy("tyrell", user_id="hank", content={"name": "T", "facts": "not a list"}),  # merge fails
        keyed("hank", "tyrell", content={"name": "Tyrell"}),
        row("entity_global_company_acme", namespace="global"),  # another namespace: not walked
        row("user_profile_alice", learning_type="user_profile", namespace="user", entity_id=None),
    ]


@pytest.fixture(scope="module")
def agno_rekey(tmp_path_factory):
    from agno_side import env

    out = tmp_path_factory.mktemp("agno") / "rekeyed.json"

    def run(rows):
        done = env.subprocess.run(
            [str(env.agno_python()), str(env.HERE / "agno_learnings.py"), str(out)],
            input=json.dumps(rows),
            capture_output=True,
            text=True,
            timeout=300,
            env=env.clean_env(),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(out.read_text())

    return run


def by_id(rows):
    return {r["learning_id"]: {k: r.get(k) for k in AGNO_FIELDS} for r in rows}


def test_same_rows_and_report_as_agno(agno_rekey):
    rows = rows_agno_agrees_with()
    agno = agno_rekey(copy.deepcopy(rows))
    plan = plan_rekey(copy.deepcopy(rows))
    ours = apply_plan(rows, plan)

    assert by_id(ours) == by_id(agno["rows"])
    report = {k: v for k, v in agno["report"].items() if k != "dry_run"}
    assert plan.report == report
    # the walk met every case at least once (the pin covers them all)
    for bucket in ("rekeyed", "merged", "quarantined", "unowned", "malformed", "conflicts", "failed"):
        assert plan.report[bucket], bucket
    assert plan.report["keyed"] == 3 and len(plan.report["contaminated_keyed"]) == 1


def test_moves_keep_the_row_and_its_timestamps():
    rows = rows_agno_agrees_with()
    plan = plan_rekey(rows)
    moved = {m.old_id: m for m in plan.moves}
    plain = legacy_entity_id("plain", "company", "user")
    assert moved[plain] == Move(plain, user_entity_id("alice", "company", "plain"), "user")
    globex = legacy_entity_id("globex", "company", "user")
    assert moved[globex] == Move(globex, "entity_quarantined_user_company_globex", "quarantined_user")
    after = {r["learning_id"]: r for r in apply_plan(rows, plan)}
    kept = after[user_entity_id("alice", "company", "plain")]
    assert (kept["created_at"], kept["updated_at"]) == (1_700_000_000, 1_700_000_100)


def test_merge_names_what_agno_drops():
    plan = plan_rekey(rows_agno_agrees_with())
    (merge,) = [m for m in plan.merges if m.target_id == user_entity_id("alice", "company", "acme")]
    assert isinstance(merge, Merge)
    content = merge.fields["content"]
    # the target wins; the source fills gaps and its new entries go first
    assert content["name"] == "Acme Corporation" and content["aliases"] == ["ACME", "Acme Inc"]
    assert content["description"] == "old description" and content["extra"] == "only in the source"
    assert [f["id"] for f in content["facts"]] == ["f2", "x9"]
    assert content["properties"] == {"hq": "Phoenix", "size": "huge"}
    assert merge.fields["metadata"] == {"source": "new"} and merge.fields["agent_id"] == "agent-1"
    assert set(merge.dropped) == {
        "content.facts[0]",  # "Founded  1999": the target's "founded 1999" is the same fact
        "content.properties.size",
        "metadata",
        "target agent_id",  # Agno writes the source's columns over the target's
        "target session_id",
    }
    assert merge.fields["updated_at"] == 1_700_000_100


def test_a_taken_quarantine_key_is_a_conflict_where_agno_overwrites(agno_rekey):
    rows = [
        legacy("globex", user_id="bob", content={"name": "Globex", "user_id": "carol"}),
        row(
            "entity_quarantined_user_company_globex",
            namespace="quarantined_user",
            content={"name": "quarantined earlier"},
        ),  # fmt: skip
    ]
    agno = agno_rekey(copy.deepcopy(rows))
    after = by_id(agno["rows"])
    assert len(after) == 1  # Agno: the earlier quarantined row is overwritten
    assert after["entity_quarantined_user_company_globex"]["content"] == {"name": "Globex", "user_id": "carol"}

    plan = plan_rekey(rows)
    assert not plan.moves and plan.report["conflicts"] == [rows[0]["learning_id"]]
    assert by_id(apply_plan(rows, plan)) == by_id(rows)


def test_nothing_to_do_without_legacy_rows():
    rows = [keyed("dave", "stark"), row("entity_global_company_acme", namespace="global")]
    plan = plan_rekey(rows)
    assert plan.changes == 0 and plan.report["scanned"] == 1 and plan.report["keyed"] == 1
