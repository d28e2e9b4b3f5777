"""The database record store on SQLite and on a real PostgreSQL: migrations, one transaction per event
(event, state, case note), exactly-once writes, the append-only event log, refusals, case-note delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from jinja2 import UndefinedError
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from temporalio.testing import WorkflowEnvironment

import activities.db_records as db_records
from activities.case_notes import CaseNoteMessage, FileCaseNoteAdapter, deliver_pending
from activities.db import migrate
from activities.db.base import Base, make_engine, session_factory
from activities.db.record_models import CaseNote, EscalationEvent, EscalationRecord, SignalRefusal
from activities.db_records import (
    COLLECTIVE_CHILD_REF,
    NO_CASE_NOTE_KINDS,
    DbRecordStore,
    InvalidRecord,
    render_case_note,
)
from activities.recording import RecordStore
from schemas.effects import EscalationSnapshot, RecordEventInput, RefusalInput
from schemas.escalation import Accept, Actor, EventKind, Refusal, Respond, Status, TimelineEntry
from tests.databases import migrated_engine
from tests.driver import make_raise
from tests.temporal_servers import free_port
from tests.workflow_harness import running, with_unique_id

RECORD_TABLES = {"escalation_events", "escalations", "case_notes", "signal_refusals"}

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
OFFICER = Actor(id="iro-7", role="iro")
MANAGER = Actor(id="tm-3", role="team_manager")
ESC = "waltham-forest-C4F2A9-0001"
RUN = "run-1"
NOTE_KEY = f"{ESC}-{RUN}"
"""Case notes are keyed on the escalation id, its first run id and the sequence number."""


def snapshot(
    stage_number: int = 1, formal: bool = False, flags: list[str] | None = None, **changes: Any
) -> EscalationSnapshot:
    values: dict[str, Any] = {
        "category": "Care planning",
        "service_area": "looked_after",
        "team": "Team A",
        "raised_by": OFFICER,
        "raised_at": T0,
        "stage_name": f"Stage {stage_number} - "
        + ("Formal management alert" if formal else "Informal alert"),
        "stage_number": stage_number,
        "formal": formal,
        "held_by": ["team_manager"],
        "deadline": T0 + timedelta(days=7),
        "deadline_date": date(2026, 3, 9),
        "total_deadline_date": date(2026, 3, 30) if formal else None,
        "flags": flags or [],
    }
    values.update(changes)
    return EscalationSnapshot(**values)


def event(
    seq: int,
    kind: EventKind = EventKind.NOTE,
    *,
    escalation_id: str = ESC,
    child_ref: str = "C4F2A9",
    stage: str = "stage-1",
    status: Status = Status.AWAITING_RESPONSE,
    snap: EscalationSnapshot | None = None,
    text: str = "",
    data: dict[str, Any] | None = None,
    actor: Actor | None = OFFICER,
    at: datetime | None = None,
    authority: str = "waltham-forest",
    run_id: str = RUN,
) -> RecordEventInput:
    return RecordEventInput(
        escalation_id=escalation_id,
        run_id=run_id,
        authority=authority,
        child_ref=child_ref,
        track="iro",
        status=status,
        stage=stage,
        entry=TimelineEntry(
            seq=seq,
            at=at or T0 + timedelta(minutes=seq),
            kind=kind,
            actor=actor,
            stage=stage,
            text=text or f"{kind.value} {seq}",
            data=data or {},
        ),
        snapshot=snap,
    )


def raised(escalation_id: str = ESC, child_ref: str = "C4F2A9", **kw: Any) -> RecordEventInput:
    kw.setdefault("snap", snapshot())
    return event(
        1,
        EventKind.RAISED,
        escalation_id=escalation_id,
        child_ref=child_ref,
        text="The care plan has not been updated since the review.",
        **kw,
    )


def refusal(action: str = "refer_to_cafcass", at: datetime = T0, run_id: str = RUN) -> RefusalInput:
    return RefusalInput(
        escalation_id=ESC,
        run_id=run_id,
        authority="waltham-forest",
        refusal=Refusal(at=at, action=action, actor=OFFICER, reason=f"{action} is not open now"),
    )


def count(engine: Engine, model: type[Base]) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- fixtures: every test runs on SQLite and on PostgreSQL (``db_url``, from tests/databases.py) ------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url) as engine:
        yield engine


@pytest.fixture
def store(engine: Engine) -> DbRecordStore:
    return DbRecordStore(engine)


# --- migrations ---------------------------------------------------------------------------------------------


SQLITE_GUARDS = {
    "escalation_events_no_update",
    "escalation_events_no_delete",
    "sent_mail_no_update",
    "sent_mail_no_delete",
    "signal_refusals_no_update",
    "signal_refusals_no_delete",
    "case_notes_no_delete",
    "case_notes_content_fixed",
    "escalations_no_delete",
    "audit_log_no_update",  # revision 0005_audit
    "audit_log_no_delete",
    "inbound_mail_no_update",  # revision 0007_inbound_mail
    "inbound_mail_no_delete",
}
POSTGRES_GUARDS = {
    "escalation_events_no_update_delete",
    "escalation_events_no_truncate",
    "escalation_events_append_only",  # the trigger functions
    "records_refuse_change",
    "case_notes_content_fixed",
    "sent_mail_no_update_delete",
    "sent_mail_no_truncate",
    "signal_refusals_no_update_delete",
    "signal_refusals_no_truncate",
    "case_notes_no_delete",
    "case_notes_no_truncate",
    "escalations_no_delete",
    "escalations_no_truncate",
    "audit_log_no_update_delete",  # revision 0005_audit
    "audit_log_no_truncate",
    "inbound_mail_no_update_delete",  # revision 0007_inbound_mail
    "inbound_mail_no_truncate",
}


def _guards(url: str) -> set[str]:
    """The guarding triggers (and PostgreSQL's trigger functions) present in the database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
                return {r[0] for r in rows}
            triggers = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
            functions = conn.execute(
                text(
                    "SELECT proname FROM pg_proc WHERE proname IN "
                    "('escalation_events_append_only', 'records_refuse_change', 'case_notes_content_fixed')"
                )
            )
            return {r[0] for r in triggers} | {r[0] for r in functions}
    finally:
        engine.dispose()


def test_migrations_go_up_to_head_down_to_base_and_up_again(db_url: str) -> None:
    assert migrate.current(db_url) is None
    assert not tables(db_url) & RECORD_TABLES

    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()
    assert tables(db_url) >= RECORD_TABLES
    assert _guards(db_url) == (SQLITE_GUARDS if db_url.startswith("sqlite") else POSTGRES_GUARDS)

    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    assert not tables(db_url) & RECORD_TABLES
    assert not _guards(db_url)

    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()
    assert tables(db_url) >= RECORD_TABLES


def test_the_records_migration_is_revision_0001_records_and_can_be_targeted(db_url: str) -> None:
    migrate.upgrade(db_url, "0001_records")
    assert migrate.current(db_url) == "0001_records"
    assert tables(db_url) >= RECORD_TABLES
    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None


def test_the_hand_written_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    def table_of(diff: Any) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if name in RECORD_TABLES:
                return str(name)
            if isinstance(part, str) and part in RECORD_TABLES:
                return part
        return None

    ours = [d for d in diffs if table_of(d) in RECORD_TABLES]
    assert ours == []


# --- one transaction: event, state, case note ---------------------------------------------------------------


def test_an_event_writes_the_event_the_state_and_the_case_note_in_step(store: DbRecordStore) -> None:
    assert store.append_event(raised()) is True

    [row] = store.events(ESC)
    assert (row.seq, row.kind, row.run_id, row.authority, row.child_ref) == (
        1,
        "raised",
        "run-1",
        "waltham-forest",
        "C4F2A9",
    )
    assert row.at == T0 + timedelta(minutes=1) and row.at.tzinfo is not None
    assert (row.actor_id, row.actor_role, row.stage, row.status) == (
        "iro-7",
        "iro",
        "stage-1",
        "awaiting_response",
    )
    assert row.recorded_at.tzinfo is not None

    state = store.state(ESC)
    assert state is not None
    assert (state.status, state.stage, state.stage_number, state.formal, state.last_seq) == (
        "awaiting_response",
        "stage-1",
        1,
        False,
        1,
    )
    assert state.held_by == ["team_manager"] and state.flags == []
    assert (state.raised_by_id, state.raised_by_role, state.raised_at) == ("iro-7", "iro", T0)
    assert state.deadline == T0 + timedelta(days=7) and state.deadline_date == date(2026, 3, 9)
    assert (state.category, state.service_area, state.team) == ("Care planning", "looked_after", "Team A")

    [note] = store.case_notes()
    assert (note.escalation_id, note.seq, note.child_ref, note.status, note.attempts) == (
        ESC,
        1,
        "C4F2A9",
        "pending",
        0,
    )
    assert note.note_type == "IRO informal alert"
    assert "The care plan has not been updated since the review." in note.body
    assert "Child: C4F2A9" in note.body and "Monday 9 March 2026" in note.body

    # Escalated to a formal stage: the state follows the new snapshot, the note is a formal alert.
    moved = event(
        2,
        EventKind.ESCALATED,
        stage="stage-2",
        snap=snapshot(2, formal=True, held_by=["head_of_service"], flags=["overdue"]),
        text="No answer by the deadline.",
    )
    assert store.append_event(moved) is True
    state = store.state(ESC)
    assert state is not None
    assert (state.stage, state.stage_number, state.formal, state.last_seq) == ("stage-2", 2, True, 2)
    assert state.held_by == ["head_of_service"] and state.flags == ["overdue"]
    assert state.total_deadline_date == date(2026, 3, 30)
    assert [n.note_type for n in store.case_notes()] == [
        "IRO informal alert",
        "IRO formal management alert - Stage 2",  # the stage's own type (Waltham Forest 8.1)
    ]
    assert [e.seq for e in store.events(ESC)] == [1, 2]

    # An event without a snapshot still moves status and stage; the rest of the state stays.
    assert store.append_event(event(3, EventKind.RESOLVED, stage="stage-2", status=Status.RESOLVED))
    state = store.state(ESC)
    assert state is not None
    assert (state.status, state.last_seq, state.stage_name) == (
        "resolved",
        3,
        "Stage 2 - Formal management alert",
    )
    assert (
        store.timeline(ESC)[2] == event(3, EventKind.RESOLVED, stage="stage-2", status=Status.RESOLVED).entry
    )


def test_a_retried_event_writes_nothing_and_returns_false(store: DbRecordStore, engine: Engine) -> None:
    assert store.append_event(raised()) is True
    before = store.state(ESC)
    again = raised().model_copy(update={"entry": raised().entry.model_copy(update={"text": "changed"})})
    assert store.append_event(again) is False
    assert store.append_event(raised()) is False
    assert (count(engine, EscalationEvent), count(engine, CaseNote), count(engine, EscalationRecord)) == (
        1,
        1,
        1,
    )
    assert store.events(ESC)[0].text == "The care plan has not been updated since the review."
    after = store.state(ESC)
    assert before is not None and after is not None
    assert after.updated_at == before.updated_at


def test_a_unique_violation_race_counts_as_already_written(
    store: DbRecordStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.append_event(raised()) is True
    real_exists = db_records._exists
    calls = {"n": 0}

    def stale_check(*args: Any) -> bool:
        # The first check ran before a concurrent attempt committed: it saw nothing.
        calls["n"] += 1
        return False if calls["n"] == 1 else real_exists(*args)

    monkeypatch.setattr(db_records, "_exists", stale_check)
    assert store.append_event(raised()) is False
    assert (count(engine, EscalationEvent), count(engine, CaseNote)) == (1, 1)


def test_the_database_refuses_to_change_or_delete_events(store: DbRecordStore, engine: Engine) -> None:
    store.append_event(raised())
    statements = ["UPDATE escalation_events SET text = 'rewritten'", "DELETE FROM escalation_events"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE escalation_events")
    for statement in statements:
        with pytest.raises(DBAPIError) as info, engine.begin() as conn:
            conn.execute(text(statement))
        assert "escalation_events is append-only" in str(info.value), statement
    [row] = store.events(ESC)
    assert row.text == "The care plan has not been updated since the review."


def _refused(engine: Engine, statement: str, message: str) -> None:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(text(statement))
    assert message in str(info.value), statement


def test_sent_mail_refusals_case_notes_and_states_never_vanish_or_change_content(
    store: DbRecordStore, engine: Engine
) -> None:
    store.append_event(raised())
    store.append_refusal(refusal())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sent_mail (message_id, idempotency_key, escalation_id, run_id, person_id, "
                "address, kind, subject, sent_at) VALUES ('<m1@x>', 'k/1', :esc, 'run-1', 'p1', "
                "'p1@example.org', 'raised', 'Subject', :at)"
            ),
            {"esc": ESC, "at": T0},
        )
    postgres = engine.dialect.name == "postgresql"
    for table in ("sent_mail", "signal_refusals"):
        _refused(engine, f"UPDATE {table} SET escalation_id = 'other'", f"{table} is append-only: UPDATE")
        _refused(engine, f"DELETE FROM {table}", f"{table} is append-only: DELETE")
        if postgres:
            _refused(engine, f"TRUNCATE {table}", f"{table} is append-only: TRUNCATE")
    for table in ("case_notes", "escalations"):
        _refused(engine, f"DELETE FROM {table}", f"{table} is append-only: DELETE")
        if postgres:
            _refused(engine, f"TRUNCATE {table}", f"{table} is append-only: TRUNCATE")
    for change in (
        "body = 'rewritten'",
        "note_type = 'other'",
        "child_ref = 'C999'",
        "seq = 9",
        "run_id = 'x'",
    ):
        _refused(engine, f"UPDATE case_notes SET {change}", "case_notes content is fixed")
    # What delivery changes stays possible; so does the state row's status.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE case_notes SET attempts = attempts + 1, status = 'delivered', external_ref = 'r-1', "
                "last_error = NULL, delivered_at = :at"
            ),
            {"at": T0},
        )
        conn.execute(text("UPDATE escalations SET status = 'resolved'"))
    [note] = store.case_notes()
    assert (note.status, note.attempts, note.external_ref) == ("delivered", 1, "r-1")
    assert "The care plan has not been updated since the review." in note.body
    assert (count(engine, SignalRefusal), count(engine, EscalationRecord)) == (1, 1)


# --- an escalation id used again (after Temporal's retention) -----------------------------------------------


def test_an_escalation_id_used_again_keeps_both_escalations_events_states_and_case_notes(
    store: DbRecordStore, engine: Engine, tmp_path: Path
) -> None:
    first = [raised(), event(2, EventKind.ESCALATED, stage="stage-2", snap=snapshot(2, formal=True))]
    later = T0 + timedelta(days=400)
    second = [
        raised(run_id="run-2", at=later, snap=snapshot(raised_at=later)),
        event(2, EventKind.RESPONSE, run_id="run-2", actor=MANAGER, at=later + timedelta(hours=1)),
        event(3, EventKind.RESOLVED, run_id="run-2", status=Status.RESOLVED, at=later + timedelta(hours=2)),
    ]
    assert [store.append_event(e) for e in first + second] == [True] * 5
    assert [store.append_refusal(refusal(run_id=r)) for r in (RUN, "run-2")] == [True, True]

    # A retried activity of either run writes nothing twice.
    assert [store.append_event(e) for e in first + second] == [False] * 5
    assert store.append_refusal(refusal(run_id="run-2")) is False
    counts = (count(engine, EscalationEvent), count(engine, CaseNote), count(engine, EscalationRecord))
    assert counts == (5, 5, 2)
    assert count(engine, SignalRefusal) == 2

    assert [(e.run_id, e.seq) for e in store.events(ESC)] == [
        (RUN, 1),
        (RUN, 2),
        ("run-2", 1),
        ("run-2", 2),
        ("run-2", 3),
    ]
    old, new = store.state(ESC, RUN), store.state(ESC, "run-2")
    assert old is not None and new is not None
    assert (old.status, old.stage, old.last_seq) == ("awaiting_response", "stage-2", 2)
    assert (new.status, new.stage, new.last_seq) == ("resolved", "stage-1", 3)
    latest = store.state(ESC)
    assert latest is not None and latest.run_id == "run-2", "without a run id: the latest escalation"
    assert [e.kind for e in store.timeline(ESC)] == [EventKind.RAISED, EventKind.RESPONSE, EventKind.RESOLVED]
    assert [e.kind for e in store.timeline(ESC, RUN)] == [EventKind.RAISED, EventKind.ESCALATED]

    assert [(n.run_id, n.seq) for n in store.case_notes(escalation_id=ESC)] == [
        (RUN, 1),
        (RUN, 2),
        ("run-2", 1),
        ("run-2", 2),
        ("run-2", 3),
    ]
    adapter = FileCaseNoteAdapter(tmp_path / "notes")
    assert deliver_pending(engine, adapter) == 5
    keys = sorted(str(d["idempotency_key"]) for d in adapter.delivered())
    assert keys == sorted([f"{ESC}-{RUN}-1", f"{ESC}-{RUN}-2"] + [f"{ESC}-run-2-{i}" for i in (1, 2, 3)])


def test_notes_recorded_without_a_run_id_keep_their_old_key(store: DbRecordStore, tmp_path: Path) -> None:
    assert store.append_event(raised(run_id=""))
    [note] = store.case_notes()
    assert CaseNoteMessage.from_row(note).idempotency_key == f"{ESC}-1"


# --- NUL characters ----------------------------------------------------------------------------------------


def test_nul_characters_are_replaced_so_the_escalation_never_fails_over_them(
    store: DbRecordStore, engine: Engine
) -> None:
    """PostgreSQL cannot store NUL in text or jsonb (psycopg2 raises a plain ValueError, which the activity
    would report as non-retryable, failing the workflow): each NUL is stored as U+FFFD instead."""
    with_nul = raised(data={"plan\x00": ["step\x00one"]})
    with_nul = with_nul.model_copy(
        update={"entry": with_nul.entry.model_copy(update={"text": "before\x00after"})}
    )
    assert store.append_event(with_nul) is True
    assert store.append_event(with_nul) is False, "the same event, retried, is still recognised"
    nul_refusal = refusal()
    nul_refusal = nul_refusal.model_copy(
        update={"refusal": nul_refusal.refusal.model_copy(update={"reason": "no\x00reason"})}
    )
    assert store.append_refusal(nul_refusal) is True
    assert store.append_refusal(nul_refusal) is False

    [row] = store.events(ESC)
    assert row.text == "before\ufffdafter"
    assert row.data == {"plan\ufffd": ["step\ufffdone"]}
    [note] = store.case_notes()
    assert "before\ufffdafter" in note.body and "\x00" not in note.body
    assert store.refusals(ESC)[0].reason == "no\ufffdreason"


def test_refusals_are_kept_once(store: DbRecordStore, engine: Engine) -> None:
    assert store.append_refusal(refusal()) is True
    assert store.append_refusal(refusal()) is False
    # The same instant written in another zone is the same refusal.
    same_instant = T0.astimezone(timezone(timedelta(hours=1)))
    assert store.append_refusal(refusal(at=same_instant)) is False
    assert store.append_refusal(refusal(action="bypass")) is True
    assert store.append_refusal(refusal(at=T0 + timedelta(seconds=1))) is True
    assert count(engine, SignalRefusal) == 3
    kept = store.refusals(ESC)
    assert [(r.action, r.at) for r in kept] == [
        ("refer_to_cafcass", T0),
        ("bypass", T0),
        ("refer_to_cafcass", T0 + timedelta(seconds=1)),
    ]
    assert kept[0].reason.endswith("is not open now") and kept[0].actor_role == "iro"


# --- what goes on the child's file --------------------------------------------------------------------------


def test_collective_alerts_produce_no_case_note(store: DbRecordStore, engine: Engine) -> None:
    collective = "waltham-forest-COLLECTIVE-0001"
    assert store.append_event(raised(escalation_id=collective, child_ref=COLLECTIVE_CHILD_REF))
    assert store.append_event(
        event(2, EventKind.ESCALATED, escalation_id=collective, child_ref=COLLECTIVE_CHILD_REF)
    )
    # Or flagged in the entry's data, whatever the child reference.
    flagged = "waltham-forest-C000B1-0001"
    assert store.append_event(raised(escalation_id=flagged, child_ref="C000B1", data={"collective": True}))
    assert [e.seq for e in store.events(collective)] == [1, 2]
    assert store.state(collective) is not None and store.state(flagged) is not None
    assert count(engine, CaseNote) == 0
    # An individual alert about the same theme still goes on that child's file.
    assert store.append_event(raised())
    assert [n.escalation_id for n in store.case_notes()] == [ESC]


def test_reminders_and_advance_notices_go_in_the_log_but_not_on_the_file(store: DbRecordStore) -> None:
    store.append_event(raised())
    for seq, kind in enumerate(sorted(NO_CASE_NOTE_KINDS), start=2):
        assert store.append_event(event(seq, kind))
    assert len(store.events(ESC)) == 1 + len(NO_CASE_NOTE_KINDS)
    assert [n.seq for n in store.case_notes()] == [1]


def test_note_types_follow_the_protocols_wording(store: DbRecordStore) -> None:
    cp = "wigan-C0000C-0001"
    chair = Actor(id="chair-1", role="cp_chair")
    store.append_event(
        event(
            1,
            EventKind.RAISED,
            escalation_id=cp,
            child_ref="C0000C",
            authority="wigan",
            snap=snapshot(raised_by=chair),
            actor=chair,
        )
    )
    store.append_event(
        event(
            2,
            EventKind.NOTE,
            escalation_id=cp,
            child_ref="C0000C",
            authority="wigan",
            data={"good_practice": True},
        )
    )
    store.append_event(
        event(
            3,
            EventKind.NOTE,
            escalation_id=cp,
            child_ref="C0000C",
            authority="wigan",
            data={"case_note_type": "Progress Review"},
        )
    )
    store.append_event(raised())
    store.append_event(event(2, EventKind.CAFCASS_REFERRAL, data={"consulted": ["ad_quality_assurance"]}))
    types = {(n.escalation_id, n.seq): n.note_type for n in store.case_notes()}
    assert types == {
        (cp, 1): "Child Protection Dispute Resolution - Stage 1",  # Wigan's MiCare workflow, stage 1
        (cp, 2): "CPC/IRO good practice highlight",
        (cp, 3): "Progress Review",
        (ESC, 1): "IRO informal alert",
        (ESC, 2): "IRO CAFCASS referral",
    }
    cafcass = next(n for n in store.case_notes() if n.note_type == "IRO CAFCASS referral")
    assert "Consulted before referring: ad quality assurance." in cafcass.body


def test_every_kind_renders_with_optional_values_missing(store: DbRecordStore) -> None:
    bare = snapshot(service_area=None, team=None, deadline=None, deadline_date=None, held_by=[])
    store.append_event(event(1, EventKind.RAISED, snap=bare, actor=None))
    kinds = [k for k in EventKind if k not in NO_CASE_NOTE_KINDS and k is not EventKind.RAISED]
    for seq, kind in enumerate(kinds, start=2):
        assert store.append_event(event(seq, kind, actor=None, data={"unexpected": [1, 2]}))
    notes = store.case_notes()
    assert len(notes) == 1 + len(kinds)
    for note in notes:
        assert note.body.startswith(note.note_type + "\n") and "None" not in note.body, note.body
    # A required value missing is a bug in the caller: it fails loudly instead of writing a blank.
    with pytest.raises(UndefinedError):
        render_case_note("event", {"note_type": "IRO informal alert"})


# --- invalid data and database trouble ----------------------------------------------------------------------


def test_invalid_records_are_refused_naming_the_problem(store: DbRecordStore, engine: Engine) -> None:
    with pytest.raises(InvalidRecord, match=r"first event .* needs a snapshot"):
        store.append_event(event(1, EventKind.RAISED))
    with pytest.raises(InvalidRecord, match=r"escalation_events\.at is a naive time"):
        store.append_event(raised(at=datetime(2026, 3, 2, 9, 30)))
    with pytest.raises(InvalidRecord, match=r"escalation_events\.stage is required but empty"):
        store.append_event(raised(stage=""))
    with pytest.raises(InvalidRecord, match=r"child_ref is 65 characters long; at most 64 fit"):
        store.append_event(raised(child_ref="C" * 65))
    assert (count(engine, EscalationEvent), count(engine, EscalationRecord), count(engine, CaseNote)) == (
        0,
        0,
        0,
    )

    store.append_event(raised())
    with pytest.raises(InvalidRecord, match="authority is 'wigan' but the escalation was recorded with"):
        store.append_event(event(2, authority="wigan"))
    assert count(engine, EscalationEvent) == 1
    assert issubclass(InvalidRecord, ValueError)


def test_database_unreachable_raises_operational_error() -> None:
    port = free_port()  # nothing listens there
    engine = make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/escalations")
    try:
        with pytest.raises(OperationalError):
            DbRecordStore(engine).append_event(raised())
    finally:
        engine.dispose()


def test_the_store_is_a_record_store(store: DbRecordStore) -> None:
    records: RecordStore = store
    assert records.append_event(raised()) is True


# --- delivering case notes ----------------------------------------------------------------------------------


class FlakyAdapter:
    def __init__(self, inner: FileCaseNoteAdapter, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: list[str] = []

    def deliver(self, note: CaseNoteMessage) -> str:
        self.calls.append(note.idempotency_key)
        if len(self.calls) <= self.failures:
            raise ConnectionError("case system unavailable (HTTP 503)")
        return self.inner.deliver(note)


def test_deliver_pending_writes_one_file_per_note_and_marks_them_delivered(
    store: DbRecordStore, engine: Engine, tmp_path: Path
) -> None:
    store.append_event(raised())
    store.append_event(event(2, EventKind.REMINDER))  # no note
    response = {"action_plan": "Share the plan", "action_plan_due": "2026-03-13"}
    store.append_event(event(3, EventKind.RESPONSE, actor=MANAGER, text="Plan updated.", data=response))
    adapter = FileCaseNoteAdapter(tmp_path / "case-notes")

    assert deliver_pending(engine, adapter) == 2
    files = sorted(p.name for p in (tmp_path / "case-notes").iterdir())
    assert files == [f"{NOTE_KEY}-1.json", f"{NOTE_KEY}-3.json"]
    document = json.loads((tmp_path / "case-notes" / f"{NOTE_KEY}-3.json").read_text("utf-8"))
    assert document["idempotency_key"] == f"{NOTE_KEY}-3" and document["note_type"] == "IRO informal alert"
    assert "Response: Plan updated." in document["body"]
    assert "Action plan: Share the plan (due Friday 13 March 2026)" in document["body"]

    notes = store.case_notes()
    assert [(n.status, n.attempts, n.external_ref, n.last_error) for n in notes] == [
        ("delivered", 1, f"file:{NOTE_KEY}-1.json", None),
        ("delivered", 1, f"file:{NOTE_KEY}-3.json", None),
    ]
    assert all(n.delivered_at is not None and n.delivered_at.tzinfo is not None for n in notes)
    assert store.case_notes(status="pending") == []
    assert deliver_pending(engine, adapter) == 0  # nothing left

    # The adapter itself is idempotent: handing a note over again changes nothing.
    message = CaseNoteMessage.from_row(notes[0])
    before = (tmp_path / "case-notes" / f"{NOTE_KEY}-1.json").read_bytes()
    assert adapter.deliver(message) == f"file:{NOTE_KEY}-1.json"
    assert (tmp_path / "case-notes" / f"{NOTE_KEY}-1.json").read_bytes() == before
    assert len(list((tmp_path / "case-notes").iterdir())) == 2  # no temporary files left behind


def test_a_failing_adapter_marks_notes_failed_and_they_are_retried_later(
    store: DbRecordStore, engine: Engine, tmp_path: Path
) -> None:
    store.append_event(raised())
    store.append_event(event(2, EventKind.ESCALATED))
    adapter = FlakyAdapter(FileCaseNoteAdapter(tmp_path / "notes"), failures=3)

    assert deliver_pending(engine, adapter) == 0
    failed = store.case_notes(status="failed")
    assert [(n.seq, n.attempts) for n in failed] == [(1, 1), (2, 1)]
    assert all(n.last_error == "ConnectionError: case system unavailable (HTTP 503)" for n in failed)
    assert not (tmp_path / "notes").exists()

    # Capped: a note that failed max_attempts times is left for a person to look at.
    assert deliver_pending(engine, adapter, max_attempts=1) == 0
    assert len(adapter.calls) == 2

    # Later: the third call still fails, the fourth works; then everything is delivered.
    assert deliver_pending(engine, adapter, limit=1) == 0
    assert deliver_pending(engine, adapter) == 2
    notes = store.case_notes()
    assert [(n.seq, n.status, n.attempts, n.last_error) for n in notes] == [
        (1, "delivered", 3, None),
        (2, "delivered", 2, None),
    ]
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == [
        f"{NOTE_KEY}-1.json",
        f"{NOTE_KEY}-2.json",
    ]


# --- end to end: the workflow's worker recording into the database ------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_an_escalation_run_by_the_worker_is_recorded_in_the_database(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    store = DbRecordStore.open(url)
    raise_ = with_unique_id(make_raise("waltham-forest", "iro"))
    async with running(time_skipping_env, raise_, tmp_path, records=store) as run:
        view = await run.view()
        recipient = Actor(id="sw-1", role=view.held_by[0])
        await run.update("respond", Respond(actor=recipient, answer="Done."))
        await run.update("accept", Accept(actor=raise_.officer, note="Thanks."))
        outcome = await run.result()
    events = store.events(raise_.escalation_id)
    assert len(events) == outcome.events
    assert [e.seq for e in events] == list(range(1, outcome.events + 1))
    assert events[0].kind == "raised" and events[-1].kind == "resolved"
    state = store.state(raise_.escalation_id)
    assert state is not None
    assert (state.status, state.last_seq, state.child_ref) == ("resolved", outcome.events, raise_.child_ref)
    notes = store.case_notes(escalation_id=raise_.escalation_id)
    assert notes and all(n.note_type == "IRO informal alert" for n in notes)
    assert deliver_pending(store.engine, FileCaseNoteAdapter(tmp_path / "notes")) == len(notes)
    store.engine.dispose()
