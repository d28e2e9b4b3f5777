"""The escalation rules: a pure state machine over pydantic models.

No I/O and no clock: every function takes the current instant ``now`` and returns a ``Decision`` (the next
state, the effects to carry out, and a sentence for the sender). The workflow is a thin shell that feeds it
events (actions, timers, computed schedules) and carries out the effects. Protocol rules come from the
protocol snapshot in the state; nothing about a particular authority is written here.

Each action has a guard (who may do it, and in which status) and an apply step (payload checks and the
change). ``available_actions`` runs the guards only, so the forms can offer exactly what is allowed now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.effects import Announcement, Effect, Notify, PlanSchedule, Record, RecordRefusal, SchedulePurpose
from schemas.escalation import (
    ACTION_KINDS,
    Accept,
    Action,
    Actor,
    AddNote,
    Answer,
    Bypass,
    Close,
    Consultation,
    DecideExtension,
    Escalate,
    EscalationState,
    EscalationView,
    EventKind,
    Flag,
    PendingExtension,
    RaiseConcern,
    RecordConsultation,
    RecordMeeting,
    RecordViews,
    ReferToCafcass,
    Refusal,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
    TimelineEntry,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER, GateKind, Stage, Track
from schemas.schedule import Schedule, ScheduleRequest

LONDON = ZoneInfo("Europe/London")


class Refused(Exception):
    """An action is not allowed now; ``reason`` says why and what to do instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Decision:
    state: EscalationState
    effects: list[Effect] = field(default_factory=list)
    outcome: str = ""


# --- helpers over the state -----------------------------------------------------------------------------


def track_of(state: EscalationState) -> Track:
    return state.protocol.track(state.track)


def current_stage(state: EscalationState) -> Stage:
    return track_of(state).stages[state.stage_index]


def addressees(state: EscalationState, stage: Stage | None = None) -> tuple[list[str], list[str]]:
    return (stage or current_stage(state)).addressees(state.service_area)


def running_schedule(state: EscalationState) -> Schedule | None:
    """The stage's deadline while it runs: only while an answer is awaited."""
    return state.stage_schedule if state.status is Status.AWAITING_RESPONSE else None


def london_today(now: datetime) -> date:
    return now.astimezone(LONDON).date()


def _names(state: EscalationState, roles: list[str]) -> str:
    return state.protocol.role_names(roles)


def _stage_index(track: Track, key: str) -> int:
    """``track.stage_index``, refusing (with the track's stages listed) when there is no such stage."""
    try:
        return track.stage_index(key)
    except KeyError as exc:
        raise Refused(str(exc.args[0])) from None


def _is_officer(state: EscalationState, actor: Actor) -> bool:
    return actor.id == state.officer.id


def _plays(state: EscalationState, actor: Actor, role: str) -> bool:
    return _is_officer(state, actor) if role == RAISING_OFFICER else actor.role == role


def _copy(state: EscalationState) -> EscalationState:
    """A copy safe to change: the rules replace nested models and append to lists, never edit in place.

    The protocol snapshot and every recorded entry are shared, which keeps each step in microseconds.
    """
    return state.model_copy(
        update={
            "flags": list(state.flags),
            "timeline": list(state.timeline),
            "refusals": list(state.refusals),
            "consultations": list(state.consultations),
            "problems": list(state.problems),
        }
    )


class _Change:
    """A working copy of the state plus the effects produced so far."""

    def __init__(self, state: EscalationState, now: datetime) -> None:
        self.s = _copy(state)
        self.now = now
        self.effects: list[Effect] = []
        self.outcome = ""

    def event(
        self,
        kind: EventKind,
        text: str,
        *,
        actor: Actor | None = None,
        to: list[str] | None = None,
        cc: list[str] | None = None,
        data: dict[str, Any] | None = None,
    ) -> TimelineEntry:
        entry = TimelineEntry(
            seq=len(self.s.timeline) + 1,
            at=self.now,
            kind=kind,
            actor=actor,
            stage=current_stage(self.s).key,
            text=text,
            data=data or {},
        )
        self.s.timeline.append(entry)
        self.effects.append(Record(entry=entry))
        if to:
            self.effects.append(Notify(entry_seq=entry.seq, kind=kind, to=to, cc=cc or []))
        return entry

    def schedule(
        self, purpose: SchedulePurpose, request: ScheduleRequest, announce: Announcement | None = None
    ) -> None:
        self.effects.append(PlanSchedule(purpose=purpose, request=request, announce=announce))

    def request(self, **kwargs: Any) -> ScheduleRequest:
        p = self.s.protocol
        kwargs.setdefault("received_at", self.now)
        kwargs.setdefault("reminder_lead_working_days", p.reminder_lead_working_days)
        return ScheduleRequest(closure_days=list(p.closure_days), **kwargs)

    def flag(self, flag: Flag) -> None:
        if flag not in self.s.flags:
            self.s.flags.append(flag)

    def unflag(self, flag: Flag) -> None:
        if flag in self.s.flags:
            self.s.flags.remove(flag)

    def decision(self) -> Decision:
        return Decision(state=self.s, effects=self.effects, outcome=self.outcome)


# --- starting -------------------------------------------------------------------------------------------


def start(raise_: RaiseConcern, now: datetime) -> Decision:
    """Open an escalation at the first stage, or at the stage the officer bypasses to."""
    p = raise_.protocol
    try:
        track = p.track(raise_.track)
    except KeyError as exc:
        raise Refused(str(exc.args[0])) from None
    if raise_.officer.role not in track.officer_roles:
        raise Refused(
            f"a {p.role_name(raise_.officer.role)} cannot raise on the {track.name} track; "
            f"its officers are: {p.role_names(track.officer_roles)}"
        )
    if raise_.category not in track.categories:
        raise Refused(f"unknown category {raise_.category!r}; choose one of: {'; '.join(track.categories)}")
    if raise_.service_area is not None and raise_.service_area not in p.service_areas:
        known = ", ".join(p.service_areas) or "none (leave it empty)"
        raise Refused(f"unknown service area {raise_.service_area!r}; {p.authority} has: {known}")
    target = _stage_index(track, raise_.start_at_stage) if raise_.start_at_stage else 0
    if target > 0 and raise_.start_bypass is None:
        raise Refused("starting past the first stage is a bypass: give its reason (start_bypass)")

    state = EscalationState(
        escalation_id=raise_.escalation_id,
        protocol=p,
        track=track.key,
        category=raise_.category,
        service_area=raise_.service_area,
        child_ref=raise_.child_ref,
        team=raise_.team,
        officer=raise_.officer,
        concern=raise_.concern,
        raised_at=now,
        status=Status.AWAITING_RESPONSE,
        stage_index=0,
        stage_entered_at=now,
    )
    c = _Change(state, now)
    c.event(
        EventKind.RAISED,
        raise_.concern.summary,
        actor=raise_.officer,
        data={"category": raise_.category, "service_area": raise_.service_area},
    )
    for consultation in raise_.consultations:
        _apply_consultation(c, consultation, at_start=True)
    if target == 0:
        _enter_stage(c, 0)
    else:
        assert raise_.start_bypass is not None
        bypass = raise_.start_bypass.model_copy(update={"to_stage": track.stages[target].key})
        _check_bypass_rule(c.s, bypass)
        if not _gate_open(c.s, target):
            gate = track.stages[target].entry_gate
            assert gate is not None
            raise Refused(
                f"{track.stages[target].name} needs a recorded {gate.kind.value} with "
                f"{_names(c.s, gate.with_roles)} first: include it in the consultations"
            )
        c.event(
            EventKind.BYPASSED,
            f"Raised directly at {track.stages[target].name}. Reason: {bypass.reason}",
            actor=raise_.officer,
            data={"from": None, "to": track.stages[target].key, "emergency": bypass.emergency},
        )
        if bypass.emergency:
            c.flag(Flag.EMERGENCY_BYPASS)
        _enter_stage(c, target)
    c.outcome = f"raised at {current_stage(c.s).name}"
    return c.decision()


# --- moving between stages -------------------------------------------------------------------------------


def _enter_stage(c: _Change, index: int) -> None:
    s = c.s
    s.stage_index = index
    s.stage_entered_at = c.now
    s.status = Status.AWAITING_RESPONSE
    s.stage_schedule = None
    s.stage_protocol_due = None
    s.stage_reminded = False
    s.pending_extension = None
    s.answer = None
    s.action_plan = None
    s.action_plan_due = None
    s.hold_target = None
    s.hold_via = None
    s.hold_schedule = None
    c.unflag(Flag.OVERDUE)
    c.unflag(Flag.ACTION_PLAN_DUE)
    stage = current_stage(s)
    to, cc = addressees(s, stage)
    if stage.told_in_advance:
        c.event(
            EventKind.TOLD_IN_ADVANCE,
            f"The concern is about to go to {_names(s, to)} at {stage.name}.",
            to=list(stage.told_in_advance),
        )
    if stage.formal and s.formal_started_at is None:
        s.formal_started_at = c.now
        c.schedule(
            "total",
            c.request(working_days=s.protocol.total_formal_working_days, reminder_lead_working_days=0),
        )
    text = f"Sent to {_names(s, to)} at {stage.name}."
    if stage.meeting:
        text += " This stage is managed through a meeting: invite all key people and record it."
    sent = Announcement(kind=EventKind.SENT_TO_STAGE, text=text, actor=s.officer, to=to, cc=cc)
    if stage.response_working_days is None:
        c.event(sent.kind, sent.text + " The protocol sets no response time.", actor=s.officer, to=to, cc=cc)
    else:
        c.schedule("stage", c.request(working_days=stage.response_working_days), announce=sent)


def _gate_open(s: EscalationState, index: int) -> bool:
    stage = track_of(s).stages[index]
    gate = stage.entry_gate
    if gate is None:
        return True
    relevant = [x for x in s.consultations if x.stage == stage.key and x.with_role in gate.with_roles]
    if not relevant:
        return False
    return gate.kind is GateKind.CONSULTATION or relevant[-1].agreed is True


def _move(
    c: _Change,
    target: int,
    via: EventKind,
    actor: Actor | None,
    reason: str,
    *,
    emergency: bool = False,
) -> None:
    """Escalate or bypass to ``target``, or hold as escalation due while its gate is closed."""
    s = c.s
    track = track_of(s)
    dest = track.stages[target]
    if not _gate_open(s, target):
        gate = dest.entry_gate
        assert gate is not None
        s.status = Status.ESCALATION_DUE
        s.hold_target = target
        s.hold_via = via
        s.pending_extension = None
        c.event(
            EventKind.ESCALATION_DUE,
            f"{'Bypass' if via is EventKind.BYPASSED else 'Escalation'} to {dest.name} is due: "
            f"record a {gate.kind.value} with {_names(s, gate.with_roles)} first. Reason: {reason}",
            actor=actor,
            to=[RAISING_OFFICER],
            cc=list(gate.with_roles),
            data={"target": dest.key, "gate": gate.kind.value},
        )
        c.schedule("hold", c.request(working_days=1))
        c.outcome = f"held: {dest.name} needs a {gate.kind.value} with {_names(s, gate.with_roles)}"
        return
    before = current_stage(s)
    to, cc = addressees(s, before)
    word = "Bypassed" if via is EventKind.BYPASSED else "Escalated"
    c.event(
        via,
        f"{word} from {before.name} to {dest.name}. Reason: {reason}",
        actor=actor,
        to=to,
        cc=cc,
        data={"from": before.key, "to": dest.key, "emergency": emergency},
    )
    _enter_stage(c, target)
    c.outcome = f"{word.lower()} to {dest.name}"


def _escalate(c: _Change, actor: Actor | None, reason: str) -> None:
    s = c.s
    nxt = s.stage_index + 1
    if nxt >= len(track_of(s).stages):
        s.status = Status.EXHAUSTED
        s.pending_extension = None  # no stage runs to give more time to
        to, cc = addressees(s)
        c.event(
            EventKind.EXHAUSTED,
            "The top of the ladder has been reached without resolution. The officer may refer to "
            f"CAFCASS (where allowed) or close the escalation. Reason: {reason}",
            actor=actor,
            to=[RAISING_OFFICER],
            cc=to + cc,
        )
        c.outcome = "exhausted: the top of the ladder has been reached"
        return
    _move(c, nxt, EventKind.ESCALATED, actor, reason)


# --- computed schedules and timers ---------------------------------------------------------------------


def on_scheduled(state: EscalationState, effect: PlanSchedule, schedule: Schedule, now: datetime) -> Decision:
    """Take in a schedule computed by the clock activity (recorded in history)."""
    c = _Change(state, now)
    s = c.s
    if effect.purpose in ("stage", "reschedule"):
        s.stage_schedule = schedule
        s.stage_reminded = schedule.remind_at is not None and schedule.remind_at <= now
        if effect.purpose == "stage":
            s.stage_protocol_due = schedule.due_date
    elif effect.purpose == "total":
        s.total_schedule = schedule
    else:
        s.hold_schedule = schedule
    if effect.announce:
        a = effect.announce
        days = schedule.working_days_left(schedule.received_at)
        span = f"{days} working day{'' if days == 1 else 's'}" if days else "the same day"
        c.event(
            a.kind,
            f"{a.text} Answer due by the end of {schedule.due_date:%A %-d %B %Y} ({span}).",
            actor=a.actor,
            to=a.to,
            cc=a.cc,
            data={"due_date": schedule.due_date.isoformat(), "working_days": days},
        )
    return c.decision()


def next_wakeup(state: EscalationState) -> datetime | None:
    """The next instant at which ``on_timer`` has something to do, if any."""
    if state.status.is_closed:
        return None
    times: list[datetime] = []
    if _total_runs(state):
        assert state.total_schedule is not None
        times.append(state.total_schedule.due_at)
    sched = running_schedule(state)
    if sched:
        if sched.remind_at and not state.stage_reminded:
            times.append(sched.remind_at)
        times.append(sched.due_at)
    hold = state.hold_schedule
    if state.status is Status.ESCALATION_DUE and hold:
        times.append(hold.remind_at or hold.due_at)
    if state.status is Status.MONITORING and hold and Flag.ACTION_PLAN_DUE not in state.flags:
        times.append(hold.due_at)
    return min(times) if times else None


def _total_runs(state: EscalationState) -> bool:
    """The total limit runs from the first formal stage until resolution or an agreed action plan."""
    return (
        state.total_schedule is not None
        and Flag.BREACHED not in state.flags
        and state.status is not Status.MONITORING
    )


def on_timer(state: EscalationState, now: datetime) -> Decision:
    """Do whatever has fallen due by ``now``: breach, reminders, automatic escalation."""
    c = _Change(state, now)
    s = c.s
    if s.status.is_closed:
        return c.decision()
    total = s.total_schedule
    if total and _total_runs(s) and now >= total.due_at:
        c.flag(Flag.BREACHED)
        c.event(
            EventKind.BREACHED,
            f"The {s.protocol.total_formal_working_days}-working-day limit for the formal process ended "
            f"on {total.due_date:%A %-d %B %Y} without resolution.",
            to=list(s.protocol.breach_notify),
            cc=[RAISING_OFFICER],
        )
    sched = running_schedule(s)
    if sched:
        if sched.remind_at and not s.stage_reminded and now >= sched.remind_at:
            s.stage_reminded = True
            if now < sched.due_at:
                to, cc = addressees(s)
                c.event(
                    EventKind.REMINDER,
                    f"Reminder: an answer is due by the end of {sched.due_date:%A %-d %B %Y}.",
                    to=to,
                    cc=cc,
                )
        if now >= sched.due_at:
            c.flag(Flag.OVERDUE)
            c.event(
                EventKind.DEADLINE_PASSED,
                f"No answer by the end of {sched.due_date:%A %-d %B %Y}.",
            )
            _escalate(c, None, "no answer within the stage's time")
    hold = s.hold_schedule
    if s.status is Status.ESCALATION_DUE and hold and now >= (hold.remind_at or hold.due_at):
        assert s.hold_target is not None
        dest = track_of(s).stages[s.hold_target]
        gate = dest.entry_gate
        assert gate is not None
        c.event(
            EventKind.ESCALATION_DUE_REMINDER,
            f"Escalation to {dest.name} is still due: record the {gate.kind.value} with "
            f"{_names(s, gate.with_roles)}.",
            to=[RAISING_OFFICER],
        )
        c.schedule("hold", c.request(working_days=1))
    if s.status is Status.MONITORING and hold and now >= hold.due_at and Flag.ACTION_PLAN_DUE not in s.flags:
        c.flag(Flag.ACTION_PLAN_DUE)
        c.event(
            EventKind.ACTION_PLAN_DUE,
            "The action plan's date has come: confirm it was done (accept) or escalate.",
            to=[RAISING_OFFICER],
        )
    return c.decision()


# --- actions --------------------------------------------------------------------------------------------

_OPEN_FOR_ANSWER = (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION)


def _refuse_closed(s: EscalationState) -> None:
    if s.status.is_closed:
        raise Refused(f"the escalation is {s.status.value.replace('_', ' ')}; nothing more can be done")


def _need_status(s: EscalationState, allowed: tuple[Status, ...], doing: str) -> None:
    _refuse_closed(s)
    if s.status not in allowed:
        raise Refused(f"cannot {doing} while the escalation is {s.status.value.replace('_', ' ')}")


def _need_officer(s: EscalationState, actor: Actor, doing: str) -> None:
    if not _is_officer(s, actor):
        raise Refused(f"only the raising officer ({s.officer.id}) may {doing}")


def _need_recipient(s: EscalationState, actor: Actor, doing: str) -> None:
    to, _ = addressees(s)
    if actor.role not in to:
        raise Refused(
            f"only the stage's recipients ({_names(s, to)}) may {doing}; "
            f"you act as {s.protocol.role_name(actor.role)}"
        )


def _need_judge(s: EscalationState, actor: Actor, doing: str) -> None:
    judge = current_stage(s).judged_by
    if not (_is_officer(s, actor) or _plays(s, actor, judge)):
        raise Refused(f"only {s.protocol.role_name(judge)} may {doing} at this stage")


def _need_involved(s: EscalationState, actor: Actor, doing: str) -> None:
    if not (_is_officer(s, actor) or actor.role in s.protocol.roles):
        raise Refused(f"only people involved under the {s.protocol.authority} protocol may {doing}")


def _not_past(day: date | None, now: datetime, what: str) -> None:
    if day is not None and day < london_today(now):
        raise Refused(f"{what} {day:%-d %B %Y} is in the past; give today or a later date")


def _guard_respond(s: EscalationState, actor: Actor) -> None:
    _need_status(s, _OPEN_FOR_ANSWER, "respond")
    _need_recipient(s, actor, "respond")
    if current_stage(s).meeting:
        raise Refused(f"{current_stage(s).name} is managed through a meeting: record the meeting instead")


def _apply_respond(c: _Change, a: Respond) -> None:
    s = c.s
    if a.action_plan_due and not a.action_plan:
        raise Refused("an action plan's due date was given without the action plan: add the plan")
    _not_past(a.action_plan_due, c.now, "the action plan's due date")
    s.answer = Answer(
        by=a.actor, at=c.now, text=a.answer, action_plan=a.action_plan, action_plan_due=a.action_plan_due
    )
    s.pending_extension = None
    s.status = Status.AWAITING_DECISION
    _, cc = addressees(s)
    judge = current_stage(s).judged_by
    c.event(
        EventKind.RESPONSE,
        a.answer,
        actor=a.actor,
        to=[judge],
        cc=cc,
        data={"action_plan": a.action_plan, "action_plan_due": _iso(a.action_plan_due)},
    )
    c.outcome = f"answer recorded; {s.protocol.role_name(judge)} will decide whether it resolves the concern"


def _guard_request_extension(s: EscalationState, actor: Actor) -> None:
    _need_status(s, (Status.AWAITING_RESPONSE,), "ask for more time")
    _need_recipient(s, actor, "ask for more time")
    if s.stage_schedule is None:
        raise Refused("this stage has no deadline to extend")
    if s.pending_extension:
        raise Refused(
            f"a request for more time (until {s.pending_extension.until:%-d %B %Y}) is already waiting "
            "for the officer's decision"
        )


def _apply_request_extension(c: _Change, a: RequestExtension) -> None:
    s = c.s
    assert s.stage_schedule is not None
    _not_past(a.until, c.now, "the requested date")
    if a.until <= s.stage_schedule.due_date:
        raise Refused(
            f"the requested date must be after the current deadline ({s.stage_schedule.due_date:%-d %B %Y})"
        )
    s.pending_extension = PendingExtension(
        requested_by=a.actor, until=a.until, reason=a.reason, requested_at=c.now
    )
    c.event(
        EventKind.EXTENSION_REQUESTED,
        f"More time asked for, until {a.until:%A %-d %B %Y}. Reason: {a.reason}",
        actor=a.actor,
        to=[s.protocol.extensions.approved_by],
        data={"until": a.until.isoformat()},
    )
    c.outcome = f"request sent to {s.protocol.role_name(s.protocol.extensions.approved_by)} for a decision"


def _guard_decide_extension(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    approver = s.protocol.extensions.approved_by
    if not _plays(s, actor, approver):
        raise Refused(f"only {s.protocol.role_name(approver)} may decide a request for more time")
    if s.pending_extension is None:
        raise Refused("there is no request for more time waiting for a decision")


def _apply_decide_extension(c: _Change, a: DecideExtension) -> None:
    s = c.s
    pending = s.pending_extension
    assert pending is not None and s.stage_schedule is not None
    to, cc = addressees(s)
    if not a.approve:
        if not a.reason.strip():
            raise Refused("say why the request for more time is declined (reason)")
        s.pending_extension = None
        c.event(
            EventKind.EXTENSION_DECIDED,
            f"More time until {pending.until:%-d %B %Y} declined. Reason: {a.reason}",
            actor=a.actor,
            to=to,
            cc=cc,
            data={"approved": False, "until": pending.until.isoformat()},
        )
        c.outcome = "extension declined; the deadline stands"
        return
    if pending.until <= s.stage_schedule.due_date:
        raise Refused(
            f"the stage's deadline is already {s.stage_schedule.due_date:%-d %B %Y}, on or after the date "
            f"asked for ({pending.until:%-d %B %Y}): decline the request, as no more time is needed"
        )
    total = s.total_schedule
    beyond = total is not None and pending.until > total.due_date
    if beyond and not a.exceed_total_limit:
        assert total is not None
        raise Refused(
            f"{pending.until:%-d %B %Y} is past the {s.protocol.total_formal_working_days}-working-day limit "
            f"of the formal process ({total.due_date:%-d %B %Y}); to allow it anyway, approve again with "
            "exceed_total_limit and a reason"
        )
    if beyond and not a.reason.strip():
        raise Refused("going past the total limit needs a reason: say why it is in the child's interests")
    s.pending_extension = None
    text = f"More time approved, until {pending.until:%A %-d %B %Y}."
    if beyond:
        c.flag(Flag.BEYOND_TOTAL_LIMIT)
        text += " The officer has explicitly allowed this to pass the total limit."
    if a.reason.strip():
        text += f" Reason: {a.reason}"
    c.event(
        EventKind.EXTENSION_DECIDED,
        text,
        actor=a.actor,
        to=to,
        cc=cc,
        data={"approved": True, "until": pending.until.isoformat(), "beyond_total_limit": beyond},
    )
    c.schedule("reschedule", c.request(received_at=s.stage_schedule.received_at, until=pending.until))
    c.outcome = f"extension approved until {pending.until:%-d %B %Y}"


def _guard_set_timescale(s: EscalationState, actor: Actor) -> None:
    _need_status(s, (Status.AWAITING_RESPONSE,), "set the timescale")
    _need_officer(s, actor, "set the stage's timescale")
    if current_stage(s).formal and Flag.BREACHED in s.flags:
        raise Refused(
            "the formal process's total limit has passed, so no timescale can keep within it: more time "
            "comes only through a request for more time approved with exceed_total_limit"
        )


def _apply_set_timescale(c: _Change, a: SetTimescale) -> None:
    s = c.s
    stage = current_stage(s)
    rules = s.protocol.timescales
    if (a.working_days is None) == (a.until is None):
        raise Refused("give either working_days or until, not both and not neither")
    _not_past(a.until, c.now, "the date")
    limit_days = stage.response_working_days
    if a.working_days is not None:
        longer = limit_days is not None and a.working_days > limit_days
        shorter = limit_days is None or a.working_days < limit_days
        asked = f"{a.working_days} working days"
    else:
        assert a.until is not None
        longer = s.stage_protocol_due is not None and a.until > s.stage_protocol_due
        shorter = s.stage_protocol_due is None or a.until < s.stage_protocol_due
        asked = f"until {a.until:%-d %B %Y}"
    if longer and not (not stage.formal and rules.informal_may_agree_longer):
        raise Refused(
            f"{asked} is longer than the protocol's {limit_days} working days for {stage.name}; "
            "more time at this stage comes through a request for more time that the officer approves"
        )
    if shorter and not longer and not rules.officer_may_shorten:
        raise Refused(f"the {s.protocol.authority} protocol does not let the officer shorten a stage's time")
    _timescale_within_limits(s, a, asked, c.now)
    to, cc = addressees(s)
    announce = Announcement(
        kind=EventKind.TIMESCALE_SET,
        text=f"The officer set this stage's time to {asked}. Reason: {a.reason}",
        actor=a.actor,
        to=to,
        cc=cc,
    )
    request = c.request(received_at=s.stage_entered_at, working_days=a.working_days, until=a.until)
    c.schedule("reschedule", request, announce=announce)
    c.outcome = f"timescale set to {asked}"


def _timescale_within_limits(s: EscalationState, a: SetTimescale, asked: str, now: datetime) -> None:
    """A new timescale must not have run out already, nor pass the formal process's total limit.

    Counted on the working days the stage's (or the total's) schedule already lists, so the rules need no
    calendar; a count beyond what they list is later than any deadline now running.
    """
    counts_from, ends = _stage_working_days(s)
    if a.working_days is not None and counts_from is None:
        raise Refused(
            f"{current_stage(s).name} has no deadline running to count working days on: give the date "
            "(until) instead"
        )
    if a.working_days is not None and counts_from is not None:
        if a.working_days == 0:
            past = london_today(now) > counts_from
        else:
            past = a.working_days <= len(ends) and ends[a.working_days - 1] <= now
        if past:
            raise Refused(
                f"{asked} from when this stage began ({counts_from:%-d %B %Y}) have already run out: "
                "give more working days, or a date from today"
            )
    total = s.total_schedule
    if total is None or not current_stage(s).formal:
        return
    if a.until is not None:
        beyond = a.until > total.due_date
    elif counts_from is not None:
        assert a.working_days is not None
        beyond = a.working_days > sum(1 for end in total.working_day_ends if london_today(end) > counts_from)
    else:
        beyond = False
    if beyond:
        raise Refused(
            f"{asked} runs past the {s.protocol.total_formal_working_days}-working-day limit of the formal "
            f"process ({total.due_date:%-d %B %Y}); time past it comes only through a request for more time "
            "that the officer approves with exceed_total_limit and a reason"
        )


def _stage_working_days(s: EscalationState) -> tuple[date | None, list[datetime]]:
    """The day this stage's time counts from, and the end of each working day after it that is known."""
    if s.stage_schedule is not None:
        return s.stage_schedule.counts_from, list(s.stage_schedule.working_day_ends)
    total = s.total_schedule
    if total is None:
        return None, []
    entered = london_today(s.stage_entered_at)
    days = [total.counts_from, *(london_today(end) for end in total.working_day_ends)]
    counts_from = next((day for day in days if day >= entered), None)
    if counts_from is None:
        return None, []
    return counts_from, [end for end in total.working_day_ends if london_today(end) > counts_from]


def _guard_accept(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_judge(s, actor, "accept the answer")


def _apply_accept(c: _Change, a: Accept) -> None:
    s = c.s
    to, cc = addressees(s)
    if s.status is Status.MONITORING:
        s.status = Status.RESOLVED
        c.event(
            EventKind.RESOLVED,
            "The action plan was carried out; the concern is resolved." + _suffix(a.note),
            actor=a.actor,
            to=to,
            cc=cc,
        )
        c.outcome = "resolved: action plan confirmed done"
        return
    answer = s.answer if s.status is Status.AWAITING_DECISION else None
    plan = a.action_plan or (answer.action_plan if answer else None)
    due = a.action_plan_due or (answer.action_plan_due if answer else None)
    if plan and due is None:
        raise Refused("an agreed action plan needs its due date (action_plan_due) to be monitored")
    if due and not plan:
        raise Refused("an action plan's due date was given without the action plan: add the plan")
    if plan and due:
        _not_past(due, c.now, "the action plan's due date")
        s.status = Status.MONITORING
        s.action_plan, s.action_plan_due = plan, due
        s.pending_extension = None
        c.event(
            EventKind.MONITORING_STARTED,
            f"Action plan agreed, to be done by {due:%A %-d %B %Y}: {plan}" + _suffix(a.note),
            actor=a.actor,
            to=to,
            cc=cc,
            data={"action_plan_due": due.isoformat()},
        )
        c.schedule("hold", c.request(until=due))
        c.outcome = f"monitoring the action plan until {due:%-d %B %Y}"
        return
    s.status = Status.RESOLVED
    c.event(EventKind.RESOLVED, "The concern is resolved." + _suffix(a.note), actor=a.actor, to=to, cc=cc)
    c.outcome = "resolved"


def _guard_escalate(s: EscalationState, actor: Actor) -> None:
    if s.status is Status.ESCALATION_DUE:
        assert s.hold_target is not None
        raise Refused(
            f"escalation to {track_of(s).stages[s.hold_target].name} is already due: record the "
            "consultation it needs"
        )
    if s.status is Status.EXHAUSTED:
        raise Refused("the top of the ladder has been reached: refer to CAFCASS (where allowed) or close")
    _need_status(s, (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION, Status.MONITORING), "escalate")
    stages = track_of(s).stages
    nxt = stages[s.stage_index + 1] if s.stage_index + 1 < len(stages) else None
    if nxt and any(_plays(s, actor, r) for r in nxt.escalated_by):
        return
    _need_judge(s, actor, "escalate")


def _apply_escalate(c: _Change, a: Escalate) -> None:
    _escalate(c, a.actor, a.reason)


def _guard_bypass(s: EscalationState, actor: Actor) -> None:
    if not s.protocol.bypass.allowed:
        raise Refused(f"the {s.protocol.authority} protocol does not allow stages to be bypassed")
    _need_status(
        s,
        (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION, Status.MONITORING, Status.ESCALATION_DUE),
        "bypass",
    )
    _need_officer(s, actor, "bypass stages")
    if s.stage_index + 1 >= len(track_of(s).stages):
        raise Refused("there is no later stage to bypass to")


def _check_bypass_rule(s: EscalationState, a: Bypass) -> None:
    rule = s.protocol.bypass
    if not rule.prior_discussion_with:
        return
    if a.emergency and rule.emergency_exempt:
        return
    if a.discussed_with in rule.prior_discussion_with:
        return
    needed = _names(s, rule.prior_discussion_with)
    exempt = " (or say it is an emergency)" if rule.emergency_exempt else ""
    raise Refused(f"a bypass needs a prior discussion with {needed}{exempt}: give discussed_with")


def _apply_bypass(c: _Change, a: Bypass) -> None:
    s = c.s
    track = track_of(s)
    target = _stage_index(track, a.to_stage)
    if target <= s.stage_index:
        raise Refused(f"{track.stages[target].name} is not later than {current_stage(s).name}")
    _check_bypass_rule(s, a)
    if a.emergency:
        c.flag(Flag.EMERGENCY_BYPASS)
    _move(c, target, EventKind.BYPASSED, a.actor, a.reason, emergency=a.emergency)


def _guard_refer_to_cafcass(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_officer(s, actor, "refer to CAFCASS")
    allowed = s.protocol.cafcass.officer_roles
    if s.officer.role not in allowed:
        raise Refused(
            f"a {s.protocol.role_name(s.officer.role)} may not refer to CAFCASS; under the "
            f"{s.protocol.authority} protocol only {_names(s, allowed)} may"
        )


def _apply_refer_to_cafcass(c: _Change, a: ReferToCafcass) -> None:
    s = c.s
    rule = s.protocol.cafcass
    recorded = {x.with_role for x in s.consultations}
    missing = [r for r in rule.consult if r not in a.consulted and r not in recorded]
    if missing:
        raise Refused(f"before referring to CAFCASS, consult {_names(s, missing)} and list them in consulted")
    s.status = Status.REFERRED_TO_CAFCASS
    to, cc = addressees(s)
    c.event(
        EventKind.CAFCASS_REFERRAL,
        f"Referred to CAFCASS; the local process is curtailed. Reason: {a.reason}",
        actor=a.actor,
        to=list(rule.inform) or to,
        cc=to + cc if rule.inform else cc,
        data={"consulted": sorted(set(a.consulted) | (recorded & set(rule.consult)))},
    )
    c.outcome = "referred to CAFCASS"


def _later_gated(s: EscalationState) -> list[Stage]:
    stages = track_of(s).stages
    return [st for st in stages[s.stage_index + 1 :] if st.entry_gate]


def _guard_record_consultation(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    gated = _later_gated(s)
    if not gated:
        raise Refused("no later stage needs a consultation")
    if _is_officer(s, actor):
        return
    if not any(actor.role in st.entry_gate.with_roles for st in gated if st.entry_gate):
        raise Refused("only the raising officer, or the person consulted, may record a consultation")


def _apply_record_consultation(c: _Change, a: RecordConsultation) -> None:
    _apply_consultation(c, a, at_start=False)


def _apply_consultation(c: _Change, a: RecordConsultation, *, at_start: bool) -> None:
    s = c.s
    track = track_of(s)
    index = _stage_index(track, a.stage)
    stage = track.stages[index]
    gate = stage.entry_gate
    if gate is None:
        raise Refused(f"{stage.name} needs no consultation before it")
    if not at_start and index <= s.stage_index:
        raise Refused(f"{stage.name} has already been reached")
    if a.with_role not in gate.with_roles:
        raise Refused(f"{stage.name} needs a {gate.kind.value} with {_names(s, gate.with_roles)}")
    if not at_start and not _is_officer(s, a.actor) and a.actor.role != a.with_role:
        raise Refused(
            f"you may record only your own {gate.kind.value} (as {s.protocol.role_name(a.actor.role)}); "
            f"the raising officer records one with {s.protocol.role_name(a.with_role)}"
        )
    if gate.kind is GateKind.AGREEMENT and a.agreed is None:
        raise Refused(f"say whether {s.protocol.role_name(a.with_role)} agreed (agreed: true or false)")
    s.consultations.append(
        Consultation(
            stage=stage.key, with_role=a.with_role, agreed=a.agreed, summary=a.summary, by=a.actor, at=c.now
        )
    )
    outcome = "" if a.agreed is None else (" They agreed." if a.agreed else " They did not agree.")
    c.event(
        EventKind.CONSULTATION_RECORDED,
        f"{gate.kind.value.capitalize()} with {s.protocol.role_name(a.with_role)} "
        f"before {stage.name}.{outcome} {a.summary}",
        actor=a.actor,
        data={"for_stage": stage.key, "with_role": a.with_role, "agreed": a.agreed},
    )
    c.outcome = "consultation recorded"
    if at_start or s.status is not Status.ESCALATION_DUE or s.hold_target != index:
        return
    if _gate_open(s, index):
        via = s.hold_via or EventKind.ESCALATED
        s.status = Status.AWAITING_RESPONSE
        _move(c, index, via, a.actor, f"after the {gate.kind.value} with {s.protocol.role_name(a.with_role)}")
    elif a.agreed is False:
        s.status = Status.AWAITING_DECISION
        s.hold_target = s.hold_via = s.hold_schedule = None
        c.event(
            EventKind.NOTE,
            f"{s.protocol.role_name(a.with_role)} did not agree to escalate to {stage.name}; "
            f"the concern stays at {current_stage(s).name}. "
            "The officer may accept, withdraw, bypass or ask again.",
            to=[RAISING_OFFICER],
        )
        c.outcome = f"not agreed: the concern stays at {current_stage(s).name}"


def _guard_record_meeting(s: EscalationState, actor: Actor) -> None:
    _need_status(s, _OPEN_FOR_ANSWER, "record a meeting")
    if not current_stage(s).meeting:
        raise Refused(f"{current_stage(s).name} is not managed through a meeting")
    if _is_officer(s, actor):
        return
    _need_recipient(s, actor, "record the meeting")


def _apply_record_meeting(c: _Change, a: RecordMeeting) -> None:
    s = c.s
    if a.held_on > london_today(c.now):
        raise Refused(f"the meeting date {a.held_on:%-d %B %Y} is in the future: record it once it is held")
    if a.held_on < s.stage_entered_at.astimezone(LONDON).date():
        raise Refused("the meeting was held before this stage began: give the date of this stage's meeting")
    s.answer = Answer(by=a.actor, at=c.now, text=a.outcome)
    s.status = Status.AWAITING_DECISION
    s.pending_extension = None
    to, cc = addressees(s)
    c.event(
        EventKind.MEETING_RECORDED,
        f"Meeting held on {a.held_on:%-d %B %Y} with {', '.join(a.attendees)}. Outcome: {a.outcome}",
        actor=a.actor,
        to=[RAISING_OFFICER, *to],
        cc=cc,
        data={"held_on": a.held_on.isoformat(), "attendees": a.attendees},
    )
    c.outcome = "meeting recorded; the officer will decide whether it resolves the concern"


def _guard_withdraw(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_officer(s, actor, "withdraw the escalation")


def _apply_withdraw(c: _Change, a: Withdraw) -> None:
    c.s.status = Status.WITHDRAWN
    to, cc = addressees(c.s)
    c.event(EventKind.WITHDRAWN, f"Withdrawn by the officer. Reason: {a.reason}", actor=a.actor, to=to, cc=cc)
    c.outcome = "withdrawn"


def _guard_close(s: EscalationState, actor: Actor) -> None:
    _need_officer(s, actor, "close the escalation")
    _refuse_closed(s)
    if s.status is not Status.EXHAUSTED:
        raise Refused("only an exhausted escalation can be closed; use accept or withdraw")


def _apply_close(c: _Change, a: Close) -> None:
    c.s.status = Status.CLOSED
    to, cc = addressees(c.s)
    c.event(EventKind.CLOSED, f"Closed without resolution. Reason: {a.reason}", actor=a.actor, to=to, cc=cc)
    c.outcome = "closed"


def _guard_note(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_involved(s, actor, "add to the record")


def _apply_note(c: _Change, a: AddNote) -> None:
    c.event(EventKind.NOTE, a.text, actor=a.actor)
    c.outcome = "note added"


def _apply_views(c: _Change, a: RecordViews) -> None:
    c.event(EventKind.VIEWS, f"The {a.whose}'s views: {a.views}", actor=a.actor, data={"whose": a.whose})
    c.outcome = f"the {a.whose}'s views recorded"


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
    "withdraw": (_guard_withdraw, _apply_withdraw),
    "close": (_guard_close, _apply_close),
    "add_note": (_guard_note, _apply_note),
    "record_views": (_guard_note, _apply_views),
}
assert set(_RULES) == set(ACTION_KINDS)


def handle(state: EscalationState, action: Action, now: datetime) -> Decision:
    """Apply an action, or raise ``Refused`` leaving ``state`` untouched."""
    guard, apply = _RULES[action.kind]
    guard(state, action.actor)
    c = _Change(state, now)
    apply(c, action)
    return c.decision()


def check(state: EscalationState, action: Action, now: datetime) -> None:
    """Raise ``Refused`` if ``handle`` would refuse the action (used by update validators)."""
    handle(state, action, now)


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
    )


def _suffix(note: str) -> str:
    return f" {note.strip()}" if note.strip() else ""


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
