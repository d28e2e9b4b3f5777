"""Shaping the application layer's answers for people: status tags, deadlines as dates and working days,
the summary list, the concern and the timeline of an escalation."""

from __future__ import annotations

from datetime import date
from typing import Any

from activities.working_days import LONDON
from app.service import Item, Reading
from protocols import ProtocolError, load_protocol
from schemas.escalation import EscalationView, EventKind, Status

STATUS_WORDS = {
    Status.AWAITING_RESPONSE: ("Awaiting response", "govuk-tag--blue"),
    Status.AWAITING_DECISION: ("Awaiting decision", "govuk-tag--yellow"),
    Status.ESCALATION_DUE: ("Escalation due", "govuk-tag--orange"),
    Status.MONITORING: ("Monitoring action plan", "govuk-tag--turquoise"),
    Status.EXHAUSTED: ("Top of the ladder reached", "govuk-tag--red"),
    Status.RESOLVED: ("Resolved", "govuk-tag--green"),
    Status.WITHDRAWN: ("Withdrawn", "govuk-tag--grey"),
    Status.REFERRED_TO_CAFCASS: ("Referred to CAFCASS", "govuk-tag--purple"),
    Status.CLOSED: ("Closed", "govuk-tag--grey"),
}

RELATION_WORDS = {
    "raised": "Raised it",
    "holds": "Asked to respond",
    "copied": "Copied in",
    "held": "Held it earlier",
    "acted": "Took part",
    "supervises": "Supervising",
}


def long_day(day: date) -> str:
    return f"{day:%A %-d %B %Y}"


def deadline_words(day: date | None, working_days_left: int | None) -> str:
    if day is None:
        return "No deadline running"
    left = (
        ""
        if working_days_left is None
        else f" ({working_days_left} working day{'s' if working_days_left != 1 else ''} left)"
    )
    return f"{long_day(day)}{left}"


def authority_name(authority: str) -> str:
    try:
        return load_protocol(authority).authority
    except ProtocolError:
        return authority


def list_rows(items: list[Item]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        row = item.row
        words, css = STATUS_WORDS[row.status]
        name = _stage_name(row.authority, row.track, row.stage)
        place = f"{row.stage_number} of {row.stage_count}: " if row.stage_number else ""
        rows.append(
            {
                "id": row.escalation_id,
                "status": words,
                "status_class": css,
                "stage": f"{place}{name}",
                "deadline": deadline_words(row.deadline_date, row.working_days_left),
                "relation": RELATION_WORDS.get(item.relation, item.relation),
            }
        )
    return rows


def _stage_name(authority: str, track: str, stage: str) -> str:
    try:
        return next(s.name for s in load_protocol(authority).track(track).stages if s.key == stage)
    except (ProtocolError, KeyError, StopIteration):
        return stage


def _row(key: str, value: str) -> dict[str, Any]:
    return {"key": {"text": key}, "value": {"text": value}}


row = _row
"""One summary list row (text, escaped by the template)."""


def summary(reading: Reading) -> list[dict[str, Any]]:
    view, facts = reading.view, reading.facts
    role = facts.protocol.role_name
    rows = [
        _row("Child's case number", view.child_ref),
        _row("Kind of concern", facts.protocol.track(facts.track).name),
        _row("Category", view.category),
        _row("Team", facts.team or "Whole authority"),
        _row("Raised by", f"{facts.officer.id} ({role(facts.officer.role)})"),
        _row(
            "Stage",
            f"{view.stage_number} of {view.stage_count}: {view.stage_name}"
            + (" (formal)" if view.formal else " (informal)"),
        ),
        _row("Waiting for", ", ".join(role(r) for r in view.held_by)),
    ]
    if view.copied:
        rows.append(_row("Copied to", ", ".join(role(r) for r in view.copied)))
    if view.child_status:
        rows.append(
            _row(
                "The child's status", facts.protocol.child_statuses.get(view.child_status, view.child_status)
            )
        )
    if view.severity:
        rows.append(_row("Severity", facts.protocol.severities.get(view.severity, view.severity)))
    rows.append(_row("Deadline", deadline_words(view.deadline_date, view.working_days_left)))
    total = (
        deadline_words(view.total_deadline_date, view.total_working_days_left)
        if view.total_deadline_date
        else "Not started: the formal process has not begun"
    )
    rows.append(_row("Total time limit", total))
    if view.pending_extension:
        p = view.pending_extension
        rows.append(_row("Request for more time", f"Until {long_day(p.until)}: {p.reason}"))
    if view.flags:
        rows.append(_row("Flags", ", ".join(f.value.replace("_", " ") for f in view.flags)))
    if view.collective:  # a collective alert (seed 001 section 4)
        c = view.collective
        rows += [
            _row("Collective alert", c.theme),
            _row("Children or carers", ", ".join(c.subjects)),
            _row(
                "Level agreed with",
                f"{role(c.consulted_with)} on {long_day(c.consulted_on)}: {c.consultation}",
            ),
        ]
    if view.part_of:
        rows.append(_row("Part of the collective alert", view.part_of))
    return rows


def concern(view: EscalationView) -> list[tuple[str, str]]:
    c = view.concern
    if c is None:
        first = view.timeline[0].text if view.timeline else ""
        return [("Summary", first)]
    parts = [
        ("Summary", c.summary),
        ("Impact on the child", c.impact_on_child),
        ("What is asked", c.requested_action),
    ]
    if c.child_views:
        parts.append(("The child's views", c.child_views))
    if c.parents_views:
        parts.append(("The parents' or carers' views", c.parents_views))
    return parts


def timeline(reading: Reading) -> list[dict[str, Any]]:
    role = reading.facts.protocol.role_name
    stages = {s.key: s.name for s in reading.facts.stages()}
    entries = []
    for e in reversed(reading.view.timeline):
        entries.append(
            {
                "title": e.kind.value.replace("_", " ").capitalize(),
                "when": f"{e.at.astimezone(LONDON):%-d %B %Y, %H:%M}",
                "who": f"{e.actor.id} ({role(e.actor.role)})" if e.actor else "",
                "stage": stages.get(e.stage or "", e.stage or ""),
                "text": e.text,
                "details": _details(e.data),
            }
        )
    return entries


def _details(data: dict[str, Any]) -> list[tuple[str, str]]:
    """What an event carries beyond its sentence and people need to see: an answer's action plan."""
    details = []
    if isinstance(data.get("action_plan"), str) and data["action_plan"]:
        details.append(("Action plan", data["action_plan"]))
    due = data.get("action_plan_due")
    if isinstance(due, str) and due:
        try:
            details.append(("Action plan due", long_day(date.fromisoformat(due))))
        except ValueError:
            details.append(("Action plan due", due))
    return details


def duties(reading: Reading) -> list[dict[str, Any]]:
    """The officer's deadlines and required steps: what, at which stage, due when, done or not."""
    stages = {s.key: s.name for s in reading.facts.stages()}
    rows = []
    for d in reading.view.duties:
        if d.done is not None:
            state, css = f"Done {d.done.done_at.astimezone(LONDON):%-d %B %Y}", "govuk-tag--green"
        elif d.overdue:
            state, css = "Overdue", "govuk-tag--red"
        else:
            state, css = "To do", "govuk-tag--blue"
        due = long_day(d.schedule.due_date) if d.schedule else "No date yet"
        told = ""
        if d.done is not None and d.done.told:
            told = f"; told: {', '.join(d.done.told)}" + (
                f" ({d.done.how.replace('_', ' ')})" if d.done.how else ""
            )
        rows.append(
            {
                "what": d.what,
                "stage": stages.get(d.stage, d.stage),
                "kind": "The officer's own deadline" if d.kind == "officer_deadline" else "Required step",
                "due": due,
                "state": state,
                "state_class": css,
                "detail": told,
            }
        )
    return rows


def covers(reading: Reading) -> list[str]:
    """Absent recipients covered at the current stage, from the timeline's ``covered`` events."""
    role = reading.facts.protocol.role_name
    found = []
    for e in reading.view.timeline:
        if e.kind is EventKind.COVERED and e.stage == reading.view.stage:
            until = e.data.get("until")
            when = f" until {long_day(date.fromisoformat(until))}" if isinstance(until, str) else ""
            found.append(
                f"The {role(str(e.data.get('role', '')))} is absent{when}: the "
                f"{role(str(e.data.get('cover_role', '')))} covers and may act for them at this stage."
            )
    return found


def verdicts(reading: Reading) -> list[str]:
    """Joint judges who have accepted at the current stage, and who is still to decide."""
    role = reading.facts.protocol.role_name
    found = []
    for e in reading.view.timeline:
        if e.kind is EventKind.JUDGE_SATISFIED and e.stage == reading.view.stage:
            who = f"{e.actor.id} ({role(e.actor.role)})" if e.actor else role(str(e.data.get("role", "")))
            waiting = e.data.get("waiting")
            still = ", ".join(role(str(r)) for r in waiting) if isinstance(waiting, list) else ""
            found.append(f"{who} accepts" + (f"; still to decide: {still}" if still else "") + ".")
    return found
