"""What the Temporal UI shows of an escalation: its summary, current details, and each activity's and timer's
summary.

Pure functions of the escalation's state (or its start input) and the protocol inside it, so the workflow may
call them (deterministic: no clock but the one passed in, no I/O). They name roles, stages, dates and event
kinds, never the child, the officer or the concern: engineers read them, and Temporal stores them beside the
encrypted payloads (the worker's codec encrypts them too, like every payload).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from schemas.effects import EffectItem, Record
from schemas.escalation import EscalationState, Flag, RaiseConcern, Status
from schemas.protocol import Protocol, Track
from workflows import rules
from workflows.rules._duties import due_words

LIMIT = 400
"""Longest summary kept (the UI shows one line; the rest is cut with an ellipsis)."""

_STATUS_WORDS = {
    Status.AWAITING_DECISION: "answer received: the officer decides whether it resolves the concern",
    Status.ESCALATION_DUE: "not resolved: escalation due",
    Status.MONITORING: "action plan agreed: monitoring",
    Status.EXHAUSTED: "no stage left to escalate to",
    Status.RESOLVED: "resolved",
    Status.WITHDRAWN: "withdrawn",
    Status.REFERRED_TO_CAFCASS: "referred to CAFCASS",
    Status.CLOSED: "closed",
}


def _cut(text: str) -> str:
    return text if len(text) <= LIMIT else text[: LIMIT - 1] + "…"


def _day(d: date) -> str:
    return f"{d:%a %-d %b %Y}"


def _words(kind: str) -> str:
    return kind.replace("_", " ")


def static_summary(raise_: RaiseConcern) -> str:
    """One line fixed at start: authority, track, category and the stage it starts at."""
    protocol = raise_.protocol
    track = protocol.track(raise_.track)
    return _cut(
        f"{protocol.authority} · {track.name} · {_category(track, raise_.category)} · "
        f"starts at {_start_stage(track, raise_)}"
    )


def static_details(raise_: RaiseConcern) -> str:
    """The start's facts as a short Markdown list (the UI renders it under the summary)."""
    protocol = raise_.protocol
    track = protocol.track(raise_.track)
    lines = [
        f"- **Authority:** {protocol.authority} ({protocol.key})",
        f"- **Track:** {track.name} ({track.key})",
        f"- **Category:** {_category(track, raise_.category)}",
        f"- **Starts at:** {_start_stage(track, raise_)}",
        f"- **Ladder:** {' → '.join(s.name for s in track.stages)}",
    ]
    if raise_.child_status and raise_.child_status in protocol.child_statuses:
        lines.append(f"- **Child's status:** {protocol.child_statuses[raise_.child_status]}")
    if raise_.severity and raise_.severity in protocol.severities:
        lines.append(f"- **Severity:** {protocol.severities[raise_.severity]}")
    return "\n".join(lines)


def _category(track: Track, category: str) -> str:
    """The protocol's own wording; anything else (the start will be refused) is not repeated."""
    return category if category in track.categories else "an unknown category"


def _start_stage(track: Track, raise_: RaiseConcern) -> str:
    key = raise_.start_at_stage or track.stages[0].key
    for number, stage in enumerate(track.stages, start=1):
        if stage.key == key:
            return f"stage {number} of {len(track.stages)}, {stage.name}"
    return "an unknown stage"


def current_details(state: EscalationState, now: datetime) -> str:
    """Where the escalation stands, as of ``now`` (the last change), in Markdown."""
    stage = rules.current_stage(state)
    count = len(rules.track_of(state).stages)
    where = f"stage {state.stage_index + 1} of {count}, {stage.name}"
    sched = rules.running_schedule(state)
    if sched is not None:
        holders = state.protocol.role_names(rules.addressees(state)[0])
        left = sched.working_days_left(now)
        plural = "" if left == 1 else "s"
        head = (
            f"Awaiting {holders} ({where}) until {due_words(sched)}; "
            f"{left} working day{plural} left on {_day(now.date())}"
        )
    elif state.status is Status.AWAITING_RESPONSE:
        head = (
            f"Awaiting {state.protocol.role_names(rules.addressees(state)[0])} ({where}); deadline being set"
        )
    else:
        head = f"{_STATUS_WORDS[state.status].capitalize()} ({where})"
    lines = [head]
    if state.total_schedule is not None and not state.status.is_closed:
        lines.append(f"- Total limit: {due_words(state.total_schedule)}")
    if state.flags:
        lines.append(f"- Flags: {', '.join(_words(f) for f in state.flags)}")
    if Flag.STALLED in state.flags and state.stall is not None:
        lines.append(
            f"- Held notices: {len(state.stall.notices)}, tried again after {state.stall.retry_at:%H:%M}"
        )
    if state.problems:
        lines.append(f"- Problems: {len(state.problems)} (see the state query)")
    return "\n\n".join([lines[0], "\n".join(lines[1:])]) if len(lines) > 1 else lines[0]  # Markdown list


def timer_summary(state: EscalationState, wake: datetime) -> str:
    """What the timer firing at ``wake`` is for: the first of the state's wakeups due then."""
    for at, what in rules.wakeups(state):
        if at == wake:
            return _cut(what())
    return "next deadline"


_PURPOSE_WORDS = {
    "stage": "stage deadline",
    "reschedule": "new stage deadline",
    "total": "total limit",
    "hold": "officer's decision due",
    "duty": "step due",
}


def schedules_summary(purposes: Sequence[str]) -> str:
    """``plan_schedules``: which deadlines are being placed."""
    return _cut("place deadlines: " + ", ".join(_PURPOSE_WORDS.get(p, _words(p)) for p in purposes))


def batch_summary(protocol: Protocol, items: Sequence[EffectItem | Record]) -> str:
    """``carry_out_effects``: what is recorded and who is told of what, in order."""
    recorded: list[str] = []
    told: list[str] = []
    for item in items:
        if isinstance(item, Record):
            recorded.append(_words(item.entry.kind))
        elif item.record is not None:
            recorded.append(_words(item.record.entry.kind))
        elif item.notify is not None:
            n = item.notify
            line = f"notify {protocol.role_names(list(n.to_roles))}: {_words(n.kind)}"
            if n.cc_roles:
                line += f" (cc {protocol.role_names(list(n.cc_roles))})"
            told.append(line)
        elif item.refusal is not None:
            recorded.append(f"refused {item.refusal.refusal.action}")
    parts = ([f"record {', '.join(dict.fromkeys(recorded))}"] if recorded else []) + told
    return _cut("; ".join(parts) or "records and notices")
