"""Times in working hours, the raising officer's own deadlines and the steps a stage requires.

When a stage is entered, each of its duties (``officer_deadline``, ``required_steps``) is opened and its
deadline placed by the clock activity (purpose ``duty``). The officer (and, for a step, the roles that may
record it) is told of it, reminded before it is due and, when it passes unrecorded, the escalation is
flagged and the officer and the protocol's ``missed_notify`` roles are told. A duty is met by the
``record_step`` action naming its key. A stage with a required step not yet recorded cannot be resolved
(``accept``); it can still be escalated, withdrawn or referred, so no duty freezes an escalation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import partial

from schemas.duties import OfficerDeadline, RequiredStep
from schemas.effects import PlanSchedule
from schemas.escalation import (
    Actor,
    Duty,
    EscalationState,
    EventKind,
    Flag,
    RecordStep,
    StepRecord,
)
from schemas.protocol import RAISING_OFFICER, Stage
from schemas.schedule import Schedule, ScheduleRequest
from workflows.rules._core import (
    LONDON,
    Decision,
    Refused,
    _Change,
    _is_officer,
    _names,
    _plays,
    _refuse_closed,
    current_stage,
)

DONE_WITHIN = timedelta(days=366)
"""How long before it is recorded a step may have been done: a year."""


def due_words(schedule: Schedule) -> str:
    """'the end of Tuesday 3 March 2026' (a days deadline) or '13:00 on Tuesday 3 March 2026' (hours)."""
    day = f"{schedule.due_date:%A %-d %B %Y}"
    if schedule.working_hours is None:
        return f"the end of {day}"
    return f"{schedule.due_at.astimezone(LONDON):%H:%M} on {day}"


def hours_request(c: _Change, hours: int, **kwargs: object) -> ScheduleRequest:
    """A request for ``hours`` working hours of the protocol's working day."""
    wh = c.s.protocol.working_hours
    return c.request(
        working_hours=hours,
        day_starts=wh.start,
        day_ends=wh.end,
        reminder_lead_working_hours=wh.reminder_lead_hours,
        reminder_lead_working_days=0,
        **kwargs,
    )


def stage_request(c: _Change, stage: Stage, **kwargs: object) -> ScheduleRequest:
    """The request placing ``stage``'s own time (which it must have), in working days or working hours."""
    if stage.response_working_hours is not None:
        kwargs.pop("receipt_day_counts", None)  # hours count from the instant itself
        return hours_request(c, stage.response_working_hours, **kwargs)
    assert stage.response_working_days is not None
    return c.request(working_days=stage.response_working_days, **kwargs)


def at_midnight(at: datetime) -> bool:
    """Whether ``at`` is a London midnight (where a working-day deadline ends)."""
    return at.astimezone(LONDON).time() == time(0)


def is_timed(stage: Stage) -> bool:
    """Whether the stage has a time to answer (in working days or hours)."""
    return stage.response_working_days is not None or stage.response_working_hours is not None


# --- opening duties when a stage is entered -----------------------------------------------------------------


def open_duties(c: _Change, stage: Stage) -> None:
    """Open the duties of ``stage``, just entered, and ask for their deadlines (counted from now)."""
    specs: list[tuple[str, OfficerDeadline | RequiredStep]] = []
    if stage.officer_deadline is not None:
        specs.append(("officer_deadline", stage.officer_deadline))
    specs += [("required_step", step) for step in stage.required_steps]
    for kind, spec in specs:
        what = spec.task if isinstance(spec, OfficerDeadline) else spec.what
        duty = Duty(stage=stage.key, key=spec.key, kind=kind, what=what)  # type: ignore[arg-type]
        c.s.duties = [d for d in c.s.duties if d.ref != duty.ref] + [duty]
        if spec.within_working_hours is not None:
            request = hours_request(c, spec.within_working_hours)
        else:
            request = c.request(working_days=spec.within_working_days)
        c.effects.append(PlanSchedule(purpose="duty", request=request, duty=duty.ref))


def _spec(s: EscalationState, duty: Duty) -> OfficerDeadline | RequiredStep:
    stage = next(st for st in s.protocol.track(s.track).stages if st.key == duty.stage)
    if duty.kind == "officer_deadline":
        assert stage.officer_deadline is not None
        return stage.officer_deadline
    return next(step for step in stage.required_steps if step.key == duty.key)


def _doers(s: EscalationState, duty: Duty) -> list[str]:
    spec = _spec(s, duty)
    return list(spec.done_by) if isinstance(spec, RequiredStep) else [RAISING_OFFICER]


def _replace(c: _Change, duty: Duty) -> None:
    c.s.duties = [duty if d.ref == duty.ref else d for d in c.s.duties]


def on_duty_scheduled(
    state: EscalationState, effect: PlanSchedule, schedule: Schedule, now: datetime
) -> Decision:
    """Take in a duty's deadline and tell whoever must do it."""
    c = _Change(state, now)
    duty = next((d for d in c.s.duties if d.ref == effect.duty), None)
    if duty is None:
        return c.decision()
    reminded = schedule.remind_at is not None and schedule.remind_at <= now
    duty = duty.model_copy(update={"schedule": schedule, "reminded": reminded})
    _replace(c, duty)
    spec = _spec(c.s, duty)
    who = "The raising officer" if duty.kind == "officer_deadline" else _names(c.s, _doers(c.s, duty))
    told = f" (to tell: {', '.join(spec.tell)})" if isinstance(spec, RequiredStep) and spec.tell else ""
    c.event(
        EventKind.DUTY_SET,
        f"{who} must record this by {due_words(schedule)} ({spec.time_words}): {duty.what}{told}. "
        f"Record it with record_step, step {duty.key}.",
        to=_doers(c.s, duty),
        data={"duty": duty.key, "kind": duty.kind, "due_at": schedule.due_at.isoformat()},
    )
    return c.decision()


# --- timers -------------------------------------------------------------------------------------------------


def _open(state: EscalationState) -> list[Duty]:
    return [d for d in state.duties if d.done is None and not d.overdue and d.schedule is not None]


def duty_wakeups(state: EscalationState) -> list[tuple[datetime, Callable[[], str]]]:
    """The instants at which a duty's reminder or deadline falls due, each with what it is (worded only
    when asked)."""
    times: list[tuple[datetime, Callable[[], str]]] = []
    for duty in _open(state):
        sched = duty.schedule
        assert sched is not None
        if sched.remind_at and not duty.reminded:
            times.append(
                (sched.remind_at, partial(_step_words, "remind of step {key}: due by {due}", duty, sched))
            )
        times.append((sched.due_at, partial(_step_words, "step {key} due: {due}", duty, sched)))
    return times


def _step_words(template: str, duty: Duty, sched: Schedule) -> str:
    return template.format(key=duty.key, due=due_words(sched))


def duties_due(c: _Change) -> None:
    """Remind of duties coming due, and flag (and tell of) those whose time has passed unrecorded."""
    s = c.s
    for duty in _open(s):
        sched = duty.schedule
        assert sched is not None
        if c.now >= sched.due_at:
            spec = _spec(s, duty)
            flag = Flag.OFFICER_DEADLINE_MISSED if duty.kind == "officer_deadline" else Flag.STEP_OVERDUE
            c.flag(flag)
            _replace(c, duty.model_copy(update={"overdue": True, "reminded": True}))
            to = list(dict.fromkeys([*_doers(s, duty), RAISING_OFFICER, *spec.missed_notify]))
            c.event(
                EventKind.DUTY_OVERDUE,
                f"Not recorded by {due_words(sched)}: {duty.what}. Record it with record_step, step "
                f"{duty.key}, as soon as it is done.",
                to=to,
                data={"duty": duty.key, "kind": duty.kind, "stage": duty.stage},
            )
        elif sched.remind_at and not duty.reminded and c.now >= sched.remind_at:
            _replace(c, duty.model_copy(update={"reminded": True}))
            c.event(
                EventKind.DUTY_REMINDER,
                f"Reminder: due by {due_words(sched)}: {duty.what}. Record it with record_step, step "
                f"{duty.key}.",
                to=_doers(s, duty),
                data={"duty": duty.key, "kind": duty.kind},
            )


# --- recording a step ---------------------------------------------------------------------------------------


def _guard_record_step(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    pending = [d for d in s.duties if d.done is None]
    if not pending:
        raise Refused("there is no step or officer's task to record at this escalation")
    if not any(_allowed(s, d, actor) for d in pending):
        raise Refused(
            "only the raising officer (or a role the protocol names for a step) may record a step; you act "
            f"as {s.protocol.role_name(actor.role)}"
        )


def _allowed(s: EscalationState, duty: Duty, actor: Actor) -> bool:
    if duty.kind == "officer_deadline":
        return _is_officer(s, actor)
    return _is_officer(s, actor) or any(_plays(s, actor, role) for role in _doers(s, duty))


def _apply_record_step(c: _Change, a: RecordStep) -> None:
    s = c.s
    pending = [d for d in s.duties if d.done is None]
    here = current_stage(s).key
    matching = sorted((d for d in pending if d.key == a.step), key=lambda d: d.stage != here)
    if not matching:
        keys = ", ".join(sorted({d.key for d in pending})) or "none"
        raise Refused(f"no step {a.step!r} is waiting to be recorded; steps waiting: {keys}")
    duty = matching[0]
    if not _allowed(s, duty, a.actor):
        raise Refused(f"only {_names(s, _doers(s, duty))} may record {duty.key!r}")
    spec = _spec(s, duty)
    done_at = a.done_at or c.now
    if done_at.tzinfo is None or done_at.utcoffset() is None:
        raise Refused("done_at: give the time with its zone (2026-03-03T10:30:00+00:00)")
    if done_at > c.now:
        raise Refused("done_at: it is in the future; give when it was done")
    if done_at < c.now - DONE_WITHIN:
        raise Refused("done_at: more than a year ago; a step that old does not meet this stage's duty")
    if isinstance(spec, RequiredStep) and spec.tell:
        missing = [p for p in spec.tell if p not in a.told]
        if missing:
            raise Refused(
                f"told: the step needs {', '.join(spec.tell)} told; say who was (missing: "
                f"{', '.join(missing)})"
            )
        if a.how is None:
            raise Refused(
                "how: say how they were told (in_person, phone, video_call, letter, email, "
                "text_message, other)"
            )
    record = StepRecord(by=a.actor, at=c.now, done_at=done_at, told=list(a.told), how=a.how, note=a.note)
    late = duty.schedule is not None and done_at >= duty.schedule.due_at
    _replace(c, duty.model_copy(update={"done": record}))
    if not any(d.overdue and d.done is None and d.kind == duty.kind for d in s.duties):
        c.unflag(Flag.OFFICER_DEADLINE_MISSED if duty.kind == "officer_deadline" else Flag.STEP_OVERDUE)
    told = (
        f" Told: {', '.join(a.told)}" + (f", by {a.how.replace('_', ' ')}." if a.how else ".")
        if a.told
        else ""
    )
    when = f"{done_at.astimezone(LONDON):%A %-d %B %Y at %H:%M}"
    c.event(
        EventKind.STEP_RECORDED,
        f"Done{' late' if late else ''} on {when}: {duty.what}.{told}"
        + (f" {a.note.strip()}" if a.note.strip() else ""),
        actor=a.actor,
        to=[RAISING_OFFICER] if not _is_officer(s, a.actor) else None,
        data={
            "duty": duty.key,
            "kind": duty.kind,
            "stage": duty.stage,
            "late": late,
            "told": list(a.told),
            "how": a.how,
        },
    )
    c.outcome = f"recorded: {duty.key}"


def need_steps_done(s: EscalationState) -> None:
    """Refuse to resolve a stage while a step it requires is not recorded."""
    here = current_stage(s).key
    missing = [d for d in s.duties if d.stage == here and d.kind == "required_step" and d.done is None]
    if missing:
        first = missing[0]
        raise Refused(
            f"{current_stage(s).name} needs this recorded before it can be resolved: {first.what} "
            f"(record_step, step {first.key})"
        )
