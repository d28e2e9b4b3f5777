"""Deadlines computed by the clock activity, and what falls due when a timer fires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemas.effects import PlanSchedule
from schemas.escalation import (
    EscalationState,
    EventKind,
    Flag,
    Status,
)
from schemas.protocol import RAISING_OFFICER
from schemas.schedule import Schedule
from workflows.rules._core import (
    Decision,
    _Change,
    _names,
    addressees,
    running_schedule,
    track_of,
)
from workflows.rules._duties import due_words, duties_due, duty_wakeups, on_duty_scheduled
from workflows.rules._ladder import _escalate
from workflows.rules._track_rules import total_days

# --- computed schedules and timers ---------------------------------------------------------------------


def on_scheduled(state: EscalationState, effect: PlanSchedule, schedule: Schedule, now: datetime) -> Decision:
    """Take in a schedule computed by the clock activity (recorded in history)."""
    if effect.purpose == "duty":
        return on_duty_scheduled(state, effect, schedule, now)
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
        if schedule.working_hours is not None:
            hours = schedule.working_hours
            span = f"{hours} working hour{'' if hours == 1 else 's'}"
        c.event(
            a.kind,
            f"{a.text} Answer due by {due_words(schedule)} ({span}).",
            actor=a.actor,
            to=a.to,
            cc=a.cc,
            data={"due_date": schedule.due_date.isoformat(), "working_days": days},
        )
    return c.decision()


def next_wakeup(state: EscalationState) -> datetime | None:
    """The next instant at which ``on_timer`` has something to do, if any."""
    times = [at for at, _ in wakeups(state)]
    return min(times) if times else None


Wakeup = tuple[datetime, Callable[[], str]]
"""An instant at which ``on_timer`` has something to do, and what it is (worded only when asked)."""


def wakeups(state: EscalationState) -> list[Wakeup]:
    """Every instant at which ``on_timer`` has something to do, each with what it is (for the timer's
    summary in the Temporal UI: role names and dates only, never the child or the concern)."""
    if state.status.is_closed:
        return []
    times: list[Wakeup] = []
    total = state.total_schedule
    if total is not None and _total_runs(state):
        times.append((total.due_at, lambda: f"total limit: {due_words(total)}"))
    sched = running_schedule(state)
    if sched:

        def holders() -> str:
            return _names(state, addressees(state)[0])

        if sched.remind_at and not state.stage_reminded:
            times.append((sched.remind_at, lambda: f"remind {holders()}: answer due by {due_words(sched)}"))
        times.append((sched.due_at, lambda: f"deadline: {holders()}, {due_words(sched)}"))
    hold = state.hold_schedule
    if state.status is Status.ESCALATION_DUE and hold:
        times.append((hold.remind_at or hold.due_at, lambda: f"escalation due: {due_words(hold)}"))
    if state.status is Status.MONITORING and hold and Flag.ACTION_PLAN_DUE not in state.flags:
        times.append((hold.due_at, lambda: f"action plan due: {due_words(hold)}"))
    if state.stall is not None:  # held notices are tried again (by the shell: ``redeliver``)
        times.append((state.stall.retry_at, lambda: "try the held notices again"))
    times += duty_wakeups(state)
    return times


def _total_runs(state: EscalationState) -> bool:
    """The total limit runs from the first formal stage until resolution or an agreed action plan."""
    return (
        state.total_schedule is not None
        and Flag.BREACHED not in state.flags
        and state.status is not Status.MONITORING
    )


def on_timer(
    state: EscalationState, now: datetime, *, exact_clock: bool = True, honour: bool = True
) -> Decision:
    """Do whatever has fallen due by ``now``: breach, reminders, automatic escalation.

    ``exact_clock``: a stage entered because this one's deadline passed begins at that deadline, and its
    first working day is the one that deadline's midnight starts (so a ladder that times out stage by
    stage ends with the total limit). False for escalations started before it (the shell's
    ``EXACT_CLOCK`` patch), whose next stage counted its days from the day after.

    ``honour``: a deadline passing before a stage kept for exceptional circumstances holds for the
    officer's decision. False for escalations started before the shell's ``HONOURED`` patch, which
    climbed into it.
    """
    c = _Change(state, now, honour=honour)
    s = c.s
    if s.status.is_closed:
        return c.decision()
    total = s.total_schedule
    if total and _total_runs(s) and now >= total.due_at:
        c.flag(Flag.BREACHED)
        c.event(
            EventKind.BREACHED,
            f"The {total_days(s)}-working-day limit for the formal process ended "
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
                    f"Reminder: an answer is due by {due_words(sched)}.",
                    to=to,
                    cc=cc,
                )
        if now >= sched.due_at:
            c.flag(Flag.OVERDUE)
            c.event(
                EventKind.DEADLINE_PASSED,
                f"No answer by {due_words(sched)}.",
            )
            begins_at = sched.due_at if exact_clock else None
            _escalate(c, None, "no answer within the stage's time", begins_at=begins_at)
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
    duties_due(c)
    return c.decision()
