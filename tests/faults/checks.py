"""What must hold once every fault is cleared and everything has settled.

* **Events**: each escalation's ``state`` timeline and its ``escalation_events`` rows hold the same seqs,
  each once (none lost, none twice, none extra).
* **Actions**: every action the drive saw accepted is in the timeline once (per kind of entry it makes),
  every refused one nowhere.
* **Mail**: every Message-ID in ``sent_mail`` reached the catcher, every delivered one is logged, and each
  is delivered once, except in the crash window ``activities/mail.py`` documents (a message accepted by the
  SMTP server whose log row was never committed is sent again, with the same Message-ID). A copy is allowed
  only when both hold: the Message-ID's one log row is dated after its last delivery (no earlier delivery
  was ever logged), and each delivery but the last was accepted before a fault that cuts that window was
  cleared, and the next one after it began: the worker killed (cleared when its replacement is ready: a
  message the dead worker sent whole may reach the catcher a moment after the kill), PostgreSQL stopped, or
  the SMTP server stopped (its reply to the message may be lost). A Temporal server restart explains
  nothing: it cannot come between a send and its log row.
* **Stuck**: each escalation answers ``state``, is not busy, has no activity or workflow task pending and no
  problem recorded, and its history has no failed workflow task.
* **Replay**: each escalation's history replays on the current code.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from schemas.escalation import EscalationView
from tests.faults.components import TimedDelivery
from tests.faults.driver import Driven, tags_in
from tests.workflow_harness import replay
from workflows.escalation import EscalationWorkflow

__all__ = ["WINDOW_FAULTS", "Fault", "Findings", "check_all", "settle"]

WINDOW_FAULTS = frozenset({"worker_kill", "postgres_stop", "smtp_stop"})
"""Faults that can fall between an SMTP server accepting a message and its ``sent_mail`` row committing."""
UNLOGGED_SLACK_S = 5.0
"""How long before a window fault began a message it cut off from its log row may have been accepted (the
worker's last steps between the SMTP server's answer and the commit, on a busy machine)."""


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind and when (``time.time()``) it began and was cleared."""

    kind: str
    start: float
    end: float


@dataclass
class Findings:
    """Counts and violations of one run; ``violations()`` is empty when everything held."""

    escalations: int = 0
    events: int = 0
    mails_delivered: int = 0
    message_ids: int = 0
    duplicates_explained: list[str] = field(default_factory=list)
    duplicates_unexplained: list[str] = field(default_factory=list)
    lost_events: list[str] = field(default_factory=list)
    duplicate_events: list[str] = field(default_factory=list)
    extra_events: list[str] = field(default_factory=list)
    action_errors: list[str] = field(default_factory=list)
    lost_mails: list[str] = field(default_factory=list)
    unlogged_mails: list[str] = field(default_factory=list)
    unlogged_explained: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    replay_failures: list[str] = field(default_factory=list)
    task_timeouts: int = 0

    def violations(self) -> list[str]:
        named = {
            "lost event": self.lost_events,
            "duplicate event": self.duplicate_events,
            "event not in the timeline": self.extra_events,
            "action": self.action_errors,
            "duplicate mail not explained by the crash window": self.duplicates_unexplained,
            "logged mail never delivered": self.lost_mails,
            "delivered mail never logged": self.unlogged_mails,
            "stuck": self.stuck,
            "replay failure": self.replay_failures,
        }
        return [f"{what}: {item}" for what, items in named.items() for item in items]


async def _settled(handle: WorkflowHandle[Any, Any], engine: Engine) -> tuple[EscalationView | None, str]:
    """The view if the escalation has settled, else ``None`` and why not."""
    try:
        view: EscalationView = await handle.query(EscalationWorkflow.state)
    except Exception as exc:
        return None, f"state query fails: {exc!r}"
    if view.busy:
        return None, "busy"
    described = (await handle.describe()).raw_description
    for pending in described.pending_activities:
        failure = pending.last_failure.message if pending.HasField("last_failure") else ""
        return None, f"activity {pending.activity_type.name} pending, attempt {pending.attempt}: {failure}"
    if described.HasField("pending_workflow_task"):
        return None, "a workflow task is pending"
    recorded = await asyncio.to_thread(_event_count, engine, view.escalation_id)
    if recorded < len(view.timeline):
        return None, f"{recorded} of {len(view.timeline)} events recorded"
    return view, ""


def _event_count(engine: Engine, escalation_id: str) -> int:
    with engine.connect() as connection:
        query = text("SELECT count(*) FROM escalation_events WHERE escalation_id = :id")
        return int(connection.execute(query, {"id": escalation_id}).scalar_one())


async def settle(
    client: Client, ids: list[str], engine: Engine, deadline: float
) -> tuple[dict[str, EscalationView], dict[str, str]]:
    """Wait until every escalation has settled, or the deadline: (views, why each unsettled one is not)."""
    views: dict[str, EscalationView] = {}
    waiting: dict[str, str] = dict.fromkeys(ids, "not looked at")
    while waiting:
        for escalation_id in list(waiting):
            try:
                view, why = await _settled(client.get_workflow_handle(escalation_id), engine)
            except Exception as exc:  # the server or database answering slowly after a fault
                view, why = None, repr(exc)
            if view is None:
                waiting[escalation_id] = why
            else:
                views[escalation_id] = view
                del waiting[escalation_id]
        if not waiting or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    return views, waiting


async def check_all(
    client: Client,
    engine: Engine,
    driven: list[Driven],
    deliveries: list[TimedDelivery],
    faults: list[Fault],
    *,
    deadline: float,
) -> Findings:
    """Every check of the module docstring, after waiting (until ``deadline``) for everything to settle."""
    ids = [d.escalation_id for d in driven]
    found = Findings(escalations=len(ids))
    views, unsettled = await settle(client, ids, engine, deadline)
    found.stuck += [f"{escalation_id}: {why}" for escalation_id, why in unsettled.items()]
    rows = await asyncio.to_thread(_event_rows, engine, ids)
    for d in driven:
        view = views.get(d.escalation_id)
        if view is None:
            continue
        found.events += len(view.timeline)
        _check_events(found, view, rows.get(d.escalation_id, []))
        _check_actions(found, view, d)
        if view.problems:
            found.stuck.append(f"{d.escalation_id}: problems recorded: {view.problems}")
        handle = client.get_workflow_handle(d.escalation_id)
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = event.workflow_task_failed_event_attributes
                found.stuck.append(
                    f"{d.escalation_id}: workflow task failed at event {event.event_id}: "
                    f"{attrs.cause} {attrs.failure.message[:300]}"
                )
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                found.task_timeouts += 1
        try:
            await replay(history)
        except Exception as exc:
            found.replay_failures.append(f"{d.escalation_id}: {exc!r}"[:1000])
    logged = await asyncio.to_thread(_sent_mail, engine)
    _check_mail(found, deliveries, logged, faults)
    return found


def _event_rows(engine: Engine, ids: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    query = text("SELECT escalation_id, seq FROM escalation_events WHERE escalation_id = ANY(:ids)")
    with engine.connect() as connection:
        for escalation_id, seq in connection.execute(query, {"ids": ids}):
            out[escalation_id].append(int(seq))
    return out


def _check_events(found: Findings, view: EscalationView, seqs: list[int]) -> None:
    timeline = Counter(e.seq for e in view.timeline)
    recorded = Counter(seqs)
    eid = view.escalation_id
    found.lost_events += [f"{eid} seq {s}" for s in sorted(timeline.keys() - recorded.keys())]
    found.extra_events += [f"{eid} seq {s}" for s in sorted(recorded.keys() - timeline.keys())]
    found.duplicate_events += [f"{eid} seq {s} x{n}" for s, n in sorted(recorded.items()) if n > 1]
    found.duplicate_events += [f"{eid} timeline seq {s} x{n}" for s, n in sorted(timeline.items()) if n > 1]


def _check_actions(found: Findings, view: EscalationView, driven: Driven) -> None:
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in view.timeline:
        for tag in tags_in(entry.text):
            seen[tag][entry.kind.value] += 1
    eid = view.escalation_id
    for tag, name in driven.applied.items():
        if not seen.get(tag):
            found.action_errors.append(f"{eid}: accepted {name} [{tag}] is not in the timeline")
        twice = {kind: n for kind, n in seen.get(tag, Counter()).items() if n > 1}
        if twice:
            found.action_errors.append(f"{eid}: {name} [{tag}] applied more than once: {twice}")
    for tag in driven.refused:
        if seen.get(tag):
            found.action_errors.append(f"{eid}: refused [{tag}] is in the timeline: {dict(seen[tag])}")


def _sent_mail(engine: Engine) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    with engine.connect() as connection:
        for message_id, sent_at in connection.execute(text("SELECT message_id, sent_at FROM sent_mail")):
            out[message_id].append(sent_at.timestamp())
    return out


def _check_mail(
    found: Findings, deliveries: list[TimedDelivery], logged: dict[str, list[float]], faults: list[Fault]
) -> None:
    by_id: dict[str, list[float]] = defaultdict(list)
    for d in deliveries:
        by_id[d.message_id].append(d.at)
    found.mails_delivered = len(deliveries)
    found.message_ids = len(by_id)
    found.lost_mails += sorted(logged.keys() - by_id.keys())
    window = [f for f in faults if f.kind in WINDOW_FAULTS]
    for message_id in sorted(by_id.keys() - logged.keys()):
        # The SMTP server took it, then the worker died, PostgreSQL stopped or the SMTP connection broke
        # before its row committed: the notice is tried again (a copy the check below explains) unless
        # the escalation ended first, as then held notices are not sent. Anywhere else it is a bug.
        at = min(by_id[message_id])
        cut = [f.kind for f in window if f.start - UNLOGGED_SLACK_S <= at <= f.end]
        if cut:
            found.unlogged_explained.append(f"{message_id} delivered, never logged, at {', '.join(cut)}")
        else:
            found.unlogged_mails.append(message_id)
    for message_id, times in sorted(by_id.items()):
        if len(times) == 1:
            continue
        times.sort()
        rows = logged.get(message_id, [])
        why: list[str] = []
        if len(rows) != 1:
            why.append(f"{len(rows)} log rows")
        elif rows[0] < times[-1]:
            why.append("logged before its last delivery (the log was not consulted)")
        cuts: list[str] = []
        for first, then in itertools.pairwise(times):
            cut = [f.kind for f in window if first <= f.end and f.start <= then]
            cuts += cut
            if not cut:
                why.append(
                    f"no worker kill, PostgreSQL or SMTP stop between copies at {first:.3f} and {then:.3f}"
                )
        line = f"{message_id} delivered {len(times)} times"
        if why:
            found.duplicates_unexplained.append(f"{line}: {'; '.join(why)}")
        else:
            found.duplicates_explained.append(f"{line}, after {', '.join(sorted(set(cuts)))}")
