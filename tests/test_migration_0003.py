"""Revision 0003 on a database holding data from before it, on SQLite and PostgreSQL: state rows take their
run, raw reply tokens are replaced by their hashes (and expire), retried activities of escalations that
were running across the upgrade still write nothing twice, and downgrading is refused once an escalation id
has two escalations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from activities.db import migrate
from activities.db.base import make_engine
from activities.db_records import DbRecordStore
from activities.mail import find_reply_token
from tests.test_db_records import ESC, RUN, T0, event, raised

TOKEN = "Ab3_raw-token-from-0002x"
ISSUED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def old_engine(db_url: str) -> Iterator[Engine]:
    """A database at revision 0002 with an escalation (two events, a case note), a refusal and a token."""
    migrate.upgrade(db_url, "0002_mail")
    engine = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"

    def at(value: datetime) -> object:
        return value.replace(tzinfo=None) if sqlite else value

    with engine.begin() as conn:
        for seq, kind in ((1, "raised"), (2, "note")):
            conn.execute(
                text(
                    "INSERT INTO escalation_events (escalation_id, seq, run_id, authority, child_ref, track, "
                    "stage, status, kind, at, text, data, recorded_at) VALUES (:esc, :seq, :run, "
                    "'waltham-forest', 'C4F2A9', 'iro', 'stage-1', 'awaiting_response', :kind, :at, 'x', "
                    "'{}', :at)"
                ),
                {"esc": ESC, "seq": seq, "run": RUN, "kind": kind, "at": at(T0)},
            )
        conn.execute(
            text(
                "INSERT INTO escalations (escalation_id, authority, track, category, stage, stage_name, "
                "stage_number, formal, status, held_by, raised_by_id, raised_by_role, raised_at, child_ref, "
                "flags, last_seq, updated_at) VALUES (:esc, 'waltham-forest', 'iro', 'Care planning', "
                "'stage-1', 'Stage 1 - Informal alert', 1, false, 'awaiting_response', '[]', 'iro-7', 'iro', "
                ":at, 'C4F2A9', '[]', 2, :at)"
            ),
            {"esc": ESC, "at": at(T0)},
        )
        conn.execute(
            text(
                "INSERT INTO case_notes (escalation_id, seq, authority, child_ref, note_type, body, status, "
                "attempts, created_at) VALUES (:esc, 1, 'waltham-forest', 'C4F2A9', 'IRO informal alert', "
                "'body', 'pending', 0, :at)"
            ),
            {"esc": ESC, "at": at(T0)},
        )
        conn.execute(
            text(
                "INSERT INTO reply_tokens (token, idempotency_key, escalation_id, stage, person_id, role, "
                "purpose, created_at) VALUES (:token, :key, :esc, 'stage-1', 'tm-3', 'team_manager', "
                "'reply', :at)"
            ),
            {"token": TOKEN, "key": f"{ESC}/1", "esc": ESC, "at": at(ISSUED)},
        )
    try:
        yield engine
    finally:
        engine.dispose()


def test_upgrading_keeps_what_was_there_and_hashes_the_reply_tokens(db_url: str, old_engine: Engine) -> None:
    migrate.upgrade(db_url)
    store = DbRecordStore(old_engine)
    state = store.state(ESC)
    assert state is not None and state.run_id == RUN, "the state row takes the run of its latest event"
    [note] = store.case_notes()
    assert (note.run_id, note.seq) == ("", 1), "an older note keeps its key"

    # The escalation was running across the upgrade: its retried and next activities carry its run id.
    assert store.append_event(event(2)) is False
    assert store.append_event(event(3)) is True
    state = store.state(ESC, RUN)
    assert state is not None and state.last_seq == 3

    with old_engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash, expires_at FROM reply_tokens")).one()
        columns = set(conn.execute(text("SELECT * FROM reply_tokens")).keys())
    assert "token" not in columns
    assert stored[0] == hashlib.sha256(TOKEN.encode()).hexdigest()
    found = find_reply_token(old_engine, TOKEN, now=ISSUED + timedelta(days=1))
    assert found is not None and (found.escalation_id, found.person_id, found.run_id) == (ESC, "tm-3", "")
    assert found.expires_at == ISSUED + timedelta(days=60)
    assert find_reply_token(old_engine, TOKEN, now=ISSUED + timedelta(days=60)) is None


def test_downgrading_is_refused_once_an_id_names_two_escalations(db_url: str, old_engine: Engine) -> None:
    migrate.upgrade(db_url)
    migrate.downgrade(db_url, "0002_mail")  # one escalation per id: fine
    assert migrate.current(db_url) == "0002_mail"
    migrate.upgrade(db_url)
    store = DbRecordStore(old_engine)
    assert store.append_event(raised(run_id="run-2", at=T0 + timedelta(days=400))) is True
    with pytest.raises(RuntimeError, match=rf"escalation id '{ESC}' was used by more than one escalation"):
        migrate.downgrade(db_url, "0002_mail")
    assert migrate.current(db_url) == migrate.head()
    assert len(store.events(ESC)) == 3
