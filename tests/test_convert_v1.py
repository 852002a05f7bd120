"""Agno 1.x session rows → current (Agno 3.x) sessions rows and runs: agno_migrate.convert.

Unit tests per rule on small hand-written rows, then an oracle test over the fixture pack: the same
200 sessions as Agno 1.8.4 wrote them (``v1``) and as Agno 3.1.10 stored them after a lossless
conversion (``3.1.10``). The two sides differ only by

* what Agno 3.1.10 adds on its own when it serialises its objects (``AGNO_ADDED`` below, removed
  from the oracle side), and
* v1 data the reference conversion dropped and we keep (``KEPT_BY_US`` below, removed from our side).

Everything else — ids, types, users, entity ids, timestamps, session data and metrics, metadata,
summaries, every run with its messages, metrics, tools, member responses and step results — must be
equal.
"""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest
import shared_tools
from agno_side import env as agno_env
from conftest import expected_file, fixture_bytes

from agno_migrate.convert import (
    V1_KEY,
    ConversionError,
    convert_v1_message,
    convert_v1_metrics,
    convert_v1_run,
    convert_v1_session,
    convert_v1_summary,
    run_rows,
)
from agno_migrate.jsoncodec import decode_json

# What Agno 3.1.10 writes on its own (the oracle was produced by its to_dict()); none of it is v1 data:
AGNO_ADDED = {
    "message.id": "a uuid4 the Message model gives every message it loads (random, so never comparable)",
    "run.events": "[] — RunOutput/TeamRunOutput/WorkflowRunOutput.to_dict() default; v1 runs here had no events",
    "tool.<null fields>": "ToolExecution.to_dict() writes every field, None for the ones v1 did not have "
    "(approval_id, approval_type, child_run_id, external_execution_silent, parent_tool_call_id, "
    "user_feedback_schema); v1 wrote its own None fields too, so None counts as absent on both sides",
    "step.<null fields>, step.is_paused=False": "StepOutput.to_dict() defaults (step_name, step_id, step_type, "
    "executor_type, executor_name, step_run_id: None; is_paused: False); None counts as absent on both sides",
    "workflow session metadata/session_data {}": "WorkflowSession.__post_init__ turns None into {} (compared "
    "as equal on both sides)",
    "runs row updated_at": "the time Agno wrote the row (ours: the session's updated_at)",
}
# v1 data the reference conversion dropped; we keep it, in these places:
KEPT_BY_US = {
    "session_data.agno_v1": "team_session_id column, leftover memory (user memories, AgentMemory messages and "
    "settings, other sessions' summaries), unplaced runs, unknown columns",
    "run.metadata.agno_v1": "formatted_tool_calls, member runs' team_session_id, AgentMemory run's message, "
    "events, extra_data rest, fields the run class has no place for",
    "metrics.additional_metrics.agno_v1": "run/session prompt_tokens_details, completion_tokens_details, "
    "prompt/completion tokens that differ from input/output tokens",
    "message.metrics.provider_metrics.agno_v1": "the same for message metrics",
    "message.agno_v1": "a message's thinking when it also had reasoning_content (none in the pack)",
    "run.input": "Workflow v1 WorkflowRun.input",
    "workflow_data.name": "workflow_v2 workflow_name column",
}
MODES = {"agent_sessions": "agent", "team_sessions": "team", "workflow_sessions": "workflow",
         "workflow_v2_sessions": "workflow_v2"}  # fmt: skip
JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary")


def row(**over):
    """An Agno 1.x agent-mode row as SqliteStorage returns it (JSON columns as text)."""
    base = {
        "session_id": "s-1",
        "user_id": "u-1",
        "memory": None,
        "session_data": None,
        "extra_data": None,
        "created_at": 1_700_000_000,
        "updated_at": None,
        "agent_id": "agent-1",
        "agent_data": json.dumps({"name": "A", "agent_id": "agent-1"}),
        "team_session_id": None,
    }
    base.update(over)
    return base


def memory_with(*runs, **other):
    return json.dumps({"summaries": {}, "memories": {}, "runs": list(runs), **other})


def v1_run(run_id="r-1", **over):
    base = {
        "content": "hello",
        "content_type": "str",
        "run_id": run_id,
        "agent_id": "agent-1",
        "agent_name": "A",
        "session_id": "s-1",
        "created_at": 1_700_000_100,
        "status": "COMPLETED",
    }
    base.update(over)
    return base


# --- the sessions row ----------------------------------------------------------------------------


def test_row_columns_ids_and_timestamps_are_kept_exactly():
    session, runs = convert_v1_session("agent", row(updated_at=None, extra_data=json.dumps({"k": [1, "ü"]})))
    assert set(session) == {"session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id",
                            "session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary",
                            "created_at", "updated_at"}  # fmt: skip
    assert session["session_id"] == "s-1" and session["session_type"] == "agent"
    assert (session["agent_id"], session["team_id"], session["workflow_id"]) == ("agent-1", None, None)
    assert session["user_id"] == "u-1"
    assert session["created_at"] == 1_700_000_000
    assert session["updated_at"] is None  # a v1 row written once: NULL stays NULL
    assert session["metadata"] == {"k": [1, "ü"]}  # extra_data → metadata, unchanged
    assert session["agent_data"] == {"name": "A", "agent_id": "agent-1"}
    assert session["summary"] is None and runs == []


@pytest.mark.parametrize(
    "mode, entity, stype",
    [("agent", "agent", "agent"), ("team", "team", "team"), ("workflow", "workflow", "workflow"),
     ("workflow_v2", "workflow", "workflow")],
)  # fmt: skip
def test_session_type_and_entity_per_mode(mode, entity, stype):
    data = {"name": "X"}
    r = {"session_id": "s", "user_id": None, "created_at": 5, "updated_at": 6, f"{entity}_id": "e-1",
         f"{entity}_data": data}  # fmt: skip
    session, _ = convert_v1_session(mode, r)
    assert session["session_type"] == stype
    assert session[f"{entity}_id"] == "e-1"
    assert session[f"{entity}_data"] == data
    others = {"agent", "team", "workflow"} - {entity}
    assert all(session[f"{o}_id"] is None and session[f"{o}_data"] is None for o in others)
    assert (session["created_at"], session["updated_at"]) == (5, 6)


@pytest.mark.parametrize(
    "encode",
    [lambda v: v, json.dumps, lambda v: json.dumps(json.dumps(v)), lambda v: json.dumps(v).encode("utf-8")],
    ids=["object", "text", "double-encoded", "bytes"],
)
def test_json_columns_in_any_encoding_give_the_same_result(encode):
    values = {"memory": {"runs": [v1_run()]}, "session_data": {"session_state": {"a": 1}},
              "extra_data": {"m": 1}, "agent_data": {"name": "A"}}  # fmt: skip
    expected = convert_v1_session("agent", row(**values))
    assert convert_v1_session("agent", row(**{k: encode(v) for k, v in values.items()})) == expected


def test_json_null_and_sql_null_are_both_none():
    for value in (None, "null", json.dumps("null")):
        session, runs = convert_v1_session("agent", row(memory=value, session_data=value, extra_data=value))
        assert session["session_data"] is None and session["metadata"] is None and runs == []


def test_session_metrics_are_renamed_and_keep_their_values():
    v1_metrics = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "audio_tokens": 0,
                  "input_audio_tokens": 0, "output_audio_tokens": 0, "cached_tokens": 3, "cache_write_tokens": 0,
                  "reasoning_tokens": 2, "prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": None,
                  "completion_tokens_details": None, "additional_metrics": None, "time": 1.5,
                  "time_to_first_token": 0.25, "timer": None}  # fmt: skip
    data = {"session_name": "n", "session_state": {"x": None}, "session_metrics": v1_metrics, "images": [{"id": "i"}]}
    session, _ = convert_v1_session("agent", row(session_data=json.dumps(data)))
    assert session["session_data"] == {
        "session_name": "n",
        "session_state": {"x": None},
        "images": [{"id": "i"}],
        "session_metrics": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "audio_total_tokens": 0,
                            "audio_input_tokens": 0, "audio_output_tokens": 0, "cache_read_tokens": 3,
                            "cache_write_tokens": 0, "reasoning_tokens": 2, "additional_metrics": None,
                            "duration": 1.5, "time_to_first_token": 0.25},
    }  # fmt: skip


def test_team_session_id_and_unknown_columns_are_kept_in_session_data():
    r = row(team_session_id="team-s-9", session_data=json.dumps({"session_name": "n"}))
    r.update({"workflow_session_id": "wf-s", "_version": 3, "_id": object(), "empty_col": 7})
    session, _ = convert_v1_session("agent", r)
    assert session["session_data"] == {
        "session_name": "n",
        V1_KEY: {"empty_col": 7, "team_session_id": "team-s-9", "workflow_session_id": "wf-s"},
    }  # MongoDB's _id and MongoDbStorage's _version counter are the store's bookkeeping, not Agno data


def test_leftover_memory_is_kept_in_session_data():
    memories = {"u-1": {"m1": {"memory_id": "m1", "memory": "likes tea", "topics": ["prefs"]}}}
    r = row(memory=memory_with(team_context={"s-1": {"x": 1}}, memories=memories), session_data=None)
    session, _ = convert_v1_session("agent", r)
    assert session["session_data"] == {V1_KEY: {"memory": {"memories": memories, "team_context": {"s-1": {"x": 1}}}}}


def test_workflow_v2_name_goes_to_workflow_data():
    r = {"session_id": "s", "workflow_id": "w", "workflow_name": "Pipeline 🔬", "runs": None,
         "workflow_data": json.dumps({"steps": [{"name": "a"}]})}  # fmt: skip
    session, _ = convert_v1_session("workflow_v2", r)
    assert session["workflow_data"] == {"steps": [{"name": "a"}], "name": "Pipeline 🔬"}
    r["workflow_data"] = {"name": "Other"}
    session, _ = convert_v1_session("workflow_v2", r)
    assert session["workflow_data"] == {"name": "Other"}
    assert session["session_data"] == {V1_KEY: {"workflow_name": "Pipeline 🔬"}}


def test_input_row_is_not_modified():
    mem = {"runs": [v1_run(metrics={"input_tokens": [1, 2]}, extra_data={"references": [1]}, thinking="t")],
           "summary": {"summary": "s"}}  # fmt: skip
    r = row(memory=mem, session_data={"session_metrics": {"time": 1.0}})
    before = copy.deepcopy(r)
    convert_v1_session("agent", r)
    assert r == before


# --- ConversionError -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over, reason",
    [
        ({"memory": "{not json"}, "column memory is not JSON"),
        ({"session_data": "[1, 2"}, "column session_data is not JSON"),
        ({"memory": json.dumps([1, 2])}, "column memory holds list"),
        ({"session_data": json.dumps("text")}, "column session_data holds str"),
        ({"extra_data": "7"}, "column extra_data holds int"),
        ({"agent_data": json.dumps([])}, "column agent_data holds list"),
        ({"memory": json.dumps({"runs": "abc"})}, "memory.runs holds str"),
        ({"session_id": None}, "session_id is NoneType"),
        ({"session_id": ""}, "session_id is str"),
    ],
)
def test_unreadable_rows_raise_conversion_error(over, reason):
    with pytest.raises(ConversionError, match=reason):
        convert_v1_session("agent", row(**over))


def test_conversion_error_is_a_value_error_and_names_bad_modes():
    assert issubclass(ConversionError, ValueError)
    with pytest.raises(ConversionError, match="unknown Agno 1.x storage mode 'agents'"):
        convert_v1_session("agents", row())
    with pytest.raises(ConversionError, match="column runs holds dict"):
        convert_v1_session("workflow_v2", {"session_id": "s", "runs": "{}"})


# --- summaries -----------------------------------------------------------------------------------


def test_memory_v2_summary_of_this_user_and_session():
    other = {"summary": "other session"}
    summaries = {"u-1": {"s-1": {"summary": "S", "topics": ["a"], "last_updated": "2024-05-01T10:00:00"},
                         "s-2": other}, "u-2": {"s-1": {"summary": "other user"}}}  # fmt: skip
    session, _ = convert_v1_session("agent", row(memory=memory_with(summaries=summaries)))
    assert session["summary"] == {"summary": "S", "topics": ["a"], "updated_at": "2024-05-01T10:00:00"}
    assert session["session_data"][V1_KEY]["memory"]["summaries"] == {
        "u-1": {"s-2": other}, "u-2": {"s-1": {"summary": "other user"}}}  # fmt: skip


def test_memory_v2_summary_without_user_is_under_default():
    summaries = {"default": {"s-1": {"summary": "D"}}}
    session, _ = convert_v1_session("agent", row(user_id=None, memory=memory_with(summaries=summaries)))
    assert session["summary"] == {"summary": "D"}
    assert session["session_data"] is None


def test_legacy_agent_memory_summary():
    memory = {"create_session_summary": True, "summary": {"summary": "L", "topics": ["x", "y"]}, "runs": []}
    session, _ = convert_v1_session("agent", row(memory=memory))
    assert session["summary"] == {"summary": "L", "topics": ["x", "y"]}
    assert session["session_data"] == {V1_KEY: {"memory": {"create_session_summary": True}}}


def test_summary_fields_agno_cannot_take_are_kept():
    summary, rest = convert_v1_summary({"summary": "S", "last_updated": 0, "topics": None, "extra": 1})
    assert summary == {"summary": "S", "updated_at": "1970-01-01T00:00:00+00:00"}  # epoch read as UTC
    assert rest == {"extra": 1}
    summary, rest = convert_v1_summary({"summary": "S", "last_updated": "yesterday"})
    assert summary == {"summary": "S"} and rest == {"last_updated": "yesterday"}
    assert convert_v1_summary({"topics": ["no text"]}) == (None, {})
    assert convert_v1_summary(None) == (None, {})


# --- metrics -------------------------------------------------------------------------------------


def test_run_metrics_lists_are_summed_and_renamed():
    v1 = {"input_tokens": [29, 40], "output_tokens": [1157, 3], "total_tokens": [1186, 43], "audio_tokens": [0, 0],
          "input_audio_tokens": [0, 0], "output_audio_tokens": [0, 0], "cached_tokens": [6, 0],
          "cache_write_tokens": [0, 0], "reasoning_tokens": [0, 5], "prompt_tokens": [29, 40],
          "completion_tokens": [1157, 3], "time": [3.4967, 1.25], "time_to_first_token": [0.8, 0.5]}  # fmt: skip
    assert convert_v1_metrics(v1, "run") == {
        "input_tokens": 69,
        "output_tokens": 1160,
        "total_tokens": 1229,
        "cache_read_tokens": 6,
        "reasoning_tokens": 5,
        "duration": 3.4967 + 1.25,
        "time_to_first_token": 0.8 + 0.5,
    }  # fmt: skip  (zeros dropped, as Agno's RunMetrics.to_dict() does)


def test_message_metrics_are_renamed_and_zeros_dropped():
    v1 = {"input_tokens": 5, "output_tokens": 0, "total_tokens": 5, "prompt_tokens": 5, "audio_tokens": 2,
          "output_audio_tokens": 0, "time": 0.5, "timer": None}  # fmt: skip
    assert convert_v1_metrics(v1, "message") == {"input_tokens": 5, "total_tokens": 5, "audio_total_tokens": 2,
                                                 "duration": 0.5}  # fmt: skip


def test_token_aliases_equal_dropped_missing_used_different_kept():
    assert convert_v1_metrics({"prompt_tokens": 7, "completion_tokens": 2}, "message") == {
        "input_tokens": 7, "output_tokens": 2}  # fmt: skip
    assert convert_v1_metrics({"input_tokens": [3], "prompt_tokens": [4]}, "run") == {
        "input_tokens": 3, "additional_metrics": {V1_KEY: {"prompt_tokens": [4]}}}  # fmt: skip
    assert convert_v1_metrics({"output_tokens": 3, "completion_tokens": 4}, "message") == {
        "output_tokens": 3, "provider_metrics": {V1_KEY: {"completion_tokens": 4}}}  # fmt: skip


def test_metrics_without_a_current_field_are_kept_verbatim():
    details = {"cached_tokens": 1, "audio_tokens": 0}
    run = convert_v1_metrics({"input_tokens": [1, 2], "prompt_tokens_details": [details, None],
                              "weird": "x", "timer": {"elapsed": 1}, "details": {"m": 1}}, "run")  # fmt: skip
    assert run == {
        "input_tokens": 3,
        "additional_metrics": {
            V1_KEY: {
                "prompt_tokens_details": [details, None],
                "weird": "x",
                "timer": {"elapsed": 1},
                "details": {"m": 1},
            }
        },
    }
    session = convert_v1_metrics({"input_tokens": 1, "completion_tokens_details": details,
                                  "additional_metrics": {"eval": 2}}, "session")  # fmt: skip
    assert session == {
        "input_tokens": 1,
        "additional_metrics": {"eval": 2, V1_KEY: {"completion_tokens_details": details}},
    }
    message = convert_v1_metrics({"input_tokens": 1, "prompt_tokens_details": details, "additional_metrics": None},
                                 "message")  # fmt: skip
    assert message == {"input_tokens": 1, "provider_metrics": {V1_KEY: {"prompt_tokens_details": details}}}


def test_a_run_metric_list_that_is_not_numbers_is_kept_verbatim():
    assert convert_v1_metrics({"input_tokens": [1, "2"]}, "run") == {
        "additional_metrics": {V1_KEY: {"input_tokens": [1, "2"]}}}  # fmt: skip


# --- runs ----------------------------------------------------------------------------------------


def test_memory_v2_runs_in_order():
    runs_in = [v1_run(f"r-{i}", metrics={"input_tokens": [i, 1]}) for i in range(3)]
    session, runs = convert_v1_session("agent", row(memory=memory_with(*runs_in)))
    assert [r["run_id"] for r in runs] == ["r-0", "r-1", "r-2"]
    assert [r["metrics"] for r in runs] == [{"input_tokens": 1}, {"input_tokens": 2}, {"input_tokens": 3}]
    rows, skipped = run_rows(session, runs)
    assert skipped == [] and [r["run_index"] for r in rows] == [0, 1, 2]
    assert {r["run_type"] for r in rows} == {"agent"} and rows[0]["created_at"] == 1_700_000_100


def test_memory_runs_keyed_by_session_id():
    runs = {"s-1": [v1_run("mine")], "s-other": [v1_run("theirs")]}
    session, converted = convert_v1_session("agent", row(memory=json.dumps({"runs": runs})))
    assert [r["run_id"] for r in converted] == ["mine"]
    assert session["session_data"][V1_KEY]["memory"]["runs"] == {"s-other": [v1_run("theirs")]}


def test_legacy_agent_memory_runs_are_their_response():
    message = {"role": "user", "content": "hi", "from_history": False}
    memory = {"messages": [message], "runs": [{"message": message, "response": v1_run("r-9")}]}
    session, runs = convert_v1_session("agent", row(memory=json.dumps(memory)))
    assert runs == [{**v1_run("r-9"), "metadata": {V1_KEY: {"message": message}}}]
    assert session["session_data"] == {V1_KEY: {"memory": {"messages": [message]}}}


def test_elements_that_are_not_runs_are_kept_not_dropped():
    memory = {"runs": [v1_run("r-1"), "junk", {"message": {"role": "user"}, "response": None}, 7]}
    session, runs = convert_v1_session("agent", row(memory=memory))
    assert [r["run_id"] for r in runs] == ["r-1"]
    assert session["session_data"][V1_KEY]["unplaced_runs"] == [
        {"index": 1, "run": "junk"}, {"index": 2, "run": {"message": {"role": "user"}, "response": None}},
        {"index": 3, "run": 7}]  # fmt: skip


def test_v1_only_run_fields_go_to_run_metadata():
    run = v1_run(formatted_tool_calls=["f(...)"], team_session_id="ts", events=[{"event": "RunResponse"}],
                 event="RunResponse", team_id="t-1", images=None)  # fmt: skip
    out = convert_v1_run(run, "agent")
    assert out == {**v1_run(), "metadata": {V1_KEY: {"formatted_tool_calls": ["f(...)"], "team_session_id": "ts",
                                                       "events": [{"event": "RunResponse"}], "event": "RunResponse",
                                                       "team_id": "t-1"}}}  # fmt: skip


def test_extra_data_is_lifted_to_its_fields():
    msg = {"role": "user", "content": "x", "metrics": {"time": 1.0}}
    extra = {"add_messages": [msg], "references": [{"query": "q"}], "reasoning_steps": [{"title": "t"}],
             "reasoning_messages": [msg], "reasoning_content": "why", "custom": 1}  # fmt: skip
    out = convert_v1_run(v1_run(extra_data=extra), "agent")
    converted = {"role": "user", "content": "x", "metrics": {"duration": 1.0}}
    assert out["additional_input"] == [converted] and out["reasoning_messages"] == [converted]
    assert out["references"] == [{"query": "q"}] and out["reasoning_steps"] == [{"title": "t"}]
    assert out["reasoning_content"] == "why"
    assert out["metadata"] == {V1_KEY: {"extra_data": {"custom": 1}}}
    clash = convert_v1_run(v1_run(reasoning_content="top", extra_data={"reasoning_content": "other"}), "agent")
    assert clash["reasoning_content"] == "top"
    assert clash["metadata"] == {V1_KEY: {"extra_data": {"reasoning_content": "other"}}}


def test_thinking_is_merged_into_reasoning_content():
    assert convert_v1_run(v1_run(thinking="T"), "agent")["reasoning_content"] == "T"
    both = convert_v1_run(v1_run(thinking="T", reasoning_content="R"), "agent")
    assert both["reasoning_content"] == "T\nR"  # Agno's own rule
    assert both["metadata"] == {V1_KEY: {"thinking": "T"}}  # so the two can be told apart again
    message = convert_v1_message({"role": "assistant", "thinking": "T", "reasoning_content": "R",
                                  "redacted_thinking": "X", "tool_calls": None})  # fmt: skip
    assert message == {"role": "assistant", "reasoning_content": "T\nR", "redacted_reasoning_content": "X",
                       V1_KEY: {"thinking": "T"}}  # fmt: skip


def test_messages_and_tools_are_converted():
    msgs = [{"role": "system", "content": "sys", "from_history": False},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
             "function": {"name": "f", "arguments": "{}"}}], "metrics": {"input_tokens": 3, "prompt_tokens": 3,
             "cached_tokens": 1, "time": 0.5}}]  # fmt: skip
    tools = [{"tool_call_id": "c", "tool_name": "f", "tool_args": {}, "result": "r", "metrics": {"time": 0.25},
              "requires_confirmation": None}]  # fmt: skip
    out = convert_v1_run(v1_run(messages=msgs, tools=tools), "agent")
    assert out["messages"] == [
        msgs[0],
        {
            "role": "assistant",
            "tool_calls": msgs[1]["tool_calls"],
            "metrics": {"input_tokens": 3, "cache_read_tokens": 1, "duration": 0.5},
        },
    ]
    assert out["tools"] == [{**tools[0], "metrics": {"duration": 0.25}}]


def test_team_member_responses_are_converted_recursively_inside_the_team_run():
    member = v1_run("m-1", agent_id="member-0", session_id="s-1-member-0", team_session_id="s-1",
                    metrics={"input_tokens": [1, 2], "time": [0.5, 0.25]}, formatted_tool_calls=["f()"])  # fmt: skip
    nested = {"run_id": "m-2", "team_id": "sub-team", "team_name": "Sub", "member_responses": [v1_run("m-3")]}
    team_run = {"run_id": "t-r", "team_id": "team-1", "team_name": "T", "agent_id": "stray", "content": "c",
                "member_responses": [member, nested], "metrics": {"output_tokens": [4]}}  # fmt: skip
    r = {"session_id": "s-1", "team_id": "team-1", "memory": {"runs": [team_run]}}
    session, runs = convert_v1_session("team", r)
    (out,) = runs
    assert out["metrics"] == {"output_tokens": 4}
    assert out["metadata"] == {V1_KEY: {"agent_id": "stray"}}  # a team run naming an agent reads as an agent run
    m1, m2 = out["member_responses"]
    assert m1["metrics"] == {"input_tokens": 3, "duration": 0.75}
    assert m1["session_id"] == "s-1-member-0"
    assert m1["metadata"] == {V1_KEY: {"team_session_id": "s-1", "formatted_tool_calls": ["f()"]}}
    assert m2["team_id"] == "sub-team" and m2["member_responses"][0]["run_id"] == "m-3"
    rows, _ = run_rows(session, runs)
    assert [(r["run_id"], r["run_type"], r["team_id"]) for r in rows] == [("t-r", "team", "team-1")]


def test_workflow_v1_runs_take_their_input_and_keep_their_metrics_aside():
    response = {"content": "# post", "content_type": "str", "run_id": "w-r", "session_id": "s", "agent_id": None,
                "workflow_id": "wf", "metrics": {"time": [1.0]}, "messages": None, "status": "COMPLETED",
                "created_at": 9}  # fmt: skip
    r = {"session_id": "s", "workflow_id": "wf", "memory": {"runs": [{"input": {"topic": "t"}, "response": response}]},
         "extra_data": None}  # fmt: skip
    session, runs = convert_v1_session("workflow", r)
    assert runs == [{"content": "# post", "content_type": "str", "run_id": "w-r", "session_id": "s",
                     "workflow_id": "wf", "status": "COMPLETED", "created_at": 9, "input": {"topic": "t"},
                     "metadata": {V1_KEY: {"metrics": {"time": [1.0]}}}}]  # fmt: skip
    assert run_rows(session, runs)[0][0]["run_type"] == "workflow"


def test_workflow_v2_runs_column_and_step_responses():
    steps = [{"content": "a", "response": None, "metrics": None, "success": True, "stop": False},
             [{"content": "p1", "metrics": {"input_tokens": [2, 3]}}],
             {"content": "b", "response": v1_run("exec-1", metrics={"time": [2.0]}), "success": True}]  # fmt: skip
    run = {"content": "b", "workflow_id": "wf", "workflow_name": "W", "run_id": "w-1", "session_id": "s",
           "step_responses": steps, "events": [{"event": "WorkflowStarted"}], "status": "COMPLETED"}  # fmt: skip
    r = {"session_id": "s", "workflow_id": "wf", "workflow_name": "W", "memory": None, "runs": json.dumps([run])}
    _, (out,) = convert_v1_session("workflow_v2", r)
    assert out["step_results"] == [
        {"content": "a", "metrics": None, "success": True, "stop": False},
        [{"content": "p1", "metrics": {"input_tokens": 5}}],
        {"content": "b", "success": True, "step_run_id": "exec-1"},
    ]
    assert out["step_executor_runs"] == [{**v1_run("exec-1"), "metrics": {"duration": 2.0}}]
    assert out["metadata"] == {V1_KEY: {"events": [{"event": "WorkflowStarted"}]}}
    assert "step_responses" not in out


def test_media_conversion_is_deterministic():
    video = {"id": "v", "url": "u", "length": 12, "eta": None}
    audio = {"id": "a", "base64_audio": "QUJD"}
    out = convert_v1_run(v1_run(videos=[video], audio=[audio], images=[{"id": "i", "url": "x"}]), "agent")
    assert out["videos"] == [{"id": "v", "url": "u", "duration": 12, "eta": None}]
    assert out["audio"] == [{"id": "a", "content": "QUJD"}]
    assert out["images"] == [{"id": "i", "url": "x"}]  # no new ids


# --- determinism and NUL bytes -------------------------------------------------------------------


def test_nul_bytes_survive():
    nul = "a\x00b"
    msg = {"role": "user", "content": nul}
    mem = {"runs": [v1_run(content=nul, messages=[msg], formatted_tool_calls=[nul])],
           "summaries": {"u-1": {"s-1": {"summary": nul}}}, "memories": {"u-1": {"m": {"memory": nul}}}}  # fmt: skip
    r = row(memory=json.dumps(mem), session_data=json.dumps({"session_state": {nul: nul}}),
            extra_data=json.dumps({"k": nul}), team_session_id=nul)  # fmt: skip
    assert "\\u0000" in r["memory"]  # JSON text holds it escaped, as the databases return it
    session, (run,) = convert_v1_session("agent", r)
    assert run["content"] == nul and run["messages"][0]["content"] == nul
    assert run["metadata"][V1_KEY]["formatted_tool_calls"] == [nul]
    assert session["summary"] == {"summary": nul}
    assert session["session_data"]["session_state"] == {nul: nul}
    assert session["session_data"][V1_KEY]["team_session_id"] == nul
    assert session["session_data"][V1_KEY]["memory"]["memories"]["u-1"]["m"]["memory"] == nul
    assert session["metadata"] == {"k": nul}
    rows, _ = run_rows(session, [run])
    assert json.loads(json.dumps(rows[0]["run_data"]))["content"] == nul


# --- the fixture pack ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v1_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("v1") / "v1.db"
    path.write_bytes(fixture_bytes("v1", "sqlite.db"))
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def oracle_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("v3") / "v3.db"
    path.write_bytes(fixture_bytes("3.1.10", "sqlite.db"))
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


def v1_rows(conn):
    for table, mode in MODES.items():
        for r in conn.execute(f"SELECT * FROM {table} ORDER BY session_id"):
            yield mode, dict(r)


def test_determinism_over_the_fixture(v1_db):
    for mode, r in v1_rows(v1_db):
        first = json.dumps(convert_v1_session(mode, copy.deepcopy(r)), ensure_ascii=False).encode("utf-8")
        second = json.dumps(convert_v1_session(mode, r), ensure_ascii=False).encode("utf-8")
        assert first == second, r["session_id"]
        rows, skipped = run_rows(*convert_v1_session(mode, r))
        again, _ = run_rows(*convert_v1_session(mode, r))
        assert skipped == [] and json.dumps(rows) == json.dumps(again)


def strings(value, out=None):
    """Every string in a JSON value (keys excluded: v1 field names are renamed on purpose)."""
    out = set() if out is None else out
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            strings(v, out)
    elif isinstance(value, list):
        for v in value:
            strings(v, out)
    return out


def test_every_v1_string_survives(v1_db):
    """Independent of the oracle: nothing a v1 row held as text is dropped (ids, contents, tool calls,
    summaries, user memories, formatted tool calls, …)."""
    for mode, r in v1_rows(v1_db):
        decoded = {k: decode_json(v) if k in ("memory", "session_data", "extra_data", "runs") or k.endswith("_data")
                   else v for k, v in r.items()}  # fmt: skip
        session, runs = convert_v1_session(mode, r)
        missing = strings(decoded) - strings(session) - strings(runs)
        assert not missing, (r["session_id"], sorted(missing)[:5])


def oracle_session(conn, session_id):
    o = dict(conn.execute("SELECT * FROM agno_sessions WHERE session_id = ?", (session_id,)).fetchone())
    for column in JSON_COLUMNS:
        o[column] = decode_json(o[column])
    runs = [dict(x) for x in conn.execute(
        "SELECT * FROM agno_runs WHERE session_id = ? ORDER BY run_index", (session_id,))]  # fmt: skip
    for x in runs:
        x["run_data"] = decode_json(x["run_data"])
    return o, runs


def _workflow_empty_as_none(session: dict) -> None:
    """Agno's WorkflowSession turns a None metadata/session_data into {}: the two read the same."""
    if session["session_type"] == "workflow":
        for column in ("metadata", "session_data"):
            if session[column] == {}:
                session[column] = None


def without_agno_added(session: dict, runs: list[dict]) -> tuple[dict, list[dict]]:
    """The oracle minus AGNO_ADDED."""
    _workflow_empty_as_none(session)
    for x in runs:
        x.pop("updated_at")
        _strip_agno_run(x["run_data"])
    return session, runs


def _strip_agno_run(run: dict) -> None:
    if run.get("events") == []:
        del run["events"]
    for message in run.get("messages") or []:
        message.pop("id", None)
    _nulls_as_absent(run)
    for member in run.get("member_responses") or []:
        _strip_agno_run(member)


def _nulls_as_absent(run: dict) -> None:
    """Tool and step fields that are None mean "not set" (both sides); StepOutput's is_paused=False too."""
    if "tools" in run:
        run["tools"] = [{k: v for k, v in t.items() if v is not None} for t in run["tools"]]
    if "step_results" in run:
        run["step_results"] = [
            {k: v for k, v in step.items() if v is not None and not (k == "is_paused" and v is False)}
            for step in run["step_results"]
        ]


def without_kept_by_us(mode: str, v1_row: dict, session: dict, runs: list[dict]) -> tuple[dict, list[dict]]:
    """Our output minus KEPT_BY_US (each of them is checked where it belongs by the unit tests above)."""
    data = session["session_data"]
    if data is not None:
        data.pop(V1_KEY, None)
        if data.get("session_metrics") is not None:
            _strip_reserve(data["session_metrics"], "additional_metrics", empty=None)
        if not data and decode_json(v1_row["session_data"]) is None:
            session["session_data"] = None
    _workflow_empty_as_none(session)
    v1_workflow_data = decode_json(v1_row.get("workflow_data")) or {}
    if v1_row.get("workflow_name") is not None and "name" not in v1_workflow_data:
        del session["workflow_data"]["name"]
    for x in runs:
        x.pop("updated_at")
        if mode == "workflow":
            x["run_data"].pop("input", None)  # Workflow v1 WorkflowRun.input
        _strip_our_run(x["run_data"])
    return session, runs


def _strip_our_run(run: dict) -> None:
    _strip_reserve(run, "metadata")
    _nulls_as_absent(run)  # v1 tools and steps wrote their None fields too
    if "metrics" in run:
        _strip_reserve(run["metrics"], "additional_metrics")
    for message in run.get("messages") or []:
        message.pop(V1_KEY, None)
        if "metrics" in message:
            _strip_reserve(message["metrics"], "provider_metrics")
    for member in run.get("member_responses") or []:
        _strip_our_run(member)


def _strip_reserve(container: dict, field: str, empty="drop") -> None:
    value = container.get(field)
    if not isinstance(value, dict) or V1_KEY not in value:
        return
    rest = {k: v for k, v in value.items() if k != V1_KEY}
    if rest:
        container[field] = rest
    elif empty == "drop":
        del container[field]
    else:
        container[field] = empty


def test_oracle_agno_3_1_10_fixture(v1_db, oracle_db):
    """Every v1 session converted equals the same session as Agno 3.1.10 stored it (sessions row and
    runs-table rows in run_index order), after removing AGNO_ADDED from the oracle and KEPT_BY_US
    from ours."""
    compared = {"sessions": 0, "runs": 0, "summaries": 0, "members": 0, "steps": 0}
    kept = {"session_data": 0, "run_metadata": 0, "input": 0, "workflow_name": 0}
    for mode, r in v1_rows(v1_db):
        sid = r["session_id"]
        session, runs = convert_v1_session(mode, r)
        rows, skipped = run_rows(session, runs)
        assert skipped == []
        kept["session_data"] += V1_KEY in (session["session_data"] or {})
        kept["run_metadata"] += sum(V1_KEY in (x.get("metadata") or {}) for x in runs)
        kept["input"] += sum("input" in x for x in runs)
        kept["workflow_name"] += r.get("workflow_name") is not None
        ours = without_kept_by_us(mode, r, json.loads(json.dumps(session)), json.loads(json.dumps(rows)))
        expected = without_agno_added(*oracle_session(oracle_db, sid))
        assert ours[0] == expected[0], sid
        assert len(ours[1]) == len(expected[1]), sid
        for mine, theirs in zip(ours[1], expected[1], strict=False):
            assert mine == theirs, (sid, mine["run_id"])
        compared["sessions"] += 1
        compared["runs"] += len(rows)
        compared["summaries"] += session["summary"] is not None
        compared["members"] += sum(len(x.get("member_responses") or []) for x in runs)
        compared["steps"] += sum(len(x.get("step_results") or []) for x in runs)
    # the comparison covered all of the pack, and what we keep beyond the oracle was exercised
    assert compared == {"sessions": 200, "runs": 754, "summaries": 32, "members": 117, "steps": 32}
    assert all(kept.values()), kept


@pytest.mark.agno
def test_real_agno_reads_the_converted_fixture(v1_db, tmp_path):
    """Agno 3.1.10 itself (the reference environment, tests/agno_side/env.py) reads every converted
    session and run (written into an empty copy of its own 3.1.10 SQLite database) as the fixture's
    expected file says (tests/agno_side/agno_verify.py); ../shared/tools agrees where it is present."""
    path = tmp_path / "converted.db"
    path.write_bytes(fixture_bytes("3.1.10", "sqlite.db"))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM agno_runs")
        conn.execute("DELETE FROM agno_sessions")
        for mode, r in v1_rows(v1_db):
            session, runs = convert_v1_session(mode, r)
            _insert(conn, "agno_sessions", {k: _json(v) if k in JSON_COLUMNS else v for k, v in session.items()})
            for x in run_rows(session, runs)[0]:
                _insert(conn, "agno_runs", {**x, "run_data": _json(x["run_data"])})
    conn.close()
    expected = expected_file("v1", "sqlite", tmp_path)
    result = agno_env.verify(path, expected)
    assert result.ok and result.summary == "verified 200/200 sessions, 0 mismatches", result.output
    shared_tools.cross_check(str(path), expected)


def _json(value):
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _insert(conn, table: str, values: dict) -> None:
    columns = ", ".join(values)
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})", list(values.values()))
