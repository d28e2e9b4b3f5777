"""A realistic year of escalations for the reports, written through the record store's own write path
(``DbRecordStore.append_event``, one transaction per event, as the worker writes them).

``year_of_escalations(store, per_authority=...)`` simulates each escalation's life on its authority's real
protocol (tracks, categories, stages and their working-day allowances, the total limit, the teams and
people of its sample directory): raised, sent to the stage, reminded, answered late or on time, the stage
deadline passing, escalated, bypassed, extended, referred to CAFCASS, withdrawn, resolved, breached, or
still open at ``NOW``; some are collective alerts (flag ``collective``), and good practice notes
(compliments, kind ``good_practice_noted``) are recorded beside them. Seeded: the same data every run.

The benchmark (``benchmarks/reports.py``) uses it too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from activities.db_records import DbRecordStore
from activities.directory import load_directory_file
from activities.settings import PROJECT_ROOT
from activities.working_days import WorkingDayCalendar, end_of_day, local_time, london_date
from protocols import load_protocol
from schemas.effects import EscalationSnapshot, RecordEventInput
from schemas.escalation import Actor, EventKind, Status, TimelineEntry
from schemas.good_practice import GOOD_PRACTICE
from schemas.protocol import Protocol, Track

AUTHORITIES = ("dudley", "gloucestershire", "waltham-forest", "waltham-forest-fwi", "wigan")
YEAR = 2026
NOW = datetime(2027, 1, 8, 17, 0, tzinfo=UTC)
"""When the data set ends: escalations whose next step would come later are still open."""


@dataclass
class _Life:
    """One escalation being simulated: its facts, its current state and its events so far."""

    authority: str
    protocol: Protocol
    track: Track
    escalation_id: str
    child_ref: str
    category: str
    team: str | None
    officer: Actor
    raised_at: datetime
    calendar: WorkingDayCalendar
    ending: datetime
    flags: list[str] = field(default_factory=list)
    stage_index: int = 0
    status: Status = Status.AWAITING_RESPONSE
    deadline: datetime | None = None
    total_due: date | None = None
    events: list[RecordEventInput] = field(default_factory=list)

    def stage(self) -> Any:
        return self.track.stages[self.stage_index]

    def add(self, kind: EventKind, at: datetime, *, data: dict[str, Any] | None = None) -> None:
        stage = self.stage()
        snapshot = EscalationSnapshot(
            category=self.category,
            team=self.team,
            raised_by=self.officer,
            raised_at=self.raised_at,
            stage_name=stage.name,
            stage_number=self.stage_index + 1,
            formal=stage.formal,
            held_by=list(stage.to),
            deadline=self.deadline,
            deadline_date=london_date(self.deadline - timedelta(microseconds=1)) if self.deadline else None,
            total_deadline_date=self.total_due,
            flags=list(self.flags),
        )
        self.events.append(
            RecordEventInput(
                escalation_id=self.escalation_id,
                authority=self.authority,
                child_ref=self.child_ref,
                track=self.track.key,
                status=self.status,
                stage=stage.key,
                entry=TimelineEntry(
                    seq=len(self.events) + 1,
                    at=at,
                    kind=kind,
                    actor=self.officer,
                    stage=stage.key,
                    text=f"{kind.value.replace('_', ' ')}.",
                    data=data or {},
                ),
                snapshot=snapshot,
            )
        )


def _teams_and_people(authority: str) -> tuple[list[str], dict[tuple[str, str | None], str]]:
    directory = load_directory_file(PROJECT_ROOT / "protocols" / "directories" / f"{authority}.yaml")
    teams = sorted({a.team for a in directory.assignments if a.team})
    holders = {(a.role, a.team): a.person for a in directory.assignments}
    return teams, holders


def _at(day: date, hour: int) -> datetime:
    return local_time(day, hour)


def _simulate(rng: random.Random, life: _Life) -> None:
    """The escalation's life from raising until it closes or ``NOW`` comes."""
    p, track, cal = life.protocol, life.track, life.calendar
    total_days = track.total_formal_working_days or p.total_formal_working_days
    at = life.raised_at
    life.add(EventKind.RAISED, at, data=life.__dict__.get("_raise_data", {}))
    while True:
        stage = life.stage()
        allowance = stage.response_working_days or 10
        begun = london_date(at)
        if stage.formal and life.total_due is None:
            life.total_due = cal.add_working_days(begun, total_days)
        due = cal.add_working_days(begun, allowance)
        life.deadline = end_of_day(due)
        life.status = Status.AWAITING_RESPONSE
        life.add(EventKind.SENT_TO_STAGE, at)
        notes: list[tuple[datetime, EventKind, dict[str, Any]]] = [
            (at + timedelta(hours=1 + k), EventKind.NOTE, {}) for k in range(rng.randint(0, 3))
        ]
        if rng.random() < 0.02:  # its notice could not go out: stalled, waiting for someone to act
            life.flags.append("stalled")
            life.add(EventKind.STALLED, at + timedelta(minutes=5))
            return
        steps: list[tuple[datetime, EventKind, dict[str, Any]]] = list(notes)
        if rng.random() < 0.12:  # more time asked for, and decided a day later
            asked = _at(cal.add_working_days(begun, 1), 12)
            approved = rng.random() < 0.7
            steps.append((asked, EventKind.EXTENSION_REQUESTED, {}))
            steps.append((asked + timedelta(days=1), EventKind.EXTENSION_DECIDED, {"approved": approved}))
            if approved:
                due = cal.add_working_days(due, 5)
        took = rng.randint(1, allowance + 4)
        answered = _at(cal.add_working_days(begun, took), 11)
        reminder = _at(cal.subtract_working_days(due, 1), 9)
        if reminder > at and reminder < answered:
            steps.append((reminder, EventKind.REMINDER, {}))
        late = answered > end_of_day(due)
        if late:
            steps.append((end_of_day(due), EventKind.DEADLINE_PASSED, {}))
        if (
            life.total_due is not None
            and "breached" not in life.flags
            and answered > end_of_day(life.total_due)
        ):
            steps.append((end_of_day(life.total_due), EventKind.BREACHED, {}))
        for when, kind, data in sorted(steps, key=lambda s: s[0]):
            if when > life.ending:
                return
            if kind is EventKind.EXTENSION_DECIDED and data["approved"]:
                life.deadline = end_of_day(due)
            if kind is EventKind.DEADLINE_PASSED:
                life.flags.append("overdue")
            if kind is EventKind.BREACHED:
                life.flags.append("breached")
            life.add(kind, when, data=data)
        if late and life.stage_index + 1 < len(track.stages) and rng.random() < 0.5:
            at = end_of_day(due)  # escalated when the deadline passed, without an answer
            life.flags = [f for f in life.flags if f != "overdue"]
            life.add(EventKind.ESCALATED, at, data={"automatic": True})
            life.stage_index += 1
            continue
        if answered > life.ending:
            return
        life.status = Status.AWAITING_DECISION
        life.add(EventKind.RESPONSE, answered)
        decided = answered + timedelta(hours=2)
        if decided > life.ending or rng.random() < 0.06:  # the answer is still being considered
            return
        roll = rng.random()
        can_climb = life.stage_index + 1 < len(track.stages)
        looked_after = life.__dict__.get("_child_status") == "looked_after"
        if roll < 0.03 and looked_after and stage.formal:
            life.status = Status.REFERRED_TO_CAFCASS
            life.add(EventKind.CAFCASS_REFERRAL, decided)
            return
        if roll < 0.07:
            life.status = Status.WITHDRAWN
            life.add(EventKind.WITHDRAWN, decided)
            return
        if roll < 0.11 and life.stage_index + 2 < len(track.stages):
            life.flags = [f for f in life.flags if f != "overdue"]
            life.add(EventKind.BYPASSED, decided)
            life.stage_index += 2
            at = decided
            continue
        if roll < 0.45 and can_climb:
            life.flags = [f for f in life.flags if f != "overdue"]
            life.add(EventKind.ESCALATED, decided)
            life.stage_index += 1
            at = decided
            continue
        if roll < 0.47 and not can_climb:
            life.status = Status.EXHAUSTED
            life.add(EventKind.EXHAUSTED, decided)
            return
        life.status = Status.RESOLVED
        life.add(EventKind.RESOLVED, decided)
        return


def escalation_lives(
    per_authority: int,
    seed: int = 14,
    prefix: str = "rpt",
    ending: datetime = NOW,
    authorities: tuple[str, ...] = AUTHORITIES,
) -> Iterator[list[RecordEventInput]]:
    """Each simulated escalation's events, ``per_authority`` escalations for each seed authority, raised on
    working days over the 400 days to two days before ``ending`` (by default December of the year
    before ``YEAR`` to December of ``YEAR``); nothing happens after ``ending``."""
    rng = random.Random(seed)
    last = london_date(ending) - timedelta(days=2)
    first = last - timedelta(days=398)
    span = (last - first).days
    for authority in authorities:
        p = load_protocol(authority)
        cal = WorkingDayCalendar(p.closure_days)
        teams, holders = _teams_and_people(authority)
        for n in range(per_authority):
            track = rng.choice(p.tracks)
            team = rng.choice(teams) if teams else None
            role = track.officer_roles[0]
            officer_id = holders.get((role, team)) or holders.get((role, None)) or f"{authority}-{role}"
            day = cal.next_working_day(first + timedelta(days=rng.randrange(span)))
            collective = rng.random() < 0.04
            statuses = list(track.child_statuses or p.child_statuses)
            child_status = rng.choice(statuses) if statuses and rng.random() < 0.9 else None
            life = _Life(
                authority=authority,
                protocol=p,
                track=track,
                escalation_id=f"{prefix}-{authority}-{n:06d}",
                child_ref="COLLECTIVE" if collective else f"C{rng.randrange(10**6):06d}",
                category=rng.choice(track.categories),
                team=team,
                officer=Actor(id=officer_id, role=role),
                raised_at=_at(day, 9 + rng.randrange(8)),
                calendar=cal,
                ending=ending,
                flags=["collective"] if collective else [],
            )
            data: dict[str, Any] = {"category": life.category, "service_area": None}
            if child_status:
                data["child_status"] = child_status
            life.__dict__["_raise_data"] = data
            life.__dict__["_child_status"] = child_status
            _simulate(rng, life)
            yield life.events


def good_practice_notes(per_authority: int, seed: int = 15, prefix: str = "gp") -> Iterator[RecordEventInput]:
    """Compliments: ``per_authority`` good practice notes for each seed authority over ``YEAR``, recorded as
    the good practice workflow records them (an event of its own, track and stage ``good-practice``)."""
    rng = random.Random(seed)
    for authority in AUTHORITIES:
        p = load_protocol(authority)
        for n in range(per_authority):
            day = date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))
            role = rng.choice(p.tracks).officer_roles[0]
            yield RecordEventInput(
                escalation_id=f"{prefix}-{authority}-{n:05d}",
                authority=authority,
                child_ref=f"C{rng.randrange(10**6):06d}",
                track=GOOD_PRACTICE,
                status=Status.CLOSED,
                stage=GOOD_PRACTICE,
                entry=TimelineEntry(
                    seq=1,
                    at=_at(day, 14),
                    kind=EventKind.GOOD_PRACTICE_NOTED,
                    actor=Actor(id=f"{authority}-{role}", role=role),
                    stage=GOOD_PRACTICE,
                    text="Good practice noted.",
                    data={"about_role": "social_worker"},
                ),
            )


def year_of_escalations(
    store: DbRecordStore, per_authority: int, notes_per_authority: int = 0, ending: datetime = NOW
) -> int:
    """Write the year to ``ending`` through ``store``; the number of events written."""
    written = 0
    for events in escalation_lives(per_authority, ending=ending):
        for event in events:
            store.append_event(event)
            written += 1
    for note in good_practice_notes(notes_per_authority):
        store.append_event(note)
        written += 1
    return written
