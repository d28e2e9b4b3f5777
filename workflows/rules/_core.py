"""The rules' vocabulary: decisions and refusals, reading the state, changing a copy, who may act."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.effects import Announcement, Effect, Notify, PlanSchedule, Record, SchedulePurpose
from schemas.escalation import (
    Actor,
    EscalationState,
    EventKind,
    Flag,
    Status,
    TimelineEntry,
)
from schemas.protocol import RAISING_OFFICER, Stage, Track
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


def began_at_a_deadline(state: EscalationState) -> bool:
    """Whether the stage's time counts the day it began as its first day (entered when the previous
    stage's deadline passed): only such a schedule counts from a day before the day it was received."""
    sched = state.stage_schedule
    return sched is not None and sched.counts_from < london_today(sched.received_at)


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
            "duties": list(state.duties),
        }
    )


class _Change:
    """A working copy of the state plus the effects produced so far.

    ``honour``: the escalation started with the shell's ``HONOURED`` patch, so the rules honour a gate on the
    first stage, hold before a stage kept for exceptional circumstances and tell the officer what another
    judge decides; False replays escalations started before it exactly as they ran.
    """

    def __init__(self, state: EscalationState, now: datetime, *, honour: bool = True) -> None:
        self.s = _copy(state)
        self.now = now
        self.honour = honour
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
        lead = track_of(self.s).reminder_lead_working_days  # a track's own lead (v2) overrides the protocol's
        kwargs.setdefault(
            "reminder_lead_working_days", p.reminder_lead_working_days if lead is None else lead
        )
        return ScheduleRequest(closure_days=list(p.closure_days), **kwargs)

    def flag(self, flag: Flag) -> None:
        if flag not in self.s.flags:
            self.s.flags.append(flag)

    def unflag(self, flag: Flag) -> None:
        if flag in self.s.flags:
            self.s.flags.remove(flag)

    def decision(self) -> Decision:
        s = self.s
        if s.status is not Status.ESCALATION_DUE and Flag.EXCEPTIONAL_DECISION_DUE in s.flags:
            # The officer decided one way or another (withdrawn, accepted, closed, referred): none is held.
            self.unflag(Flag.EXCEPTIONAL_DECISION_DUE)
            s.hold_target = s.hold_via = None
        return Decision(state=self.s, effects=self.effects, outcome=self.outcome)


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


def _covering(s: EscalationState, roles: list[str]) -> list[str]:
    """The cover roles acting at the current stage for those of ``roles`` whose holders are absent."""
    stage = current_stage(s).key
    return [c.cover_role for c in s.covers if c.stage == stage and c.role in roles]


def _need_recipient(s: EscalationState, actor: Actor, doing: str) -> None:
    to, _ = addressees(s)
    if actor.role not in to and actor.role not in _covering(s, to):
        raise Refused(
            f"only the stage's recipients ({_names(s, to)}) may {doing}; "
            f"you act as {s.protocol.role_name(actor.role)}"
        )


def _told_officer(s: EscalationState, actor: Actor | None, roles: list[str]) -> list[str]:
    """``roles`` with the raising officer added when the stage's judge is someone else who decided: the
    officer who raised the concern is told of the answer and of the resolution."""
    if RAISING_OFFICER in current_stage(s).judges() or (actor is not None and _is_officer(s, actor)):
        return roles
    return roles if RAISING_OFFICER in roles else [RAISING_OFFICER, *roles]


def _need_judge(s: EscalationState, actor: Actor, doing: str) -> None:
    judges = current_stage(s).judges()
    if not (_is_officer(s, actor) or any(_plays(s, actor, judge) for judge in judges)):
        raise Refused(f"only {_names(s, judges)} may {doing} at this stage")


def _need_involved(s: EscalationState, actor: Actor, doing: str) -> None:
    if not (_is_officer(s, actor) or actor.role in s.protocol.roles):
        raise Refused(f"only people involved under the {s.protocol.authority} protocol may {doing}")


def _not_past(day: date | None, now: datetime, what: str) -> None:
    if day is not None and day < london_today(now):
        raise Refused(f"{what} {day:%-d %B %Y} is in the past; give today or a later date")


def _suffix(note: str) -> str:
    return f" {note.strip()}" if note.strip() else ""


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
