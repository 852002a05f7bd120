"""Agno 1.x metrics → current metrics, at message, run or session level (pure)."""

from __future__ import annotations

from typing import Any

from agno_migrate.convert.reserve import with_reserve
from agno_migrate.jsoncodec import FLOAT_MAX, note_nonstandard

# v1 metric names → current names (Agno's convert_v1_metrics_to_v2); v1 aliases of token counts.
METRIC_RENAMES = {
    "time": "duration",
    "audio_tokens": "audio_total_tokens",
    "input_audio_tokens": "audio_input_tokens",
    "output_audio_tokens": "audio_output_tokens",
    "cached_tokens": "cache_read_tokens",
}
TOKEN_ALIASES = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"}
_TOKEN_FIELDS = {
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "audio_total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "duration",
    "time_to_first_token",
}
_METRIC_FIELDS = {
    "message": _TOKEN_FIELDS | {"provider_metrics"},
    "run": _TOKEN_FIELDS | {"additional_metrics"},
    "session": _TOKEN_FIELDS | {"additional_metrics"},
}  # v1 had no per-model ``details``: a v1 key of that name is kept aside, not read as ModelMetrics
_METRIC_RESERVE = {"message": "provider_metrics", "run": "additional_metrics", "session": "additional_metrics"}
# v1 metric key -> the field it fills at each level (METRIC_RENAMES applied; keys absent here are kept aside)
_METRIC_TARGETS = {
    level: {
        **{name: name for name in fields if name not in METRIC_RENAMES},
        **{old: new for old, new in METRIC_RENAMES.items() if new in fields},
    }
    for level, fields in _METRIC_FIELDS.items()
}
_DICT_METRICS = frozenset(("additional_metrics", "provider_metrics"))
_TOKEN_ALIAS_ITEMS = tuple(TOKEN_ALIASES.items())


def convert_v1_metrics(metrics: dict, level: str) -> dict:
    """v1 metrics → current metrics at ``level`` ``message``, ``run`` or ``session``.

    * renamed: time→duration, audio_tokens→audio_total_tokens, input_audio_tokens→audio_input_tokens,
      output_audio_tokens→audio_output_tokens, cached_tokens→cache_read_tokens;
    * run level: v1 keeps one list entry per assistant message; numeric lists are summed (times too,
      in list order), a list holding anything else is kept verbatim;
    * prompt_tokens/completion_tokens are v1 aliases of input/output tokens: dropped when equal to
      them, used when those are missing, kept when they differ;
    * a None that has no field of its own (``timer``, details) is dropped (None is "absent");
      message and run metrics drop None, int 0 and empty dicts like
      Agno's own to_dict(); session metrics keep every value (Agno stores that dict as given);
    * anything else (prompt_tokens_details, completion_tokens_details, unknown keys, a name clash)
      is kept verbatim under ``agno_v1`` in additional_metrics (run, session) or provider_metrics
      (message).
    """
    run_level = level == "run"
    target = _METRIC_TARGETS[level]
    out: dict = {}
    keep: dict = {}
    # one pass with the rules inlined: this runs for every message of every run (the import's hot spot)
    for key, raw in metrics.items():
        name = target.get(key)
        if name is None:  # not a field of this level (the token aliases are placed below)
            if raw is not None and key not in TOKEN_ALIASES:
                keep[key] = raw
            continue
        value = raw
        if run_level and raw.__class__ is list:  # _summed, inlined
            for item in raw:
                if item.__class__ is not int and item.__class__ is not float:
                    break
            else:
                value = sum(raw)
                if value.__class__ is float and not -FLOAT_MAX <= value <= FLOAT_MAX:
                    note_nonstandard()
        kind = value.__class__
        if name in out:
            ok = False
        elif kind is int or kind is float:
            ok = name not in _DICT_METRICS
        elif value is None:
            ok = True
        elif name in _DICT_METRICS:
            ok = isinstance(value, dict)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            out[name] = value
        elif raw is not None:
            keep[key] = raw
    for alias, name in _TOKEN_ALIAS_ITEMS:  # the aliases give way to the fields they alias
        if alias in metrics:
            raw = metrics[alias]
            value = _summed(raw) if run_level else raw
            if value is None:
                continue
            current = out.get(name)
            if current is None and (value.__class__ is int or value.__class__ is float or is_number(value)):
                out[name] = value
            elif current != value:
                keep[alias] = raw
    if level != "session":  # _is_default_metric, with its usual cases first
        for key in [
            k
            for k, v in out.items()
            if (v == 0 if v.__class__ is int else v.__class__ is not float and _is_default_metric(v))
        ]:
            del out[key]
    if keep:
        reserve_field = _METRIC_RESERVE[level]
        out[reserve_field] = with_reserve(out.get(reserve_field), keep)
    return out


_NUMBER_TYPES = frozenset((int, float))


def _summed(value: Any) -> Any:
    """The sum of a list of numbers (left to right, ints stay ints); other values unchanged."""
    if type(value) is list:
        for item in value:
            if type(item) is not int and type(item) is not float:
                return value
        total = sum(value)
        if total.__class__ is float and not -FLOAT_MAX <= total <= FLOAT_MAX:
            note_nonstandard()
        return total
    return value


def is_number(value: Any) -> bool:
    """An int or a float (a subclass too), not a bool."""
    return type(value) in _NUMBER_TYPES or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_default_metric(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is int:
        return value == 0
    if kind is float or kind is bool:
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, dict) and not value
