"""FileRecordStore and OutboxNotifier: each write keyed, so a retried activity writes nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from activities.recording import FileRecordStore, OutboxNotifier
from schemas.effects import NotificationInput, RecordEventInput, RefusalInput
from schemas.escalation import Actor, EventKind, Refusal, Status, TimelineEntry

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
OFFICER = Actor(id="chair-1", role="cp_chair")
MANAGER = Actor(id="manager-1", role="team_manager")
ESC_A = "wigan-TA0001-0001"
ESC_B = "wigan-TB0002-0001"


def entry(seq: int, kind: EventKind = EventKind.NOTE, text: str = "") -> TimelineEntry:
    return TimelineEntry(
        seq=seq,
        at=T0 + timedelta(minutes=seq),
        kind=kind,
        actor=OFFICER,
        stage="stage-1",
        text=text or f"entry {seq}",
        data={"n": seq},
    )


def event(seq: int, escalation_id: str = ESC_A, text: str = "") -> RecordEventInput:
    return RecordEventInput(
        escalation_id=escalation_id,
        authority="wigan",
        child_ref=escalation_id.split("-")[1],
        track="cp",
        status=Status.AWAITING_RESPONSE,
        stage="stage-1",
        entry=entry(seq, text=text),
    )


def refusal(
    action: str = "refer_to_cafcass", at: datetime = T0, escalation_id: str = ESC_A, authority: str = "wigan"
) -> RefusalInput:
    return RefusalInput(
        escalation_id=escalation_id,
        authority=authority,
        refusal=Refusal(at=at, action=action, actor=OFFICER, reason=f"{action} refused"),
    )


def notification(
    seq: int, escalation_id: str = ESC_A, kind: EventKind = EventKind.SENT_TO_STAGE
) -> NotificationInput:
    return NotificationInput(
        escalation_id=escalation_id,
        authority="wigan",
        child_ref=escalation_id.split("-")[1],
        team=None,
        service_area=None,
        kind=kind,
        entry=entry(seq, kind),
        officer=OFFICER,
        to_roles=["team_manager"],
        cc_roles=["raising_officer"],
        stage="stage-1",
        stage_name="Stage 1",
        status=Status.AWAITING_RESPONSE,
        deadline=T0 + timedelta(days=7),
        deadline_date=date(2025, 3, 10),
        working_days=5,
        concern_summary="The care plan has not been updated.",
        idempotency_key=f"{escalation_id}/{seq}",
    )


# --- FileRecordStore: events ----------------------------------------------------------------------------


def test_append_event_twice_writes_once(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path)
    first = event(1)
    assert store.append_event(first) is True
    # A retry carries the same seq; even a different payload must not be written again.
    assert store.append_event(first) is False
    assert store.append_event(event(1, text="retried with other text")) is False
    path = tmp_path / "events" / f"{ESC_A}.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert RecordEventInput.model_validate_json(lines[0]) == first
    assert store.events(ESC_A) == [first]


def test_events_read_back_in_order_and_per_escalation(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path)
    assert store.events(ESC_A) == []
    written = [event(seq) for seq in (1, 2, 3, 4)]
    for e in written:
        assert store.append_event(e) is True
    # The same seq for another escalation is another record, in its own file.
    other = event(2, escalation_id=ESC_B)
    assert store.append_event(other) is True
    assert store.append_event(event(3)) is False
    assert store.events(ESC_A) == written
    assert [e.entry.seq for e in store.events(ESC_A)] == [1, 2, 3, 4]
    assert store.events(ESC_B) == [other]
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == [f"{ESC_A}.jsonl", f"{ESC_B}.jsonl"]
    # A new store over the same folder (a restarted worker) sees the same records and stays idempotent.
    again = FileRecordStore(tmp_path)
    assert again.events(ESC_A) == written
    assert again.append_event(event(4)) is False
    assert again.append_event(event(5)) is True
    assert [e.entry.seq for e in again.events(ESC_A)] == [1, 2, 3, 4, 5]


# --- FileRecordStore: refusals --------------------------------------------------------------------------


def test_refusals_are_idempotent(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path)
    assert store.refusals("wigan") == []
    first = refusal()
    assert store.append_refusal(first) is True
    assert store.append_refusal(first) is False
    # Keyed on (escalation, when, action): another action, time or escalation is another refusal.
    assert store.append_refusal(refusal(action="respond")) is True
    assert store.append_refusal(refusal(at=T0 + timedelta(seconds=1))) is True
    assert store.append_refusal(refusal(escalation_id=ESC_B)) is True
    assert store.append_refusal(refusal(action="respond")) is False
    got = store.refusals("wigan")
    assert [(r.escalation_id, r.refusal.action, r.refusal.at) for r in got] == [
        (ESC_A, "refer_to_cafcass", T0),
        (ESC_A, "respond", T0),
        (ESC_A, "refer_to_cafcass", T0 + timedelta(seconds=1)),
        (ESC_B, "refer_to_cafcass", T0),
    ]
    assert got[0] == first
    lines = (tmp_path / "refusals" / "wigan.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    # One file per authority.
    assert store.append_refusal(refusal(authority="dudley", escalation_id="dudley-TC0003-0001")) is True
    assert [r.authority for r in store.refusals("dudley")] == ["dudley"]
    assert len(store.refusals("wigan")) == 4


# --- OutboxNotifier -------------------------------------------------------------------------------------


def test_outbox_one_file_per_idempotency_key(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path)
    assert outbox.sent() == []
    first = notification(1)
    assert outbox.send(first) is True
    assert outbox.send(first) is False
    assert outbox.send(notification(1, kind=EventKind.REMINDER)) is False  # same key: not sent again
    assert outbox.send(notification(2)) is True
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == [f"{ESC_A}__1.json", f"{ESC_A}__2.json"]  # no temporary files left behind
    stored = NotificationInput.model_validate_json((tmp_path / "outbox" / files[0]).read_text("utf-8"))
    assert stored == first
    assert stored.kind is EventKind.SENT_TO_STAGE
    assert json.loads((tmp_path / "outbox" / files[1]).read_text("utf-8"))["idempotency_key"] == f"{ESC_A}/2"


def test_sent_filters_by_escalation_and_sorts_by_seq(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path)
    # Written out of order, and with seq 10 to show the sort is numeric, not by file name.
    for esc, seq in [(ESC_B, 2), (ESC_A, 10), (ESC_A, 3), (ESC_B, 1), (ESC_A, 1), (ESC_A, 2)]:
        assert outbox.send(notification(seq, escalation_id=esc)) is True
    a = outbox.sent(ESC_A)
    assert [n.entry.seq for n in a] == [1, 2, 3, 10]
    assert {n.escalation_id for n in a} == {ESC_A}
    assert [n.idempotency_key for n in outbox.sent(ESC_B)] == [f"{ESC_B}/1", f"{ESC_B}/2"]
    assert [(n.escalation_id, n.entry.seq) for n in outbox.sent()] == [
        (ESC_A, 1),
        (ESC_A, 2),
        (ESC_A, 3),
        (ESC_A, 10),
        (ESC_B, 1),
        (ESC_B, 2),
    ]
    assert outbox.sent("wigan-TZ9999-0001") == []


def test_a_line_torn_by_a_crash_is_skipped_and_the_retry_writes_a_whole_line(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path)
    first, second = event(1), event(2)
    assert store.append_event(first)
    path = tmp_path / "events" / f"{first.escalation_id}.jsonl"
    whole = second.model_dump_json()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[: len(whole) // 2])  # the process died mid-write
    assert [e.entry.seq for e in store.events(first.escalation_id)] == [1]
    assert store.append_event(second)  # the retried activity
    assert [e.entry.seq for e in store.events(first.escalation_id)] == [1, 2]


def test_outbox_leaves_no_temporary_files_and_refuses_a_second_delivery(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path)
    assert outbox.send(notification(1))
    assert not outbox.send(notification(1))
    assert sorted(p.suffix for p in (tmp_path / "outbox").iterdir()) == [".json"]
