"""Review decisions deemed agreed (seed 002 Appendix 4, seed 003 3.3), as a pure state machine.

The officer sends a review's decisions to the roles of the protocol's ``deemed_agreement.sent_to`` (the
team manager). They may agree, or disagree before the end of ``working_days`` working days from receipt;
a disagreement opens informal resolution (``ProcessDecision.opens``: an escalation on the
``resolution_track``, raised by the officer). Silence until the deadline: the decisions stand and are to be
implemented, and everyone is told.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from schemas.effects import (
    Announcement,
    EffectItem,
    EscalationSnapshot,
    NotificationInput,
    Notify,
    Record,
    RecordEventInput,
)
from schemas.escalation import Actor, Concern, EventKind, RaiseConcern, Status
from schemas.process_models import (
    DEEMED_AGREEMENT,
    AgreeDecisions,
    DecisionsAction,
    DecisionsState,
    DisagreeDecisions,
    ProcessView,
    SendDecisions,
    WithdrawProcess,
)
from schemas.processes import DeemedAgreement
from schemas.protocol import RAISING_OFFICER
from workflows.rules import start as start_escalation
from workflows.rules._core import Refused, london_today
from workflows.rules._process_core import (
    DUE,
    Change,
    ProcessDecision,
    need_open,
    need_role,
    working_days_left,
)

Decision = ProcessDecision[DecisionsState]
STAGE = "sent"
"""The process's one stage: the decisions are with the manager."""


def rule_of(state: DecisionsState | SendDecisions) -> DeemedAgreement:
    rule = state.protocol.deemed_agreement
    if rule is None:
        raise Refused(
            f"{state.protocol.authority}'s protocol has no deemed_agreement section: its review decisions "
            "are not sent through this service"
        )
    return rule


def _long(day: object) -> str:
    return f"{day:%A %-d %B %Y}"


def start(inp: SendDecisions, now: datetime) -> Decision:
    """Send the decisions: the deadline is placed, then the sending is recorded with it."""
    if inp.carried is not None:
        return ProcessDecision(state=inp.carried)
    rule = rule_of(inp)
    p = inp.protocol
    if inp.officer.role not in rule.officer_roles:
        raise Refused(
            f"review decisions are sent by {p.role_names(rule.officer_roles)}, not by "
            f"{p.role_name(inp.officer.role)} ({inp.officer.role})"
        )
    if inp.review_date > london_today(now):
        raise Refused(f"the review date {_long(inp.review_date)} is in the future: give the day it was held")
    state = DecisionsState(
        process_id=inp.process_id,
        protocol=p,
        team=inp.team,
        status=Status.AWAITING_RESPONSE,
        stage=STAGE,
        child_ref=inp.child_ref,
        officer=inp.officer,
        review_date=inp.review_date,
        decisions=inp.decisions,
        sent_at=now,
    )
    c = Change(state, now)
    c.schedule(
        c.request(rule.working_days),
        Announcement(
            kind=EventKind.DECISIONS_SENT,
            text=f"The decisions of the review held on {_long(inp.review_date)} were sent to "
            f"{p.role_names(rule.sent_to)}. They stand and are to be implemented unless "
            f"{p.role_names(rule.sent_to)} disagrees by {DUE}.",
            actor=inp.officer,
            to=list(rule.sent_to),
            cc=[*rule.cc, RAISING_OFFICER],
        ),
    )
    c.outcome = "decisions sent"
    return c.decision()


def handle(state: DecisionsState, action: DecisionsAction, now: datetime) -> Decision:
    """Apply an action, or raise ``Refused`` leaving ``state`` untouched."""
    guard(state, action.actor, action.kind, now)
    c = Change(state, now)
    rule = rule_of(state)
    p = state.protocol
    if isinstance(action, AgreeDecisions):
        c.s.status, c.s.outcome, c.s.answered_by = Status.RESOLVED, "agreed", action.actor
        note = f" {action.note.strip()}" if action.note.strip() else ""
        c.event(
            EventKind.DECISIONS_AGREED,
            f"{p.role_name(action.actor.role)} agreed the decisions of the review held on "
            f"{_long(state.review_date)}: they stand and are to be implemented.{note}",
            actor=action.actor,
            to=[RAISING_OFFICER],
            cc=list(rule.cc),
        )
        c.outcome = "the decisions are agreed"
    elif isinstance(action, DisagreeDecisions):
        opens = resolution(state, action, now)
        c.s.status, c.s.outcome, c.s.answered_by = Status.CLOSED, "disagreed", action.actor
        c.s.disagreement, c.s.resolution_id = action.reason, opens.escalation_id
        c.event(
            EventKind.DECISIONS_DISAGREED,
            f"{p.role_name(action.actor.role)} disagrees with the decisions of the review held on "
            f"{_long(state.review_date)}: {action.reason.strip()} Informal resolution is opened as "
            f"escalation {opens.escalation_id}.",
            actor=action.actor,
            to=[RAISING_OFFICER],
            cc=[*rule.sent_to, *rule.cc],
            data={"resolution_id": opens.escalation_id},
        )
        c.opens = opens
        c.outcome = f"disagreement recorded; informal resolution opened as {opens.escalation_id}"
    else:
        assert isinstance(action, WithdrawProcess)
        c.s.status, c.s.outcome = Status.WITHDRAWN, "withdrawn"
        c.event(
            EventKind.WITHDRAWN,
            f"The decisions were withdrawn: {action.reason.strip()}",
            actor=action.actor,
            to=list(rule.sent_to),
            cc=list(rule.cc),
        )
        c.outcome = "withdrawn"
    return c.decision()


def guard(state: DecisionsState, actor: Actor, kind: str, now: datetime) -> None:
    """Who may do ``kind`` now; raise ``Refused``."""
    rule = rule_of(state)
    if kind == "withdraw":
        need_open(state, "be withdrawn")
        if actor.id != state.officer.id:
            raise Refused(f"only the officer who sent the decisions ({state.officer.id}) may withdraw them")
        return
    if kind not in ("agree", "disagree"):
        raise Refused(f"unknown action {kind!r}; actions: agree, disagree, withdraw")
    need_open(state, kind)
    need_role(state, actor, rule.sent_to, f"{kind} with the review decisions")
    due = state.schedule
    if kind == "disagree" and due is not None and now >= due.due_at:
        raise Refused(
            f"the time to disagree ended on {_long(due.due_date)}: the decisions are deemed agreed; raise a "
            "concern with the officer if something has changed"
        )


def resolution_id(state: DecisionsState) -> str:
    """The id of the escalation a disagreement opens: derived from the process's id, never reused."""
    digest = hashlib.sha256(f"informal-resolution\n{state.process_id}".encode()).hexdigest()
    return f"{state.protocol.key}-{state.child_ref}-{int(digest[:16], 16) % 10**10:010d}"


def resolution(state: DecisionsState, action: DisagreeDecisions, now: datetime) -> RaiseConcern:
    """The informal resolution a disagreement opens, raised by the officer; ``Refused`` if it could not
    start (checked with the escalation rules themselves)."""
    rule = rule_of(state)
    p = state.protocol
    raise_ = RaiseConcern(
        escalation_id=resolution_id(state),
        protocol=p,
        track=rule.resolution_track,
        category=rule.resolution_category,
        child_ref=state.child_ref,
        team=state.team,
        officer=state.officer,
        concern=Concern(
            summary=f"{p.role_name(action.actor.role)} ({action.actor.id}) disagrees with the decisions of "
            f"the review held on {_long(state.review_date)} ({state.process_id}): {action.reason.strip()}",
            impact_on_child="Until this is resolved the review's decisions are not agreed, so they cannot "
            "be implemented for the child.",
            requested_action="Resolve the disagreement with the officer informally and record the outcome "
            "on the child's file.",
        ),
    )
    start_escalation(raise_, now)
    return raise_


def on_timer(state: DecisionsState, now: datetime) -> Decision:
    """The reminder before the deadline, and the decisions standing once it passes."""
    c = Change(state, now)
    sched = state.schedule
    if state.status is not Status.AWAITING_RESPONSE or sched is None:
        return c.decision()
    rule = rule_of(state)
    p = state.protocol
    if sched.remind_at and not state.reminded and now >= sched.remind_at:
        c.s.reminded = True
        if now < sched.due_at:
            c.event(
                EventKind.REMINDER,
                f"Reminder: the decisions of the review held on {_long(state.review_date)} stand unless "
                f"you disagree by the end of {_long(sched.due_date)}.",
                to=list(rule.sent_to),
            )
    if now >= sched.due_at:
        c.s.status, c.s.outcome = Status.RESOLVED, "deemed_agreed"
        c.event(
            EventKind.DECISIONS_DEEMED_AGREED,
            f"No disagreement from {p.role_names(rule.sent_to)} by the end of {_long(sched.due_date)}: the "
            f"decisions of the review held on {_long(state.review_date)} are deemed agreed. They stand and "
            "are to be implemented within the timescales set.",
            to=[RAISING_OFFICER, *rule.sent_to],
            cc=list(rule.cc),
        )
    return c.decision()


def available_actions(state: DecisionsState, actor: Actor, now: datetime) -> list[str]:
    allowed = []
    for kind in ("agree", "disagree", "withdraw"):
        try:
            guard(state, actor, kind, now)
        except Refused:
            continue
        allowed.append(kind)
    return allowed


def view(state: DecisionsState, now: datetime) -> ProcessView:
    rule = rule_of(state)
    sched = state.schedule if state.status is Status.AWAITING_RESPONSE else None
    details = {
        "review held on": _long(state.review_date),
        "decisions": state.decisions,
        "sent by": f"{state.officer.id} ({state.protocol.role_name(state.officer.role)})",
    }
    if state.answered_by:
        details["answered by"] = (
            f"{state.answered_by.id} ({state.protocol.role_name(state.answered_by.role)})"
        )
    if state.disagreement:
        details["disagreement"] = state.disagreement
    return ProcessView(
        process_id=state.process_id,
        process=DEEMED_AGREEMENT,
        authority=state.protocol.key,
        child_ref=state.child_ref,
        status=state.status,
        stage=state.stage,
        stage_name=rule.label,
        outcome=state.outcome,
        held_by=list(rule.sent_to) if sched else [],
        copied=list(rule.cc),
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days_left=working_days_left(state, now),
        details=details,
        linked=state.resolution_id,
        flags=list(state.flags),
        timeline=list(state.timeline),
        refusals=list(state.refusals),
        problems=list(state.problems),
    )


# --- what the activities are given -----------------------------------------------------------------------


def effect_item(state: DecisionsState, effect: Record | Notify, run_id: str) -> EffectItem:
    """The record or notice of ``effect`` as the record store and the mail take it."""
    rule = rule_of(state)
    p = state.protocol
    sched = state.schedule if state.status is Status.AWAITING_RESPONSE else None
    summary = f"Decisions of the review held on {_long(state.review_date)}:\n{state.decisions}"
    if isinstance(effect, Record):
        snapshot = EscalationSnapshot(
            category=rule.label,
            team=state.team,
            raised_by=state.officer,
            raised_at=state.sent_at,
            stage_name=rule.label,
            stage_number=1,
            formal=False,
            held_by=list(rule.sent_to) if sched else [],
            deadline=sched.due_at if sched else None,
            deadline_date=sched.due_date if sched else None,
            flags=[f.value for f in state.flags],
            stage_label=rule.label,
            case_note_type=rule.case_note_type.replace("{officer}", p.case_note_label(state.officer.role)),
        )
        record = RecordEventInput(
            escalation_id=state.process_id,
            run_id=run_id,
            authority=p.key,
            child_ref=state.child_ref,
            track=DEEMED_AGREEMENT,
            status=state.status,
            stage=effect.entry.stage or state.stage,
            entry=effect.entry,
            snapshot=snapshot,
        )
        return EffectItem(record=record)
    entry = state.timeline[effect.entry_seq - 1]
    notice = NotificationInput(
        escalation_id=state.process_id,
        authority=p.key,
        child_ref=state.child_ref,
        team=state.team,
        service_area=None,
        kind=effect.kind,
        entry=entry,
        officer=state.officer,
        to_roles=effect.to,
        cc_roles=effect.cc,
        stage=state.stage,
        stage_name=rule.label,
        status=state.status,
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days=sched.working_days_left(entry.at) if sched else None,
        concern_summary=summary,
        idempotency_key=f"{state.process_id}/{entry.seq}",
        run_id=run_id,
        stage_label=rule.label,
    )
    return EffectItem(notify=notice)
