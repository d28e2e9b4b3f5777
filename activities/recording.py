"""Recording and notifying: the interfaces the workflow's activities call, and simple working versions.

The simple versions keep one JSON Lines file per escalation (events), one per authority (refusals) and one
JSON file per notification in an outbox folder. Each write is keyed on the escalation and the event's
sequence number, so an activity retried after a crash writes nothing twice. The database and mail
versions replace these behind the same interfaces.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.effects import Covered, NotificationInput, RecordEventInput, RefusalInput

_M = TypeVar("_M", bound=BaseModel)


class RecordStore(Protocol):
    def append_event(self, event: RecordEventInput) -> bool:
        """Append the event unless already recorded; True when it was written now."""

    def append_refusal(self, refusal: RefusalInput) -> bool:
        """Keep a refused signal's reason so the sender can be told; True when written now."""


@dataclass(frozen=True)
class Delivery:
    """What ``send_reporting`` did: whether anything was sent now, and the notices that went to a cover."""

    sent: bool
    covered: list[Covered] = field(default_factory=list)


class Notifier(Protocol):
    def send(self, notification: NotificationInput) -> bool:
        """Deliver unless already delivered (by idempotency key); True when delivered now."""

    def send_reporting(self, notification: NotificationInput) -> Delivery:
        """``send``, also saying which roles' notices went to a cover (their holder marked absent)."""


class FileRecordStore:
    """Events as JSON Lines under ``root/events/<escalation id>.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _events_file(self, escalation_id: str) -> Path:
        return self.root / "events" / f"{escalation_id}.jsonl"

    def events(self, escalation_id: str) -> list[RecordEventInput]:
        return _read_lines(self._events_file(escalation_id), RecordEventInput)

    def append_event(self, event: RecordEventInput) -> bool:
        with self._lock:
            if any(e.entry.seq == event.entry.seq for e in self.events(event.escalation_id)):
                return False
            return _append_line(self._events_file(event.escalation_id), event.model_dump_json())

    def _refusals_file(self, authority: str) -> Path:
        return self.root / "refusals" / f"{authority}.jsonl"

    def refusals(self, authority: str) -> list[RefusalInput]:
        return _read_lines(self._refusals_file(authority), RefusalInput)

    def append_refusal(self, refusal: RefusalInput) -> bool:
        with self._lock:
            key = (refusal.escalation_id, refusal.refusal.at, refusal.refusal.action)
            for r in self.refusals(refusal.authority):
                if (r.escalation_id, r.refusal.at, r.refusal.action) == key:
                    return False
            return _append_line(self._refusals_file(refusal.authority), refusal.model_dump_json())


class OutboxNotifier:
    """Notifications as JSON files under ``root/outbox/``, one per idempotency key."""

    def __init__(self, root: Path) -> None:
        self.outbox = root / "outbox"

    def _path(self, key: str) -> Path:
        return self.outbox / (key.replace("/", "__") + ".json")

    def send_reporting(self, notification: NotificationInput) -> Delivery:
        return Delivery(sent=self.send(notification))  # no directory here: nobody is covered

    def send(self, notification: NotificationInput) -> bool:
        path = self._path(notification.idempotency_key)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(notification.model_dump_json(indent=2), encoding="utf-8")
        try:
            os.link(tmp, path)  # atomic, and refuses if a concurrent attempt delivered it first
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def sent(self, escalation_id: str | None = None) -> list[NotificationInput]:
        if not self.outbox.exists():
            return []
        found = [
            NotificationInput.model_validate_json(p.read_text("utf-8")) for p in self.outbox.glob("*.json")
        ]
        found = [n for n in found if escalation_id is None or n.escalation_id == escalation_id]
        return sorted(found, key=lambda n: (n.escalation_id, n.entry.seq))


def _append_line(path: Path, line: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        handle.seek(0, os.SEEK_END)
        torn = False
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"  # a crash mid-write left half a line: start afresh
        handle.write((("\n" if torn else "") + line + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _read_lines(path: Path, model: type[_M]) -> list[_M]:
    """Every whole, valid line; a line torn by a crash mid-write is skipped (it is rewritten on retry)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            found.append(model.model_validate_json(line))
        except ValidationError:
            continue
    return found
