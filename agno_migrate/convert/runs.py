"""Runs-table rows: a session's runs as rows of the runs table, and the ids they are stored under.

The one rule for run ids, used by the 3.0.0 copy (SQL revision and MongoDB step) and by the Agno 1.x
import (SQL and MongoDB) alike: a run without ``run_id`` gets :func:`derived_run_id` of its session
and position (:func:`run_rows`); a run whose id another run already holds is stored under the
derived id of its session, position and id, and reported (:func:`rekey_runs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from agno_migrate import jsoncodec

RUN_ID_NAMESPACE = uuid.UUID("6f1d3c2a-5b7e-4f0a-9c1d-2e3f4a5b6c7d")
SESSION_TYPES = ("agent", "team", "workflow")


def derived_run_id(session_id: str, run_index: int, run_id: str | None = None) -> str:
    """A deterministic id for a run that has none (or whose id another session already uses)."""
    name = f"{session_id}\x1f{run_index}\x1f{run_id or ''}"
    return f"run-{uuid.uuid5(RUN_ID_NAMESPACE, name)}"


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def run_rows(session: dict, runs: Iterable[Any]) -> tuple[list[dict], list[tuple[int, str]]]:
    """Runs-table rows for every element of a session's legacy ``runs`` list.

    ``session`` holds ``session_id``, ``session_type``, ``user_id``, ``created_at``, ``updated_at``
    and the entity ids. Each dict run gives one row: ``run_index`` = its position, ``run_type`` =
    the session type, ``user_id`` from the session, ``status``/``parent_run_id``/``created_at`` from
    the run. A run without ``run_id`` gets :func:`derived_run_id` (written into its ``run_data``
    too, so Agno's readers see it). Returns (rows, skipped) where skipped lists (index, reason) for
    elements that are not runs at all (not a dict) — reported by the caller, never dropped silently.
    """
    rows: list[dict] = []
    skipped: list[tuple[int, str]] = []
    session_id = session["session_id"]
    session_type = session.get("session_type")
    for index, run in enumerate(runs):
        if not isinstance(run, dict):
            skipped.append((index, f"element is {type(run).__name__}, not a run object"))
            continue
        run_id = run.get("run_id")
        if not run_id:
            run_id = derived_run_id(session_id, index)
            run = {**run, "run_id": run_id}
        created = _epoch(run.get("created_at")) or _epoch(session.get("created_at")) or 0
        rows.append(
            {
                "run_id": str(run_id),
                "session_id": session_id,
                "run_type": session_type if session_type in SESSION_TYPES else _run_type(run),
                "agent_id": run.get("agent_id") or (session.get("agent_id") if session_type == "agent" else None),
                "team_id": run.get("team_id") or (session.get("team_id") if session_type == "team" else None),
                "workflow_id": run.get("workflow_id")
                or (session.get("workflow_id") if session_type == "workflow" else None),
                "user_id": session.get("user_id"),
                "parent_run_id": run.get("parent_run_id"),
                "status": _text(run.get("status")),
                "run_index": index,
                "run_data": run,
                "created_at": created,
                "updated_at": _epoch(run.get("updated_at")) or _epoch(session.get("updated_at")) or created,
            }
        )
    return rows, skipped


def run_ids_of(runs: Any) -> list[str]:
    """The ids the Python rules key the runs of a session's ``runs`` value by (``str(run_id)`` of
    each object element with a true ``run_id``; the value decoded as the 3.0.0 copy decodes it):
    what a set-based copy must know of the sessions it leaves to the Python rules."""
    try:
        blob = jsoncodec.decode_json(runs)
    except ValueError:
        return []
    if not isinstance(blob, list):
        return []
    return [str(run["run_id"]) for run in blob if isinstance(run, dict) and run.get("run_id")]


def _run_type(run: dict) -> str:
    if run.get("agent_id"):
        return "agent"
    if run.get("team_id"):
        return "team"
    return "workflow"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


# --- run ids already taken -------------------------------------------------------------------------


class RunKey(NamedTuple):
    """What a run to store is known by: its id, and its place (session and position)."""

    run_id: str
    session_id: str
    run_index: int

    @property
    def place(self) -> tuple[str, int]:
        """(session_id, run_index): where the run belongs."""
        return (self.session_id, self.run_index)


class Rekeyed(NamedTuple):
    """A run stored under a derived id because another run already held its id (reported)."""

    run_id: str
    """The run's own id."""
    session_id: str
    """Its session."""
    owner: str
    """The session of the run that holds the id."""
    new_id: str
    """The id it is stored under: ``derived_run_id(session_id, run_index, run_id)``."""


Owners = Callable[[list[str]], Mapping[str, tuple[str, int]]]
"""A lookup of stored runs: given run ids, ``run_id -> (session_id, run_index)`` for those stored."""


def rekey_runs(runs: Sequence[RunKey], owners_of: Owners) -> tuple[list[str | None], list[Rekeyed]]:
    """The id under which each of ``runs`` (in order) is stored, or None when it is stored already.

    The one rule of the 3.0.0 copy (SQL and MongoDB) and of the Agno 1.x import. A run is known by its
    place: its session and position. For each run, in order:

    * its id is not held (neither stored nor given to an earlier run of ``runs``): stored under it;
    * its id is held by the same place: the run is stored already (by an earlier, interrupted run of
      the same copy), so None;
    * its id is held by another place (another session, or another position of the same session):
      stored under ``derived_run_id(session_id, run_index, run_id)`` and reported as :class:`Rekeyed`
      — or None when that derived id already holds this place (stored by an interrupted run).

    (A run without ``run_id`` was given ``derived_run_id(session_id, run_index)`` by :func:`run_rows`.)
    ``owners_of`` is the caller's lookup of the stored runs (called once with the runs' ids, and once
    more with the derived ids when some id is held by another place); nothing else is read. Returns
    (ids, rekeyed): ``ids[i]`` is the id ``runs[i]`` is stored under, or None.
    """
    if not runs:
        return [], []
    owners = _owners(owners_of, dict.fromkeys(run.run_id for run in runs))
    clashing = [run for run in runs if owners.get(run.run_id, run.place) != run.place]
    if clashing:
        derived = (derived_run_id(run.session_id, run.run_index, run.run_id) for run in clashing)
        owners.update(_owners(owners_of, dict.fromkeys(derived)))
    ids: list[str | None] = []
    rekeyed: list[Rekeyed] = []
    for run in runs:
        place = run.place
        owner = owners.get(run.run_id)
        run_id = run.run_id
        if owner is not None:
            if owner == place:  # stored already
                ids.append(None)
                continue
            run_id = derived_run_id(run.session_id, run.run_index, run.run_id)
            rekeyed.append(Rekeyed(run.run_id, run.session_id, owner[0], run_id))
            if owners.get(run_id) == place:  # stored already, under the derived id
                ids.append(None)
                continue
        owners[run_id] = place
        ids.append(run_id)
    return ids, rekeyed


def _owners(owners_of: Owners, ids: dict) -> dict[str, tuple]:
    """``owners_of`` for the (ordered, distinct) ``ids``, its places as plain tuples."""
    return {run_id: tuple(place) for run_id, place in owners_of(list(ids)).items()}
