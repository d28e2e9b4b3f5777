"""The database record store: the ``RecordStore`` interface on PostgreSQL (or SQLite).

One transaction per event writes the event row (append-only), brings the escalation's state row up to date
from the event's snapshot, and adds the child's-record case note to the outbox (``case_notes``), which
``activities.case_notes.deliver_pending`` later hands to the case system. Everything is keyed on
(escalation_id, run_id, seq): the escalation, its first run id (an escalation id may be used again once
Temporal's retention removed the first one's history) and the workflow's event sequence. A retried activity
writes nothing twice and gets False.

Errors: data that cannot be recorded (a first event without a snapshot, an empty required value, a naive
time, text too long for its column) raises ``InvalidRecord``, which names the problem and should not be
retried. NUL characters, which PostgreSQL cannot store, are replaced with U+FFFD rather than refused
(``activities.db.checks``). Database trouble (connection lost, locked, a privilege missing) propagates as
SQLAlchemy's ``OperationalError``/``ProgrammingError``, which the activity retries.

Collective alerts (one concern about several children; Waltham Forest 4: "Collective alerts will not be
recorded on files") never produce a case note: an event is collective when its ``child_ref`` is
``COLLECTIVE`` or its entry's data has ``"collective": true``. Reminders and advance notices
(``NO_CASE_NOTE_KINDS``) produce none either: they tell people, they change nothing on the child's file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from activities.db.base import Base, make_engine, session_factory
from activities.db.checks import check_row, without_nul
from activities.db.record_models import CaseNote, EscalationEvent, EscalationRecord, SignalRefusal
from activities.working_days import LONDON, long_date
from protocols import ProtocolError, load_protocol
from schemas.effects import RecordEventInput, RefusalInput
from schemas.escalation import Concern, EventKind, Flag, TimelineEntry
from schemas.protocol import CASE_NOTE_TYPE_MAX, CaseNoteNaming

TEMPLATES = Path(__file__).resolve().parent / "templates" / "case_notes"

COLLECTIVE_CHILD_REF = "COLLECTIVE"
"""The ``child_ref`` of a collective alert: about several children, so recorded on no child's file."""

NO_CASE_NOTE_KINDS = frozenset(
    {EventKind.TOLD_IN_ADVANCE, EventKind.REMINDER, EventKind.ESCALATION_DUE_REMINDER}
)
"""Events that only tell someone something: they go in the event log but not on the child's file."""

STANDALONE_KINDS = frozenset({EventKind.GOOD_PRACTICE_NOTED})
"""Events that are not part of an escalation (a good practice note, ``workflows.good_practice``): the event
row and its case note are written, and no ``escalations`` state row (they are counted from the events)."""


class InvalidRecord(ValueError):
    """The event or refusal cannot be recorded as it is; retrying will not help."""


# --- which events go on the child's file, and as what --------------------------------------------------


def is_collective(child_ref: str, data: dict[str, Any]) -> bool:
    """A collective alert (about several children): never a case note on any child's file."""
    return child_ref.strip().upper() == COLLECTIVE_CHILD_REF or data.get("collective") is True


def officer_label(authority: str, role: str) -> str:
    """How the authority's case system names the raising officer's notes (its protocol's ``case_notes``).

    An authority whose protocol no longer loads still gets its notes, labelled with the role's words.
    """
    try:
        return load_protocol(authority).case_note_label(role)
    except ProtocolError:
        return role.replace("_", " ")


def _good_practice_type(authority: str) -> str:
    try:
        return load_protocol(authority).case_notes.good_practice
    except ProtocolError:
        return CaseNoteNaming().good_practice


def _protocol_stage_type(authority: str, track: str, stage: str, officer_role: str) -> str | None:
    """The stage's own case note type in the authority's protocol file, or None if it cannot be found."""
    try:
        protocol = load_protocol(authority)
        stages = protocol.track(track).stages
    except (ProtocolError, KeyError):
        return None
    for candidate in stages:
        if candidate.key == stage:
            return protocol.stage_note_type(candidate, officer_role)
    return None


def case_note_type(
    kind: EventKind,
    data: dict[str, Any],
    *,
    authority: str,
    officer_role: str,
    formal: bool,
    stage_number: int,
    stage_type: str | None = None,
    track: str | None = None,
    stage: str | None = None,
    stage_name: str | None = None,
) -> str:
    """The case note's type, in the protocol's own words.

    Each stage names its notes (``case_note_type`` in the protocol: Gloucestershire's "IRO concern/escalation
    form - Formal Level 4", Wigan's "IRO Dispute Resolution - Stage 2", Waltham Forest's "informal alert");
    the workflow passes the type of the stage the escalation is at (``stage_type``). Records from histories
    made before it did take the stage's type from the protocol file (``track``, ``stage``). An entry may
    name its own type in ``data["case_note_type"]``; ``data["good_practice"]`` marks a good practice note
    (Gloucestershire 3, Waltham Forest 2: compliments); a CAFCASS referral is "<officer> CAFCASS referral".
    """
    explicit = data.get("case_note_type")
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip()
    if data.get("good_practice") is True:
        return _good_practice_type(authority)
    officer = officer_label(authority, officer_role)
    if kind is EventKind.CAFCASS_REFERRAL:
        return f"{officer} CAFCASS referral"
    if stage_type:
        return stage_type
    if track and stage:
        found = _protocol_stage_type(authority, track, stage, officer_role)
        if found:
            return found
    if not formal:
        return f"{officer} informal alert"
    if stage_name:
        return f"{officer} formal alert - {stage_name}"[:CASE_NOTE_TYPE_MAX]
    return f"{officer} formal alert"  # no stage name either: never the engine's ordinal


# --- rendering ---------------------------------------------------------------------------------------------


def _label(value: object) -> str:
    return str(value).replace("_", " ").replace("-", " ")


def _when(value: datetime) -> str:
    local = value.astimezone(LONDON)
    return f"{long_date(local)} at {local:%H:%M}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,  # plain text for the case system, not HTML
        undefined=StrictUndefined,  # a required value missing is a bug: fail, do not write a blank
        extensions=["jinja2.ext.do"],
    )
    filters: dict[str, Callable[..., str]] = {"day": long_date, "when": _when, "label": _label}
    env.filters.update(filters)
    return env


_ENV = _environment()


def render_case_note(kind: str, context: dict[str, Any]) -> str:
    """The note's text from ``<kind>.txt``, or the generic ``event.txt``."""
    template = _ENV.select_template([f"{kind}.txt", "event.txt"])
    return template.render(context).strip() + "\n"


def _note_context(event: RecordEventInput, state: EscalationRecord, note_type: str) -> dict[str, Any]:
    entry = event.entry
    return {
        # required
        "note_type": note_type,
        "escalation_id": event.escalation_id,
        "seq": entry.seq,
        "kind": entry.kind.value,
        "kind_label": _label(entry.kind.value),
        "authority": event.authority,
        "child_ref": event.child_ref,
        "track": event.track,
        "stage": event.stage,
        "stage_name": state.stage_name,
        "formal": state.formal,
        "status": event.status.value,
        "status_label": _label(event.status.value),
        "closed": event.status.is_closed,
        "at": entry.at,
        "text": entry.text,
        "data": entry.model_dump(mode="json")["data"],
        # optional: always present, None (or empty) when unknown
        "actor_id": entry.actor.id if entry.actor else None,
        "actor_role": entry.actor.role if entry.actor else None,
        "category": state.category or None,
        "service_area": state.service_area,
        "team": state.team,
        "deadline": state.deadline,
        "deadline_date": state.deadline_date,
        "total_deadline_date": state.total_deadline_date,
        "flags": list(state.flags or []),
        "raised_by_id": state.raised_by_id,
        "raised_by_role": state.raised_by_role,
        # the concern as raised (None for escalations recorded before it was kept)
        "concern_summary": state.concern_summary,
        "impact_on_child": state.impact_on_child,
        "requested_action": state.requested_action,
        "child_views": state.child_views,
        "parents_views": state.parents_views,
    }


# --- the store ---------------------------------------------------------------------------------------------


class DbRecordStore:
    """``RecordStore`` on a SQLAlchemy engine whose database is migrated (``activities.db.migrate``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> DbRecordStore:
        """A store on ``url`` (default ``ESCALATION_DATABASE_URL``), migrated to head first unless not."""
        if migrate:
            from activities.db import migrate as migrations

            migrations.upgrade(url)
        return cls(make_engine(url))

    # -- writing --

    def append_event(self, event: RecordEventInput) -> bool:
        """Write the event, the state and the case note in one transaction; False if already written."""
        event = without_nul(event)
        for attempt in (1, 2):
            try:
                return self._append_event(event)
            except IntegrityError as exc:
                if self._event_exists(event.escalation_id, event.run_id, event.entry.seq):
                    return False  # a concurrent attempt wrote it first
                if attempt == 2:
                    raise _refused(_event_name(event), exc) from exc
                # e.g. a concurrent first event created the state row: try once more on the new state
            except DataError as exc:
                raise _refused(_event_name(event), exc) from exc
        raise AssertionError("unreachable")

    def _append_event(self, event: RecordEventInput) -> bool:
        entry = event.entry
        name = _event_name(event)
        with self._sessions.begin() as session:
            if _exists(session, EscalationEvent, event.escalation_id, event.run_id, entry.seq):
                return False
            if entry.kind in STANDALONE_KINDS:
                return self._append_standalone(session, event, name)
            state = session.get(EscalationRecord, (event.escalation_id, event.run_id), with_for_update=True)
            now = datetime.now(UTC)
            row = _event_row(event, now)
            _check_row(row, name)
            state = _updated_state(state, event, now, name)
            _check_row(state, name)
            session.add(row)
            session.add(state)
            note = self._case_note(event, state, now)
            if note is not None:
                _check_row(note, name)
                session.add(note)
            session.flush()
        return True

    def _append_standalone(self, session: Session, event: RecordEventInput, name: str) -> bool:
        """An event of its own (``STANDALONE_KINDS``): its row and, unless it says not, its case note."""
        entry = event.entry
        now = datetime.now(UTC)
        row = _event_row(event, now)
        _check_row(row, name)
        session.add(row)
        if entry.data.get("case_note") is not False and not is_collective(event.child_ref, entry.data):
            explicit = entry.data.get("case_note_type")
            note_type = explicit.strip() if isinstance(explicit, str) and explicit.strip() else ""
            note_type = note_type or _good_practice_type(event.authority)
            context = {
                "note_type": note_type,
                "escalation_id": event.escalation_id,
                "child_ref": event.child_ref,
                "at": entry.at,
                "actor_id": entry.actor.id if entry.actor else None,
                "actor_role": entry.actor.role if entry.actor else None,
                "text": entry.text,
                "data": entry.model_dump(mode="json")["data"],
            }
            note = CaseNote(
                escalation_id=event.escalation_id,
                run_id=event.run_id,
                seq=entry.seq,
                authority=event.authority,
                child_ref=event.child_ref,
                note_type=note_type[:CASE_NOTE_TYPE_MAX],
                body=render_case_note(entry.kind.value, context),
                status="pending",
                attempts=0,
                created_at=now,
            )
            _check_row(note, name)
            session.add(note)
        session.flush()
        return True

    def _case_note(self, event: RecordEventInput, state: EscalationRecord, now: datetime) -> CaseNote | None:
        entry = event.entry
        if entry.kind in NO_CASE_NOTE_KINDS or is_collective(event.child_ref, entry.data):
            return None
        if Flag.COLLECTIVE.value in (state.flags or []):  # a collective alert: on no child's file
            return None
        if entry.data.get("case_note") is False:  # about staff, not a child's care (a practice concern)
            return None
        note_type = case_note_type(
            entry.kind,
            entry.data,
            authority=event.authority,
            officer_role=state.raised_by_role,
            formal=state.formal,
            stage_number=state.stage_number,
            stage_type=event.snapshot.case_note_type if event.snapshot else None,
            track=event.track,
            stage=state.stage,
            stage_name=state.stage_name,
        )
        return CaseNote(
            escalation_id=event.escalation_id,
            run_id=event.run_id,
            seq=entry.seq,
            authority=event.authority,
            child_ref=event.child_ref,
            note_type=note_type,
            body=render_case_note(entry.kind.value, _note_context(event, state, note_type)),
            status="pending",
            attempts=0,
            created_at=now,
        )

    def append_refusal(self, refusal: RefusalInput) -> bool:
        """Keep a refused signal's reason; False if this refusal was already kept."""
        refusal = without_nul(refusal)
        r = refusal.refusal
        row = SignalRefusal(
            escalation_id=refusal.escalation_id,
            run_id=refusal.run_id,
            authority=refusal.authority,
            at=r.at,
            action=r.action,
            actor_id=r.actor.id,
            actor_role=r.actor.role,
            reason=r.reason,
            recorded_at=datetime.now(UTC),
        )
        name = f"refusal of {r.action!r} at {r.at.isoformat()} for escalation {refusal.escalation_id!r}"
        _check_row(row, name)
        try:
            with self._sessions.begin() as session:
                if self._refusal_exists(session, refusal):
                    return False
                session.add(row)
                session.flush()
        except IntegrityError as exc:
            with self._sessions() as session:
                if self._refusal_exists(session, refusal):
                    return False
            raise _refused(name, exc) from exc
        except DataError as exc:
            raise _refused(name, exc) from exc
        return True

    # -- reading (tests, reports) --

    def events(self, escalation_id: str, run_id: str | None = None) -> list[EscalationEvent]:
        """The escalation's events in sequence; with several runs of the id and no ``run_id``, run by run
        in the order they were first recorded."""
        with self._sessions() as session:
            query = select(EscalationEvent).where(EscalationEvent.escalation_id == escalation_id)
            if run_id is not None:
                query = query.where(EscalationEvent.run_id == run_id)
            rows = list(session.scalars(query.order_by(EscalationEvent.id)))
        first: dict[str, int] = {}
        for row in rows:
            first.setdefault(row.run_id, row.id)
        return sorted(rows, key=lambda e: (first[e.run_id], e.seq))

    def timeline(self, escalation_id: str, run_id: str | None = None) -> list[TimelineEntry]:
        """The recorded events as the workflow's timeline entries (of the latest run unless ``run_id``)."""
        if run_id is None:
            latest = self.state(escalation_id)
            run_id = latest.run_id if latest is not None else ""
        return [
            TimelineEntry.model_validate(
                {
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind,
                    "actor": {"id": e.actor_id, "role": e.actor_role}
                    if e.actor_id and e.actor_role
                    else None,
                    "stage": e.stage,
                    "text": e.text,
                    "data": e.data,
                }
            )
            for e in self.events(escalation_id, run_id)
        ]

    def state(self, escalation_id: str, run_id: str | None = None) -> EscalationRecord | None:
        """The escalation's state row: of ``run_id``, or of the latest escalation with this id."""
        with self._sessions() as session:
            if run_id is not None:
                return session.get(EscalationRecord, (escalation_id, run_id))
            query = select(EscalationRecord).where(EscalationRecord.escalation_id == escalation_id)
            latest = query.order_by(EscalationRecord.raised_at.desc(), EscalationRecord.updated_at.desc())
            return session.scalars(latest.limit(1)).first()

    def case_notes(
        self, status: str | None = None, escalation_id: str | None = None, run_id: str | None = None
    ) -> list[CaseNote]:
        with self._sessions() as session:
            query = select(CaseNote)
            if status is not None:
                query = query.where(CaseNote.status == status)
            if escalation_id is not None:
                query = query.where(CaseNote.escalation_id == escalation_id)
            if run_id is not None:
                query = query.where(CaseNote.run_id == run_id)
            return list(session.scalars(query.order_by(CaseNote.escalation_id, CaseNote.id)))

    def refusals(self, escalation_id: str | None = None) -> list[SignalRefusal]:
        with self._sessions() as session:
            query = select(SignalRefusal)
            if escalation_id is not None:
                query = query.where(SignalRefusal.escalation_id == escalation_id)
            return list(session.scalars(query.order_by(SignalRefusal.at, SignalRefusal.id)))

    # -- helpers --

    def _event_exists(self, escalation_id: str, run_id: str, seq: int) -> bool:
        with self._sessions() as session:
            return _exists(session, EscalationEvent, escalation_id, run_id, seq)

    @staticmethod
    def _refusal_exists(session: Session, refusal: RefusalInput) -> bool:
        query = select(SignalRefusal.id).where(
            SignalRefusal.escalation_id == refusal.escalation_id,
            SignalRefusal.run_id == refusal.run_id,
            SignalRefusal.at == refusal.refusal.at,
            SignalRefusal.action == refusal.refusal.action,
        )
        return session.scalar(query.limit(1)) is not None


def _exists(
    session: Session,
    model: type[EscalationEvent] | type[CaseNote],
    escalation_id: str,
    run_id: str,
    seq: int,
) -> bool:
    query = select(model.id).where(
        model.escalation_id == escalation_id, model.run_id == run_id, model.seq == seq
    )
    return session.scalar(query.limit(1)) is not None


def _event_row(event: RecordEventInput, now: datetime) -> EscalationEvent:
    entry = event.entry
    return EscalationEvent(
        escalation_id=event.escalation_id,
        seq=entry.seq,
        run_id=event.run_id,
        authority=event.authority,
        child_ref=event.child_ref,
        track=event.track,
        stage=event.stage,
        status=event.status.value,
        kind=entry.kind.value,
        at=entry.at,
        actor_id=entry.actor.id if entry.actor else None,
        actor_role=entry.actor.role if entry.actor else None,
        text=entry.text,
        data=entry.model_dump(mode="json")["data"],
        recorded_at=now,
    )


def _updated_state(
    state: EscalationRecord | None, event: RecordEventInput, now: datetime, name: str
) -> EscalationRecord:
    """The state row after ``event``: created from the first event's snapshot, then kept up to date."""
    seq = event.entry.seq
    if state is None:
        if event.snapshot is None:
            raise InvalidRecord(
                f"{name}: the first event recorded for an escalation needs a snapshot "
                "(category, raising officer, stage...) to create its state row; none was given"
            )
        state = EscalationRecord(
            escalation_id=event.escalation_id,
            run_id=event.run_id,
            authority=event.authority,
            track=event.track,
            child_ref=event.child_ref,
            last_seq=seq,
        )
    else:
        for field in ("authority", "track", "child_ref"):
            if getattr(state, field) != getattr(event, field):
                raise InvalidRecord(
                    f"{name}: {field} is {getattr(event, field)!r} but the escalation was recorded with "
                    f"{getattr(state, field)!r}"
                )
        if seq < state.last_seq:
            return state  # an older event arriving late: it goes in the log, the state stays newer
    state.status = event.status.value
    state.stage = event.stage
    state.last_seq = seq
    state.updated_at = now
    snap = event.snapshot
    if snap is not None:
        state.category = snap.category
        state.service_area = snap.service_area
        state.team = snap.team
        state.raised_by_id = snap.raised_by.id
        state.raised_by_role = snap.raised_by.role
        state.raised_at = snap.raised_at
        state.stage_name = snap.stage_name
        state.stage_number = snap.stage_number
        state.formal = snap.formal
        state.held_by = list(snap.held_by)
        state.deadline = snap.deadline
        state.deadline_date = snap.deadline_date
        state.total_deadline_date = snap.total_deadline_date
        state.flags = list(snap.flags)
        if snap.concern is not None:
            _keep_concern(state, snap.concern)
        if snap.part_of is not None and state.part_of is None:
            state.part_of = snap.part_of
    return state


def _keep_concern(state: EscalationRecord, concern: Concern) -> None:
    """The concern on the state row (written once; left alone when it is already there)."""
    values = {
        "concern_summary": concern.summary,
        "impact_on_child": concern.impact_on_child,
        "requested_action": concern.requested_action,
        "child_views": concern.child_views,
        "parents_views": concern.parents_views,
    }
    for column, value in values.items():
        if getattr(state, column) != value:
            setattr(state, column, value)


def _check_row(row: Base, name: str) -> None:
    check_row(row, name, InvalidRecord)


def _event_name(event: RecordEventInput) -> str:
    run = f" (run {event.run_id})" if event.run_id else ""
    return f"event {event.entry.seq} ({event.entry.kind.value}) of escalation {event.escalation_id!r}{run}"


def _refused(name: str, exc: IntegrityError | DataError) -> InvalidRecord:
    """What the database refused, by its first line of explanation."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return InvalidRecord(f"{name} refused by the database: {reason}")


__all__ = [
    "COLLECTIVE_CHILD_REF",
    "NO_CASE_NOTE_KINDS",
    "STANDALONE_KINDS",
    "DbRecordStore",
    "InvalidRecord",
    "case_note_type",
    "is_collective",
    "render_case_note",
]
