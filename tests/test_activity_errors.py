"""How the recording and notifying activities report failures to Temporal, through the real activity code
(``activities/escalation_activities.py``) with the database record store and the SMTP notifier.

Retryable: the database or mail server down or locked, a protocol file that does not load on this worker.
Not retryable (``ApplicationError`` ``InvalidInput``, non_retryable): data that can never be written or sent.
And text with NUL characters is written (as U+FFFD), never a failure of the escalation.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.db.base import make_engine
from activities.db_records import DbRecordStore
from activities.escalation_activities import INVALID_INPUT, EscalationActivities, _heartbeating
from activities.mail import ProtocolUnavailable
from protocols import ProtocolError
from tests.databases import DIRECTORIES, migrated_engine
from tests.smtp_server import Capture
from tests.temporal_servers import free_port
from tests.test_db_records import raised, refusal
from tests.test_mail import notifier, stage_sent


def outcome(activity: Callable[[Any], bool], arg: Any) -> tuple[str, BaseException | None]:
    """``("done", None)``, ``("retryable", error)`` or ``("non-retryable", error)`` as Temporal sees it."""
    try:
        ActivityEnvironment().run(activity, arg)
    except ApplicationError as exc:
        return ("non-retryable" if exc.non_retryable else "retryable"), exc
    except Exception as exc:  # anything but a non-retryable ApplicationError is retried
        return "retryable", exc
    return "done", None


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


def activities_on(engine: Engine, port: int, **kwargs: Any) -> EscalationActivities:
    return EscalationActivities(DbRecordStore(engine), notifier(engine, port, **kwargs))


def test_nul_characters_never_fail_the_escalation(engine: Engine, smtp_server: tuple[Capture, int]) -> None:
    capture, port = smtp_server
    acts = activities_on(engine, port)
    nul_event = raised()
    nul_event = nul_event.model_copy(update={"entry": nul_event.entry.model_copy(update={"text": "a\x00b"})})
    nul_refusal = refusal()
    nul_refusal = nul_refusal.model_copy(
        update={"refusal": nul_refusal.refusal.model_copy(update={"reason": "x\x00y"})}
    )
    assert outcome(acts.record_event, nul_event) == ("done", None)
    assert outcome(acts.record_refusal, nul_refusal) == ("done", None)
    assert outcome(acts.send_notification, stage_sent(text_extra="\x00")) == ("done", None)
    assert len(capture.deliveries) == 3


def test_data_that_can_never_be_written_is_not_retried(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    acts = activities_on(engine, port)
    kind, error = outcome(acts.record_event, raised(child_ref="C" * 65))
    assert kind == "non-retryable" and isinstance(error, ApplicationError) and error.type == INVALID_INPUT
    assert "child_ref is 65 characters long" in str(error)
    too_long = stage_sent().model_copy(update={"escalation_id": "wigan-" + "C" * 130})
    kind, error = outcome(acts.send_notification, too_long)
    assert kind == "non-retryable" and "escalation_id is 136 characters long" in str(error)
    assert capture.deliveries == []


def test_a_database_or_mail_server_that_is_down_is_retried(tmp_path: Path) -> None:
    down = make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/escalations")
    try:
        acts = activities_on(down, free_port())
        assert outcome(acts.record_event, raised())[0] == "retryable"
        assert outcome(acts.record_refusal, refusal())[0] == "retryable"
        assert outcome(acts.send_notification, stage_sent())[0] == "retryable"
    finally:
        down.dispose()
    with migrated_engine(f"sqlite:///{tmp_path / 'mail.db'}", directories=DIRECTORIES) as engine:
        kind, error = outcome(activities_on(engine, free_port()).send_notification, stage_sent())
        assert kind == "retryable" and isinstance(error, OSError), "no SMTP server listening"


def test_a_locked_sqlite_database_is_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with migrated_engine(url) as engine:

        @event.listens_for(engine, "connect")
        def _short_wait(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=50")  # after the engine's own 5000

        holder = make_engine(url)
        try:
            with holder.connect() as conn:
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
                kind, error = outcome(activities_on(engine, free_port()).record_event, raised())
                conn.exec_driver_sql("ROLLBACK")
        finally:
            holder.dispose()
        assert kind == "retryable" and "locked" in str(error)
        assert outcome(activities_on(engine, free_port()).record_event, raised()) == ("done", None)


def test_a_protocol_file_that_does_not_load_on_this_worker_is_retried(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server

    def broken(authority: str) -> Any:
        raise ProtocolError(f"protocols/{authority}.yaml: not found")

    kind, error = outcome(activities_on(engine, port, protocols=broken).send_notification, stage_sent())
    assert kind == "retryable" and isinstance(error, ProtocolUnavailable)
    assert capture.deliveries == []


def test_cancelling_an_activity_as_it_starts_heartbeating_never_hangs_it() -> None:
    """The SDK cancels a threaded activity by raising in its thread (by thread id). On CPython 3.11 a
    thread being started still carries its starter's id, so an unshielded cancellation could kill the
    heartbeat thread before it ran and leave the activity waiting for it for ever (seen under load)."""

    def heartbeat_forever() -> None:
        while True:
            with _heartbeating():
                pass

    for attempt in range(300):
        env = ActivityEnvironment()
        ended = threading.Event()

        def run(env: ActivityEnvironment = env, ended: threading.Event = ended) -> None:
            try:
                env.run(heartbeat_forever)
            except CancelledError:
                ended.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        time.sleep(random.Random(attempt).uniform(0, 0.003))
        env.cancel()
        # Cancelled, it ends at once; only a thread that never started can hold it for a minute.
        assert ended.wait(60), f"attempt {attempt}: the activity hung starting its heartbeat thread"
        thread.join()
