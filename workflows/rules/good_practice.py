"""Good practice notes, pure: which notes the protocol allows, to whom they go, and what is recorded.

Seed 000 section 3: an officer's good practice note about a practitioner goes to them, copying their team
manager; seed 001 section 2: compliments go to the practitioner and their line managers up to the most
senior level and are recorded on the child's file as "CPC/IRO good practice highlight"; seed 000 section 6:
staff note an officer's good practice to the officer and their manager. All of it is the protocol's
``good_practice`` section; nothing here is particular to an authority.
"""

from __future__ import annotations

from datetime import datetime

from schemas.effects import EffectBatch, EffectItem, NotificationInput, RecordEventInput
from schemas.escalation import EventKind, Status, TimelineEntry
from schemas.good_practice import GOOD_PRACTICE, GoodPracticeNote, GoodPracticeRequest
from schemas.process_models import NO_CHILD
from schemas.protocol import RAISING_OFFICER, Protocol
from workflows.rules import Refused


def note_for(protocol: Protocol, request: GoodPracticeRequest, note_id: str) -> GoodPracticeNote:
    """The note as the protocol has it recorded and sent; ``Refused`` naming what the protocol does not
    allow (no such section, a role that may not write one, a practitioner it may not be about)."""
    section = protocol.good_practice
    if section is None:
        raise Refused(
            f"the {protocol.authority} protocol has no good practice notes (its 'good_practice' section)"
        )
    by, about = request.by, request.about
    officers = section.about_officers
    if about.role in section.about:
        if by.role not in section.noted_by:
            raise Refused(
                f"good practice notes about {protocol.role_names([about.role])} are written by "
                f"{protocol.role_names(section.noted_by)}, not {protocol.role_names([by.role])}"
            )
        if section.on_file and request.child_ref is None:
            raise Refused("a good practice note goes on the child's file: give the child's case number")
        on_file = section.on_file and request.child_ref is not None
        cc = list(section.cc)
        about_officer = False
    elif officers is not None and about.role in officers.officer_roles:
        if officers.noted_by and by.role not in officers.noted_by:
            raise Refused(
                f"notes of an officer's good practice are written by {protocol.role_names(officers.noted_by)}"
            )
        on_file, cc, about_officer = False, list(officers.cc), True
    else:
        allowed = [*section.about, *(officers.officer_roles if officers else [])]
        raise Refused(
            f"a good practice note is about one of: {protocol.role_names(allowed)}; not "
            f"{protocol.role_names([about.role])}"
        )
    if by.id == about.id:
        raise Refused("a good practice note is about someone else's practice, not your own")
    if request.child_ref is not None:
        try:
            protocol.child_ref.check(request.child_ref)
        except ValueError as exc:
            raise Refused(str(exc)) from None
    if request.category is not None:
        categories = {c for t in protocol.tracks for c in t.categories}
        if request.category not in categories:
            raise Refused(f"the category {request.category!r} is not one of the protocol's categories")
    return GoodPracticeNote(
        note_id=note_id,
        request=request,
        about_officer=about_officer,
        label=section.label,
        cc=[r for r in cc if r != about.role],
        case_note_type=protocol.case_notes.good_practice if on_file else None,
    )


def entry(note: GoodPracticeNote, at: datetime) -> TimelineEntry:
    """The note's one event: who noted whose good practice (``about_role``), and what."""
    r = note.request
    data: dict[str, object] = {"about_role": r.about.role, "about_id": r.about.id, "good_practice": True}
    if r.impact:
        data["impact"] = r.impact
    if r.category:
        data["category"] = r.category
    if note.about_officer:
        data["about_officer"] = True
    if note.case_note_type is None:
        data["case_note"] = False
    else:
        data["case_note_type"] = note.case_note_type
    return TimelineEntry(
        seq=1,
        at=at,
        kind=EventKind.GOOD_PRACTICE_NOTED,
        actor=r.by,
        stage=GOOD_PRACTICE,
        text=r.what,
        data=data,
    )


def batch(note: GoodPracticeNote, at: datetime, run_id: str) -> EffectBatch:
    """The note's record and its mail: to the person noted (as ``raising_officer``), copying ``cc``."""
    r = note.request
    child_ref = r.child_ref or NO_CHILD
    e = entry(note, at)
    record = RecordEventInput(
        escalation_id=note.note_id,
        run_id=run_id,
        authority=r.authority,
        child_ref=child_ref,
        track=GOOD_PRACTICE,
        status=Status.CLOSED,
        stage=GOOD_PRACTICE,
        entry=e,
    )
    notice = NotificationInput(
        escalation_id=note.note_id,
        authority=r.authority,
        child_ref=child_ref,
        team=r.team,
        service_area=None,
        kind=EventKind.GOOD_PRACTICE_NOTED,
        entry=e,
        officer=r.about,  # the person noted: ``raising_officer`` addresses them by their staff reference
        to_roles=[RAISING_OFFICER],
        cc_roles=list(note.cc),
        stage=GOOD_PRACTICE,
        stage_name=note.label,
        status=Status.CLOSED,
        deadline=None,
        deadline_date=None,
        working_days=None,
        concern_summary=r.what,
        idempotency_key=f"{note.note_id}/1",
        run_id=run_id,
        stage_label=note.label,
    )
    return EffectBatch(items=[EffectItem(record=record), EffectItem(notify=notice)])
