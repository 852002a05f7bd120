"""Agno 1.x runs → current runs: agent, team and workflow runs (v1 memory runs, workflow v2 runs),
their messages, tools, media and workflow steps (pure). What has no field of its own in the run
class is kept in ``metadata["agno_v1"]`` (see ``reserve``).
"""

from __future__ import annotations

from typing import Any

from agno_migrate.convert.metrics import convert_v1_metrics, is_number
from agno_migrate.convert.reserve import with_reserve

V1_ENTITY = {"agent": "agent", "team": "team", "workflow": "workflow", "workflow_v2": "workflow"}
"""Agno 1.x storage mode -> the kind of entity (and of run) it stores."""

# Fields of Agno 3.1.10's RunOutput / TeamRunOutput / WorkflowRunOutput that a converted v1 run may
# carry. ``events`` (v1 event objects have other shapes) and, for workflow runs, ``metrics`` (v1
# RunResponse metrics are not WorkflowMetrics) are left out on purpose: Agno would fail to read them.
_RUN_FIELDS = {
    "run_id",
    "session_id",
    "parent_run_id",
    "user_id",
    "content",
    "content_type",
    "reasoning_content",
    "reasoning_steps",
    "reasoning_messages",
    "model",
    "model_provider",
    "model_provider_data",
    "messages",
    "metrics",
    "additional_input",
    "tools",
    "images",
    "videos",
    "audio",
    "files",
    "response_audio",
    "citations",
    "references",
    "followups",
    "metadata",
    "session_state",
    "created_at",
    "status",
    "workflow_step_id",
}
_V2_RUN_FIELDS = {
    "agent": _RUN_FIELDS | {"agent_id", "agent_name", "workflow_id"},
    "team": _RUN_FIELDS | {"team_id", "team_name", "member_responses"},
    "workflow": {
        "run_id",
        "session_id",
        "parent_run_id",
        "user_id",
        "input",
        "content",
        "content_type",
        "workflow_id",
        "workflow_name",
        "workflow_step_id",
        "images",
        "videos",
        "audio",
        "files",
        "response_audio",
        "step_results",
        "step_executor_runs",
        "metadata",
        "created_at",
        "status",
    },
}

# v1 RunResponse.extra_data entries that have a field of their own now (Agno's convert_v1_fields_to_v2).
EXTRA_DATA_FIELDS = {
    "add_messages": "additional_input",
    "references": "references",
    "reasoning_steps": "reasoning_steps",
    "reasoning_messages": "reasoning_messages",
    "reasoning_content": "reasoning_content",
}
_MESSAGE_LISTS = ("messages", "additional_input", "reasoning_messages")


def v1_memory_runs(mode: str, runs: list) -> tuple[list, list]:
    """Converted runs of ``memory["runs"]`` for storage mode agent, team or workflow (v1).

    Elements are RunResponse/TeamRunResponse dicts (Memory v2), legacy AgentMemory
    ``{message, messages?, response}`` wrappers, or Workflow v1 ``{input, response}`` wrappers: the
    ``response`` is the run; a workflow ``input`` becomes the run's ``input``; the wrapper's other
    fields go to the run's ``metadata["agno_v1"]``. Returns (runs, unplaced) where unplaced lists
    ``{"index", "run"}`` for elements that hold no run object (kept, never dropped).
    """
    kind = V1_ENTITY[mode]
    runs_out: list = []
    unplaced: list = []
    for index, element in enumerate(runs):
        run = _unwrap_v1_run(element, kind)
        if run is None:
            unplaced.append({"index": index, "run": element})
        else:
            runs_out.append(run)
    return runs_out, unplaced


def _unwrap_v1_run(element: Any, kind: str) -> dict | None:
    if not isinstance(element, dict):
        return None
    if "response" not in element or ("run_id" in element and kind != "workflow"):
        return convert_v1_run(element, kind)
    response = element["response"]
    if not isinstance(response, dict):
        return None
    wrapper = {k: v for k, v in element.items() if k != "response" and v is not None}
    if kind == "workflow" and "input" in wrapper and "input" not in response:
        response = {**response, "input": wrapper.pop("input")}
    return convert_v1_run(response, kind, wrapper)


def v1_workflow_v2_runs(runs: list | None) -> tuple[list, list]:
    """Converted runs of a workflow_v2 row's ``runs`` column (WorkflowRunResponse dicts, with their
    ``step_responses`` becoming ``step_results``). Returns (runs, unplaced) like v1_memory_runs."""
    runs_out: list = []
    unplaced: list = []
    for index, element in enumerate(runs or []):
        if isinstance(element, dict):
            runs_out.append(convert_v1_run(element, "workflow"))
        else:
            unplaced.append({"index": index, "run": element})
    return runs_out, unplaced


def convert_v1_run(run: dict, kind: str, wrapper: dict | None = None) -> dict:
    """One v1 run dict → the current run dict of ``kind`` (agent, team or workflow).

    Messages, metrics, tools, media, team ``member_responses`` (recursively, kept inside the team
    run) and workflow ``step_responses`` (→ ``step_results``) are converted; ``extra_data`` entries
    are lifted to their fields; ``thinking`` is merged into ``reasoning_content``
    (``"{thinking}\\n{reasoning_content}"``, as Agno does). Every v1 field the run class of ``kind``
    has no place for (formatted_tool_calls, team_session_id, events, an agent run's team_id, a
    workflow run's metrics, …) and the ``wrapper`` fields are kept verbatim in
    ``metadata["agno_v1"]``.
    """
    out = {k: v for k, v in run.items() if v is not None}
    keep: dict = dict(wrapper or {})
    _lift_extra_data(out, keep)
    _merge_thinking(out, keep, "thinking", "reasoning_content")
    _convert_run_parts(out, kind)
    for key in [k for k in out if k not in _V2_RUN_FIELDS[kind]]:
        keep[key] = run.get(key, out[key])
        del out[key]
    if keep:
        metadata = out.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            keep["metadata"] = metadata
            metadata = None
        out["metadata"] = with_reserve(metadata, keep)
    return out


def _convert_run_parts(out: dict, kind: str) -> None:
    for name in _MESSAGE_LISTS:
        if isinstance(out.get(name), list):
            out[name] = [convert_v1_message(m) for m in out[name]]
    if isinstance(out.get("metrics"), dict) and kind != "workflow":
        out["metrics"] = convert_v1_metrics(out["metrics"], "run")
    if isinstance(out.get("tools"), list):
        out["tools"] = [convert_v1_tool(t) for t in out["tools"]]
    for name in ("images", "videos", "audio", "response_audio"):
        if name in out:
            out[name] = convert_v1_media(out[name])
    if kind == "team" and isinstance(out.get("member_responses"), list):
        out["member_responses"] = [_convert_member(m) for m in out["member_responses"]]
    if kind == "workflow" and isinstance(out.get("step_responses"), list) and "step_results" not in out:
        executor_runs: list = []
        out["step_results"] = _convert_steps(out.pop("step_responses"), executor_runs)
        if executor_runs:
            out["step_executor_runs"] = executor_runs


def _member_kind(run: dict) -> str:
    """A team member run is a team run when it names a team and no agent (nested teams)."""
    if run.get("agent_id") is None and (run.get("team_id") is not None or run.get("team_name") is not None):
        return "team"
    return "agent"


def _convert_member(member: Any) -> Any:
    return convert_v1_run(member, _member_kind(member)) if isinstance(member, dict) else member


def _lift_extra_data(out: dict, keep: dict) -> None:
    """v1 ``extra_data`` → add_messages→additional_input, references, reasoning_steps,
    reasoning_messages, reasoning_content (a field already set with another value wins; the
    extra_data value is then kept). Unmapped entries stay in the reserve as ``extra_data``."""
    if "extra_data" not in out:
        return
    extra = out.pop("extra_data")
    if not isinstance(extra, dict):
        keep["extra_data"] = extra
        return
    rest = {}
    for key, value in extra.items():
        field = EXTRA_DATA_FIELDS.get(key)
        if field is None:
            rest[key] = value
        elif value is None or out.get(field) == value:
            continue
        elif out.get(field) is None:
            out[field] = value
        else:
            rest[key] = value
    if rest:
        keep["extra_data"] = rest


def _merge_thinking(out: dict, keep: dict, thinking: str, reasoning: str) -> None:
    """``thinking`` → ``reasoning_content`` (both present: ``"{thinking}\\n{reasoning}"``, the v1
    ``thinking`` also kept so the two can be told apart again)."""
    if thinking not in out:
        return
    value = out.pop(thinking)
    current = out.get(reasoning)
    if not current:
        out[reasoning] = value
    elif not value:
        return
    else:
        out[reasoning] = f"{value}\n{current}"
        keep[thinking] = value


def convert_v1_message(message: Any) -> Any:
    """A v1 Message dict → current: metrics converted (message level), ``thinking`` merged into
    ``reasoning_content`` and ``redacted_thinking`` into ``redacted_reasoning_content`` like runs;
    a value that has to give way is kept in ``message["agno_v1"]``."""
    if not isinstance(message, dict):
        return message
    out = {k: v for k, v in message.items() if v is not None}
    keep: dict = {}
    if "thinking" in out or "redacted_thinking" in out:
        _merge_thinking(out, keep, "thinking", "reasoning_content")
        _merge_thinking(out, keep, "redacted_thinking", "redacted_reasoning_content")
    metrics = out.get("metrics")
    if metrics is not None and isinstance(metrics, dict):
        metrics = convert_v1_metrics(metrics, "message")
        if metrics:
            out["metrics"] = metrics
        else:
            del out["metrics"]
    return with_reserve(out, keep) if keep else out


def convert_v1_tool(tool: Any) -> Any:
    """A v1 ToolExecution dict: unchanged except its ``metrics`` (a v1 MessageMetrics), which are
    converted at message level so ``time`` becomes the ``duration`` Agno's ToolCallMetrics reads."""
    if isinstance(tool, dict) and isinstance(tool.get("metrics"), dict):
        return {**tool, "metrics": convert_v1_metrics(tool["metrics"], "message")}
    return tool


def convert_v1_media(value: Any) -> Any:
    """v1 media (one dict or a list) → current, deterministically (no new ids): VideoArtifact
    ``length`` → ``duration`` when a number, AudioArtifact ``base64_audio`` → ``content`` (when no
    content). Other fields are kept; base64 text stays text (Agno decodes it when reading)."""
    if isinstance(value, list):
        return [convert_v1_media(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if is_number(out.get("length")) and out.get("duration") is None:
        out["duration"] = out.pop("length")
    if "base64_audio" in out and out.get("content") is None:
        out["content"] = out.pop("base64_audio")
    return out


def _convert_steps(steps: list, executor_runs: list) -> list:
    """v1 ``step_responses`` (StepOutput dicts, nested lists for parallel steps) → ``step_results``."""
    return [_convert_step(step, executor_runs) for step in steps]


def _convert_step(step: Any, executor_runs: list) -> Any:
    """A v1 StepOutput → current: metrics converted (run level); ``response`` (the executor's run,
    which StepOutput no longer holds) → converted into the workflow run's ``step_executor_runs``
    and linked by ``step_run_id``; nested ``steps`` likewise."""
    if isinstance(step, list):
        return _convert_steps(step, executor_runs)
    if not isinstance(step, dict):
        return step
    out = {k: v for k, v in step.items() if k != "response"}
    response = step.get("response")
    if isinstance(response, dict):
        executor = convert_v1_run(response, _member_kind(response))
        executor_runs.append(executor)
        if out.get("step_run_id") is None and executor.get("run_id") is not None:
            out["step_run_id"] = executor["run_id"]
    elif response is not None:
        out["response"] = response
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = convert_v1_metrics(out["metrics"], "run")
    if isinstance(out.get("steps"), list):
        out["steps"] = _convert_steps(out["steps"], executor_runs)
    return out
