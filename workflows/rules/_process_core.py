"""What the protocol's other processes share with the escalation rules: a working copy, events, deadlines.

The same vocabulary as ``workflows.rules._core`` (``Refused``, effects ``Record``/``Notify``/
``PlanSchedule``/``RecordRefusal``, schedules placed by the clock activity), over the smaller states of
``schemas.process_models``. Pure: no I/O, no clock (``now`` is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from schemas.effects import Announcement, Effect, Notify, PlanSchedule, Record
from schemas.escalation import Actor, EventKind, Flag, RaiseConcern, TimelineEntry
from schemas.process_models import DecisionsState, PracticeState
from schemas.schedule import Schedule, ScheduleRequest
from workflows.rules._core import Refused

S = TypeVar("S", DecisionsState, PracticeState)

DUE = "{due}"
"""Stands for the deadline's words in an announcement's text, filled in once the deadline is placed."""


@dataclass
class ProcessDecision(Generic[S]):
    """The next state, what to carry out, a sentence for the sender, and an escalation to open, if any."""

    state: S
    effects: list[Effect] = field(default_factory=list)
    outcome: str = ""
    opens: RaiseConcern | None = None


def copy(state: S) -> S:
    """A copy safe to change (lists copied; the protocol and recorded entries shared)."""
    return state.model_copy(
        update={
            "flags": list(state.flags),
            "timeline": list(state.timeline),
            "refusals": list(state.refusals),
            "problems": list(state.problems),
        }
    )


class Change(Generic[S]):
    """A working copy of a process's state plus the effects produced so far."""

    def __init__(self, state: S, now: datetime) -> None:
        self.s: S = copy(state)
        self.now = now
        self.effects: list[Effect] = []
        self.outcome = ""
        self.opens: RaiseConcern | None = None

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
            stage=self.s.stage,
            text=text,
            data=data or {},
        )
        self.s.timeline.append(entry)
        self.effects.append(Record(entry=entry))
        if to:
            self.effects.append(Notify(entry_seq=entry.seq, kind=kind, to=to, cc=cc or []))
        return entry

    def request(self, working_days: int, **kwargs: Any) -> ScheduleRequest:
        p = self.s.protocol
        kwargs.setdefault("received_at", self.now)
        kwargs.setdefault("reminder_lead_working_days", p.reminder_lead_working_days)
        return ScheduleRequest(working_days=working_days, closure_days=list(p.closure_days), **kwargs)

    def schedule(self, request: ScheduleRequest, announce: Announcement | None = None) -> None:
        """Place the running deadline; ``announce`` is recorded once it is known (``DUE`` in its text)."""
        self.effects.append(PlanSchedule(purpose="stage", request=request, announce=announce))

    def flag(self, flag: Flag) -> None:
        if flag not in self.s.flags:
            self.s.flags.append(flag)

    def decision(self) -> ProcessDecision[S]:
        return ProcessDecision(state=self.s, effects=self.effects, outcome=self.outcome, opens=self.opens)


def on_scheduled(state: S, effect: PlanSchedule, schedule: Schedule, now: datetime) -> ProcessDecision[S]:
    """Take in the deadline the clock activity placed, and record its announcement."""
    c = Change(state, now)
    c.s.schedule = schedule
    c.s.reminded = schedule.remind_at is not None and schedule.remind_at <= now
    if effect.announce:
        a = effect.announce
        days = schedule.working_days_left(schedule.received_at)
        span = f"{days} working day{'' if days == 1 else 's'}" if days else "the same day"
        due = f"the end of {schedule.due_date:%A %-d %B %Y} ({span})"
        c.event(
            a.kind,
            a.text.replace(DUE, due),
            actor=a.actor,
            to=a.to,
            cc=a.cc,
            data={"due_date": schedule.due_date.isoformat(), "working_days": days},
        )
    return c.decision()


def next_wakeup(state: DecisionsState | PracticeState) -> datetime | None:
    """The next reminder or deadline while an answer is awaited."""
    sched = state.schedule
    if state.status.is_closed or sched is None or state.status.value != "awaiting_response":
        return None
    if sched.remind_at and not state.reminded:
        return min(sched.remind_at, sched.due_at)
    return sched.due_at


def with_problem(state: S, text: str) -> S:
    """The state with a problem the engineers must look at (a record or notice that failed for good)."""
    s: S = copy(state)
    s.problems = [*s.problems[-19:], text[:1_000]]
    if Flag.NEEDS_ATTENTION not in s.flags:
        s.flags.append(Flag.NEEDS_ATTENTION)
    return s


def need_open(state: DecisionsState | PracticeState, doing: str) -> None:
    if state.status.is_closed:
        raise Refused(
            f"this {state.status.value.replace('_', ' ')} process cannot {doing}; nothing more can be done"
        )


def need_role(state: DecisionsState | PracticeState, actor: Actor, roles: list[str], doing: str) -> None:
    if actor.role not in roles:
        p = state.protocol
        raise Refused(
            f"only {p.role_names(roles)} may {doing}; you act as {p.role_name(actor.role)} ({actor.role})"
        )


def working_days_left(state: DecisionsState | PracticeState, now: datetime) -> int | None:
    running = state.schedule if state.status.value == "awaiting_response" else None
    return running.working_days_left(now) if running else None
