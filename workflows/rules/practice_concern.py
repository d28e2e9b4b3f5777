"""Concerns about an officer's own practice (seed 001 section 6, seed 003 1.6), as a pure state machine.

Stage ``investigation``: the roles of ``practice_concerns.investigated_by`` (the QA manager) investigate
and feed back within ``working_days`` working days of receipt. The person who raised it accepts the
feedback (resolved) or, not satisfied, escalates; no feedback in time escalates it by itself. Stage
``escalated``: the roles of ``escalates_to`` (the AD for Quality Assurance) answer, within
``escalation_working_days`` if the protocol sets them; theirs is the last word the protocol names.

A practice concern is about a member of staff, not a child's care: it goes in the event log, never on a
child's file (every entry says ``case_note: false``).
"""

from __future__ import annotations

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
from schemas.escalation import Actor, EventKind, Flag, Status
from schemas.process_models import (
    NO_CHILD,
    PRACTICE_CONCERN,
    AcceptFeedback,
    EscalatePractice,
    GiveFeedback,
    PracticeAction,
    PracticeState,
    ProcessView,
    RaisePracticeConcern,
    WithdrawProcess,
)
from schemas.processes import PracticeConcerns
from schemas.protocol import RAISING_OFFICER
from workflows.rules._core import Refused
from workflows.rules._process_core import (
    DUE,
    Change,
    ProcessDecision,
    need_open,
    need_role,
    working_days_left,
)

Decision = ProcessDecision[PracticeState]
INVESTIGATION = "investigation"
ESCALATED = "escalated"
NOT_ON_A_CHILDS_FILE = {"case_note": False}


def rule_of(state: PracticeState | RaisePracticeConcern) -> PracticeConcerns:
    rule = state.protocol.practice_concerns
    if rule is None:
        raise Refused(
            f"{state.protocol.authority}'s protocol has no practice_concerns section: concerns about an "
            "officer's practice are not handled through this service"
        )
    return rule


def _long(day: object) -> str:
    return f"{day:%A %-d %B %Y}"


def _who(state: PracticeState | RaisePracticeConcern, actor: Actor) -> str:
    return f"{state.protocol.role_name(actor.role)} {actor.id}"


def start(inp: RaisePracticeConcern, now: datetime) -> Decision:
    if inp.carried is not None:
        return ProcessDecision(state=inp.carried)
    rule = rule_of(inp)
    p = inp.protocol
    if inp.about.role not in rule.about_roles:
        raise Refused(
            f"a practice concern is about {p.role_names(rule.about_roles)}, not about "
            f"{p.role_name(inp.about.role)} ({inp.about.role}); raise other concerns with their line manager"
        )
    allowed = rule.raised_by or list(p.roles)
    if inp.raised_by.role not in allowed:
        raise Refused(
            f"practice concerns are raised by {p.role_names(allowed)}, not by "
            f"{p.role_name(inp.raised_by.role)} ({inp.raised_by.role})"
        )
    if inp.raised_by.id == inp.about.id:
        raise Refused("a concern about your own practice is for your line manager, not this process")
    state = PracticeState(
        process_id=inp.process_id,
        protocol=p,
        team=inp.team,
        status=Status.AWAITING_RESPONSE,
        stage=INVESTIGATION,
        raised_by=inp.raised_by,
        about=inp.about,
        child_ref=inp.child_ref,
        summary=inp.summary,
        raised_at=now,
    )
    c = Change(state, now)
    c.schedule(
        c.request(rule.working_days),
        Announcement(
            kind=EventKind.PRACTICE_CONCERN_RAISED,
            text=f"A concern about the practice of {_who(inp, inp.about)} was referred to "
            f"{p.role_names(rule.investigated_by)}, who investigates and feeds back by {DUE}.",
            actor=inp.raised_by,
            to=list(rule.investigated_by),
            cc=[*rule.cc, RAISING_OFFICER],
        ),
    )
    c.outcome = "practice concern referred"
    return c.decision()


def handle(state: PracticeState, action: PracticeAction, now: datetime) -> Decision:
    """Apply an action, or raise ``Refused`` leaving ``state`` untouched."""
    guard(state, action.actor, action.kind)
    c = Change(state, now)
    rule = rule_of(state)
    p = state.protocol
    if isinstance(action, GiveFeedback):
        c.s.feedback, c.s.feedback_by = action.feedback, action.actor
        if state.stage == INVESTIGATION:
            c.s.status, c.s.schedule = Status.AWAITING_DECISION, None
            c.event(
                EventKind.PRACTICE_FEEDBACK,
                f"Feedback from {_who(state, action.actor)}: {action.feedback.strip()} Accept it, or "
                f"escalate to {p.role_names(rule.escalates_to)} if the matter is not resolved.",
                actor=action.actor,
                to=[RAISING_OFFICER],
                cc=list(rule.cc),
                data=NOT_ON_A_CHILDS_FILE,
            )
            c.outcome = "feedback given"
        else:
            c.s.status, c.s.outcome, c.s.schedule = Status.RESOLVED, "concluded", None
            c.event(
                EventKind.PRACTICE_FEEDBACK,
                f"Answer from {_who(state, action.actor)}: {action.feedback.strip()} This concludes the "
                "concern at the last level the protocol names.",
                actor=action.actor,
                to=[RAISING_OFFICER],
                cc=[*rule.investigated_by, *rule.cc],
                data=NOT_ON_A_CHILDS_FILE,
            )
            c.outcome = "concluded"
    elif isinstance(action, AcceptFeedback):
        c.s.status, c.s.outcome = Status.RESOLVED, "resolved"
        note = f" {action.note.strip()}" if action.note.strip() else ""
        c.event(
            EventKind.PRACTICE_RESOLVED,
            f"The feedback resolves the concern.{note}",
            actor=action.actor,
            to=list(rule.investigated_by),
            cc=list(rule.cc),
            data=NOT_ON_A_CHILDS_FILE,
        )
        c.outcome = "resolved"
    elif isinstance(action, EscalatePractice):
        _escalate(c, f"not resolved: {action.reason.strip()}", actor=action.actor)
        c.outcome = "escalated"
    else:
        assert isinstance(action, WithdrawProcess)
        c.s.status, c.s.outcome, c.s.schedule = Status.WITHDRAWN, "withdrawn", None
        c.event(
            EventKind.WITHDRAWN,
            f"The practice concern was withdrawn: {action.reason.strip()}",
            actor=action.actor,
            to=list(rule.escalates_to if state.stage == ESCALATED else rule.investigated_by),
            cc=list(rule.cc),
            data=NOT_ON_A_CHILDS_FILE,
        )
        c.outcome = "withdrawn"
    return c.decision()


def _escalate(
    c: Change[PracticeState], why: str, *, actor: Actor | None, begins_at: datetime | None = None
) -> None:
    """To ``escalates_to``: with a deadline when the protocol sets their time, else without one."""
    rule = rule_of(c.s)
    p = c.s.protocol
    c.s.stage, c.s.status, c.s.schedule, c.s.reminded = ESCALATED, Status.AWAITING_RESPONSE, None, False
    text = (
        f"The concern about the practice of {_who(c.s, c.s.about)} is escalated to "
        f"{p.role_names(rule.escalates_to)}, {why}."
    )
    to, cc = list(rule.escalates_to), [*rule.investigated_by, *rule.cc, RAISING_OFFICER]
    if rule.escalation_working_days is None:
        c.event(EventKind.PRACTICE_ESCALATED, text, actor=actor, to=to, cc=cc, data=NOT_ON_A_CHILDS_FILE)
        return
    timing = {"received_at": begins_at, "receipt_day_counts": True} if begins_at else {}
    c.schedule(
        c.request(rule.escalation_working_days, **timing),
        Announcement(
            kind=EventKind.PRACTICE_ESCALATED,
            text=f"{text} An answer is due by {DUE}.",
            actor=actor,
            to=to,
            cc=cc,
        ),
    )


def guard(state: PracticeState, actor: Actor, kind: str) -> None:
    """Who may do ``kind`` now; raise ``Refused``."""
    rule = rule_of(state)
    raiser = actor.id == state.raised_by.id
    if kind == "give_feedback":
        need_open(state, "take feedback")
        if state.status is not Status.AWAITING_RESPONSE:
            raise Refused(
                "feedback has been given: the person who raised the concern accepts it or escalates"
            )
        roles = rule.investigated_by if state.stage == INVESTIGATION else rule.escalates_to
        need_role(state, actor, roles, "feed back at this stage")
    elif kind in ("accept_feedback", "escalate"):
        need_open(state, kind.replace("_", " "))
        if not raiser:
            raise Refused(
                f"only the person who raised the concern ({state.raised_by.id}) may {kind.replace('_', ' ')}"
            )
        if state.status is not Status.AWAITING_DECISION:
            raise Refused("no feedback is waiting for your decision: it is still being investigated")
    elif kind == "withdraw":
        need_open(state, "be withdrawn")
        if not raiser:
            raise Refused(f"only the person who raised the concern ({state.raised_by.id}) may withdraw it")
    else:
        raise Refused(f"unknown action {kind!r}; actions: give_feedback, accept_feedback, escalate, withdraw")


def on_timer(state: PracticeState, now: datetime) -> Decision:
    """A reminder before a deadline; no feedback in time escalates; no answer in time is flagged."""
    c = Change(state, now)
    sched = state.schedule
    if state.status is not Status.AWAITING_RESPONSE or sched is None:
        return c.decision()
    rule = rule_of(state)
    to = list(rule.investigated_by if state.stage == INVESTIGATION else rule.escalates_to)
    if sched.remind_at and not state.reminded and now >= sched.remind_at:
        c.s.reminded = True
        if now < sched.due_at:
            c.event(
                EventKind.REMINDER,
                f"Reminder: feedback on the practice concern is due by the end of {_long(sched.due_date)}.",
                to=to,
                data=NOT_ON_A_CHILDS_FILE,
            )
    if now >= sched.due_at:
        c.flag(Flag.OVERDUE)
        c.event(
            EventKind.DEADLINE_PASSED,
            f"No feedback by the end of {_long(sched.due_date)}.",
            data=NOT_ON_A_CHILDS_FILE,
        )
        if state.stage == INVESTIGATION:
            _escalate(c, "unresolved: no feedback within the time", actor=None, begins_at=sched.due_at)
        else:
            c.s.schedule = None
            c.event(
                EventKind.REMINDER,
                f"The answer to the practice concern was due by the end of {_long(sched.due_date)} and has "
                "not been given.",
                to=to,
                cc=[RAISING_OFFICER],
                data=NOT_ON_A_CHILDS_FILE,
            )
    return c.decision()


def available_actions(state: PracticeState, actor: Actor) -> list[str]:
    allowed = []
    for kind in ("give_feedback", "accept_feedback", "escalate", "withdraw"):
        try:
            guard(state, actor, kind)
        except Refused:
            continue
        allowed.append(kind)
    return allowed


def _stage_name(state: PracticeState) -> str:
    rule = rule_of(state)
    return rule.label if state.stage == INVESTIGATION else f"{rule.label}: {rule.escalation_label}"


def view(state: PracticeState, now: datetime) -> ProcessView:
    rule = rule_of(state)
    p = state.protocol
    waiting = state.status is Status.AWAITING_RESPONSE
    sched = state.schedule if waiting else None
    details = {
        "about": _who(state, state.about),
        "raised by": _who(state, state.raised_by),
        "concern": state.summary,
    }
    if state.feedback and state.feedback_by:
        details["feedback"] = f"{state.feedback} ({_who(state, state.feedback_by)})"
    holders = rule.investigated_by if state.stage == INVESTIGATION else rule.escalates_to
    return ProcessView(
        process_id=state.process_id,
        process=PRACTICE_CONCERN,
        authority=p.key,
        child_ref=state.child_ref,
        status=state.status,
        stage=state.stage,
        stage_name=_stage_name(state),
        outcome=state.outcome,
        held_by=list(holders)
        if waiting
        else [RAISING_OFFICER]
        if state.status is Status.AWAITING_DECISION
        else [],
        copied=list(rule.cc),
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days_left=working_days_left(state, now),
        details=details,
        flags=list(state.flags),
        timeline=list(state.timeline),
        refusals=list(state.refusals),
        problems=list(state.problems),
    )


# --- what the activities are given -----------------------------------------------------------------------


def effect_item(state: PracticeState, effect: Record | Notify, run_id: str) -> EffectItem:
    """The record or notice of ``effect`` as the record store and the mail take it."""
    rule = rule_of(state)
    p = state.protocol
    sched = state.schedule if state.status is Status.AWAITING_RESPONSE else None
    holders = rule.investigated_by if state.stage == INVESTIGATION else rule.escalates_to
    child_ref = state.child_ref or NO_CHILD
    if isinstance(effect, Record):
        snapshot = EscalationSnapshot(
            category=rule.label,
            team=state.team,
            raised_by=state.raised_by,
            raised_at=state.raised_at,
            stage_name=_stage_name(state),
            stage_number=1 if state.stage == INVESTIGATION else 2,
            formal=state.stage == ESCALATED,
            held_by=list(holders) if sched else [],
            deadline=sched.due_at if sched else None,
            deadline_date=sched.due_date if sched else None,
            flags=[f.value for f in state.flags],
            stage_label=_stage_name(state),
        )
        entry = effect.entry
        if entry.data.get("case_note") is not False:  # an announcement: recorded with its deadline
            entry = entry.model_copy(update={"data": {**entry.data, **NOT_ON_A_CHILDS_FILE}})
        record = RecordEventInput(
            escalation_id=state.process_id,
            run_id=run_id,
            authority=p.key,
            child_ref=child_ref,
            track=PRACTICE_CONCERN,
            status=state.status,
            stage=entry.stage or state.stage,
            entry=entry,
            snapshot=snapshot,
        )
        return EffectItem(record=record)
    entry = state.timeline[effect.entry_seq - 1]
    notice = NotificationInput(
        escalation_id=state.process_id,
        authority=p.key,
        child_ref=child_ref,
        team=state.team,
        service_area=None,
        kind=effect.kind,
        entry=entry,
        officer=state.raised_by,
        to_roles=effect.to,
        cc_roles=effect.cc,
        stage=state.stage,
        stage_name=_stage_name(state),
        status=state.status,
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days=sched.working_days_left(entry.at) if sched else None,
        concern_summary=f"About the practice of {_who(state, state.about)}: {state.summary}",
        idempotency_key=f"{state.process_id}/{entry.seq}",
        run_id=run_id,
        stage_label=_stage_name(state),
    )
    return EffectItem(notify=notice)
