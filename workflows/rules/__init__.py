"""The escalation rules: a pure state machine over pydantic models (this package's public face).

No I/O and no clock: every function takes the current instant ``now`` and returns a ``Decision`` (the next
state, the effects to carry out, and a sentence for the sender). The workflow is a thin shell that feeds it
events (actions, timers, computed schedules) and carries out the effects. Protocol rules come from the
protocol snapshot in the state; nothing about a particular authority is written here.

Each action has a guard (who may do it, and in which status) and an apply step (payload checks and the
change). ``available_actions`` runs the guards only, so the forms can offer exactly what is allowed now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.effects import RecordRefusal
from schemas.escalation import (
    ACTION_KINDS,
    Action,
    Actor,
    EscalationState,
    EscalationView,
    Flag,
    Refusal,
)
from workflows.rules._actions import (
    _apply_bypass,
    _apply_close,
    _apply_escalate,
    _apply_note,
    _apply_record_consultation,
    _apply_record_meeting,
    _apply_refer_to_cafcass,
    _apply_views,
    _apply_withdraw,
    _guard_bypass,
    _guard_close,
    _guard_escalate,
    _guard_note,
    _guard_record_consultation,
    _guard_record_meeting,
    _guard_refer_to_cafcass,
    _guard_withdraw,
)
from workflows.rules._answers import (
    _apply_accept,
    _apply_decide_extension,
    _apply_request_extension,
    _apply_respond,
    _apply_set_timescale,
    _guard_accept,
    _guard_decide_extension,
    _guard_request_extension,
    _guard_respond,
    _guard_set_timescale,
)
from workflows.rules._clock import (
    next_wakeup,
    on_scheduled,
    on_timer,
    wakeups,
)
from workflows.rules._core import (
    LONDON,
    Decision,
    Refused,
    _Change,
    _copy,
    addressees,
    current_stage,
    london_today,
    running_schedule,
    track_of,
)
from workflows.rules._cover import _apply_replace_officer, _guard_replace_officer
from workflows.rules._delivery import on_delivery, redeliver, still_stalled
from workflows.rules._duties import _apply_record_step, _guard_record_step
from workflows.rules._ladder import start
from workflows.rules._track_rules import (
    bypass_rule,
    cafcass_rule,
    entry_points,
    extension_rule,
    start_index,
    status_name,
    total_days,
)

__all__ = [
    "LONDON",
    "REFUSALS_KEPT",
    "Decision",
    "Refused",
    "addressees",
    "available_actions",
    "bypass_rule",
    "cafcass_rule",
    "check",
    "current_stage",
    "entry_points",
    "extension_rule",
    "handle",
    "london_today",
    "next_wakeup",
    "on_delivery",
    "on_scheduled",
    "on_timer",
    "redeliver",
    "refuse",
    "running_schedule",
    "start",
    "start_index",
    "status_name",
    "still_stalled",
    "total_days",
    "track_of",
    "view",
    "wakeups",
    "with_problem",
]


_Guard = Callable[[EscalationState, Actor], None]
_Apply = Callable[[_Change, Any], None]

_RULES: dict[str, tuple[_Guard, _Apply]] = {
    "respond": (_guard_respond, _apply_respond),
    "request_extension": (_guard_request_extension, _apply_request_extension),
    "decide_extension": (_guard_decide_extension, _apply_decide_extension),
    "set_timescale": (_guard_set_timescale, _apply_set_timescale),
    "accept": (_guard_accept, _apply_accept),
    "escalate": (_guard_escalate, _apply_escalate),
    "bypass": (_guard_bypass, _apply_bypass),
    "refer_to_cafcass": (_guard_refer_to_cafcass, _apply_refer_to_cafcass),
    "record_consultation": (_guard_record_consultation, _apply_record_consultation),
    "record_meeting": (_guard_record_meeting, _apply_record_meeting),
    "replace_officer": (_guard_replace_officer, _apply_replace_officer),
    "withdraw": (_guard_withdraw, _apply_withdraw),
    "close": (_guard_close, _apply_close),
    "add_note": (_guard_note, _apply_note),
    "record_views": (_guard_note, _apply_views),
    "record_step": (_guard_record_step, _apply_record_step),
}
assert set(_RULES) == set(ACTION_KINDS)


def handle(state: EscalationState, action: Action, now: datetime, *, honour: bool = True) -> Decision:
    """Apply an action, or raise ``Refused`` leaving ``state`` untouched.

    ``honour``: the escalation started with the shell's ``HONOURED`` patch (see ``start``)."""
    guard, apply = _RULES[action.kind]
    guard(state, action.actor)
    c = _Change(state, now, honour=honour)
    apply(c, action)
    return c.decision()


def check(state: EscalationState, action: Action, now: datetime, *, honour: bool = True) -> None:
    """Raise ``Refused`` if ``handle`` would refuse the action (used by update validators)."""
    handle(state, action, now, honour=honour)


REFUSALS_KEPT = 50
"""The refusals an escalation's state keeps (the newest); every one is also recorded by its effect."""


def refuse(state: EscalationState, action: str, actor: Actor, reason: str, now: datetime) -> Decision:
    """A refused signal: keep the refusal (not an escalation event) so the sender can be told."""
    s = _copy(state)
    refusal = Refusal(at=now, action=action[:64], actor=actor, reason=reason[:2_000])
    s.refusals = [*s.refusals[-(REFUSALS_KEPT - 1) :], refusal]
    s.refusals_total = max(s.refusals_total, len(state.refusals)) + 1
    return Decision(state=s, effects=[RecordRefusal(refusal=refusal)], outcome=f"refused: {reason}")


def with_problem(state: EscalationState, text: str) -> EscalationState:
    """The state with a problem the engineers must look at (a record or notice that failed for good)."""
    s = _copy(state)
    s.problems = [*s.problems[-19:], text[:1_000]]
    if Flag.NEEDS_ATTENTION not in s.flags:
        s.flags.append(Flag.NEEDS_ATTENTION)
    return s


def available_actions(state: EscalationState, actor: Actor) -> list[str]:
    """The actions ``actor`` may take now (payload checks aside)."""
    allowed = []
    for kind, (guard, _) in _RULES.items():
        try:
            guard(state, actor)
        except Refused:
            continue
        allowed.append(kind)
    return allowed


def view(state: EscalationState, now: datetime) -> EscalationView:
    """The state as a supervisor sees it at ``now``."""
    stage = current_stage(state)
    to, cc = addressees(state, stage)
    sched = running_schedule(state)
    total = state.total_schedule
    return EscalationView(
        escalation_id=state.escalation_id,
        authority=state.protocol.key,
        track=state.track,
        category=state.category,
        child_ref=state.child_ref,
        status=state.status,
        stage=stage.key,
        stage_name=stage.name,
        stage_number=state.stage_index + 1,
        stage_count=len(track_of(state).stages),
        formal=stage.formal,
        held_by=to,
        copied=cc,
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days_left=sched.working_days_left(now) if sched else None,
        total_deadline=total.due_at if total else None,
        total_deadline_date=total.due_date if total else None,
        total_working_days_left=total.working_days_left(now) if total else None,
        pending_extension=state.pending_extension,
        flags=list(state.flags),
        timeline=list(state.timeline),
        refusals=list(state.refusals),
        problems=list(state.problems),
        stalled=state.stall.shown if state.stall else None,
        child_status=state.child_status,
        severity=state.severity,
        duties=list(state.duties),
        collective=state.collective,
        part_of=state.part_of,
    )
