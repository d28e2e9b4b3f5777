"""The escalation's search attributes: what supervisors and engineers filter on in Temporal's visibility.

None holds personal data: authority and track are protocol keys, stage and status are the rules' own
words, the deadline is a date and flags are fixed names, with, while the escalation is stalled, its reason
in role and team keys (``stalled: nobody holds team_manager for team-a``). The reason rides in the flags,
already registered, rather than in an attribute of its own: an escalation that upserts an attribute the
namespace lacks fails its workflow tasks, and namespaces registered before it existed would lack it.
The child's reference stays out too (it is in the workflow id, which is opaque).

A workflow keeps its attributes up to date only if it was started with them (``initial``), which a
starter does when the namespace has them registered (``escalate up`` registers them; a production
namespace has them created once, see ``docs/deploy.md``). The choice is read from the workflow's start
event, so it is the same at replay and histories recorded without attributes replay unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from schemas.escalation import EscalationState, Status
from workflows import rules

AUTHORITY = SearchAttributeKey.for_keyword("EscalationAuthority")
TRACK = SearchAttributeKey.for_keyword("EscalationTrack")
STAGE = SearchAttributeKey.for_keyword("EscalationStage")
STATUS = SearchAttributeKey.for_keyword("EscalationStatus")
DEADLINE = SearchAttributeKey.for_datetime("EscalationDeadline")
FLAGS = SearchAttributeKey.for_keyword_list("EscalationFlags")

ALL: tuple[SearchAttributeKey[Any], ...] = (AUTHORITY, TRACK, STAGE, STATUS, DEADLINE, FLAGS)
"""Every attribute, for registering them (``--search-attribute NAME=TYPE`` on the dev server)."""


def registration_flags() -> list[str]:
    """``temporal server start-dev`` arguments that register every attribute."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"]
    return flags


def initial(authority: str, track: str, stage: str, status: Status) -> TypedSearchAttributes:
    """The attributes a starter sets when it starts an escalation's workflow."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(AUTHORITY, authority),
            SearchAttributePair(TRACK, track),
            SearchAttributePair(STAGE, stage),
            SearchAttributePair(STATUS, status.value),
        ]
    )


def current(state: EscalationState) -> dict[str, Any]:
    """The values that change as the escalation moves, keyed by attribute name."""
    running = rules.running_schedule(state)
    return {
        STAGE.name: rules.current_stage(state).key,
        STATUS.name: state.status.value,
        DEADLINE.name: running.due_at if running else None,
        FLAGS.name: sorted(f.value for f in state.flags) + ([state.stall.shown] if state.stall else []),
    }


def updates(before: dict[str, Any], after: dict[str, Any]) -> Sequence[SearchAttributeUpdate[Any]]:
    """The upserts that take the attributes from ``before`` to ``after`` (none when nothing changed)."""
    changed: list[SearchAttributeUpdate[Any]] = []
    if before.get(STAGE.name) != after[STAGE.name]:
        changed.append(STAGE.value_set(after[STAGE.name]))
    if before.get(STATUS.name) != after[STATUS.name]:
        changed.append(STATUS.value_set(after[STATUS.name]))
    if before.get(DEADLINE.name) != after[DEADLINE.name]:
        deadline: datetime | None = after[DEADLINE.name]
        changed.append(DEADLINE.value_set(deadline) if deadline else DEADLINE.value_unset())
    if before.get(FLAGS.name, []) != after[FLAGS.name]:
        flags: list[str] = after[FLAGS.name]
        changed.append(FLAGS.value_set(flags) if flags else FLAGS.value_unset())
    return changed


__all__ = [
    "ALL",
    "AUTHORITY",
    "DEADLINE",
    "FLAGS",
    "STAGE",
    "STATUS",
    "TRACK",
    "current",
    "initial",
    "registration_flags",
    "updates",
]
