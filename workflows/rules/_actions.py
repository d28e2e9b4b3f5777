"""The officer's moves and the record: escalate, bypass, CAFCASS, consultations, meetings, closing, notes."""

from __future__ import annotations

from schemas.escalation import (
    Actor,
    AddNote,
    Answer,
    Bypass,
    Close,
    Escalate,
    EscalationState,
    EventKind,
    Flag,
    RecordConsultation,
    RecordMeeting,
    RecordViews,
    ReferToCafcass,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER, Stage
from schemas.wording import with_article
from workflows.rules._core import (
    _OPEN_FOR_ANSWER,
    LONDON,
    Refused,
    _Change,
    _is_officer,
    _names,
    _need_involved,
    _need_judge,
    _need_officer,
    _need_recipient,
    _need_status,
    _plays,
    _refuse_closed,
    _stage_index,
    addressees,
    current_stage,
    london_today,
    track_of,
)
from workflows.rules._ladder import (
    _apply_consultation,
    _check_bypass_rule,
    _escalate,
    _move,
)
from workflows.rules._track_rules import bypass_rule, cafcass_rule, check_cafcass_status


def _guard_escalate(s: EscalationState, actor: Actor) -> None:
    deciding = Flag.EXCEPTIONAL_DECISION_DUE in s.flags  # held for the officer: escalating is the decision
    if s.status is Status.ESCALATION_DUE and not deciding:
        assert s.hold_target is not None
        raise Refused(
            f"escalation to {track_of(s).stages[s.hold_target].name} is already due: record the "
            "consultation it needs"
        )
    if s.status is Status.EXHAUSTED:
        raise Refused("the top of the ladder has been reached: refer to CAFCASS (where allowed) or close")
    allowed = (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION, Status.MONITORING)
    _need_status(s, (*allowed, Status.ESCALATION_DUE) if deciding else allowed, "escalate")
    stages = track_of(s).stages
    nxt = stages[s.stage_index + 1] if s.stage_index + 1 < len(stages) else None
    if nxt and any(_plays(s, actor, r) for r in nxt.escalated_by):
        return
    if nxt and nxt.escalated_by_exclusive:
        raise Refused(f"only {_names(s, nxt.escalated_by)} may escalate to {nxt.name}")
    _need_judge(s, actor, "escalate")


def _apply_escalate(c: _Change, a: Escalate) -> None:
    _escalate(c, a.actor, a.reason, exceptional=a.exceptional)


def _guard_bypass(s: EscalationState, actor: Actor) -> None:
    if not bypass_rule(s).allowed:
        where = f"the {track_of(s).name} track" if track_of(s).bypass else "stages"
        raise Refused(f"the {s.protocol.authority} protocol does not allow {where} to be bypassed")
    _need_status(
        s,
        (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION, Status.MONITORING, Status.ESCALATION_DUE),
        "bypass",
    )
    _need_officer(s, actor, "bypass stages")
    if s.stage_index + 1 >= len(track_of(s).stages):
        raise Refused("there is no later stage to bypass to")


def _apply_bypass(c: _Change, a: Bypass) -> None:
    s = c.s
    track = track_of(s)
    target = _stage_index(track, a.to_stage)
    if target <= s.stage_index:
        raise Refused(f"{track.stages[target].name} is not later than {current_stage(s).name}")
    _check_bypass_rule(s, a)
    if a.emergency:
        c.flag(Flag.EMERGENCY_BYPASS)
    _move(c, target, EventKind.BYPASSED, a.actor, a.reason, emergency=a.emergency)


def _guard_refer_to_cafcass(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_officer(s, actor, "refer to CAFCASS")
    allowed = cafcass_rule(s).officer_roles
    if s.officer.role not in allowed:
        raise Refused(
            f"{with_article(s.protocol.role_name(s.officer.role))} may not refer to CAFCASS; under the "
            f"{s.protocol.authority} protocol only {_names(s, allowed)} may"
        )
    if Flag.CAFCASS_REFERRED in s.flags:
        raise Refused("the concern has already been referred to CAFCASS; the local process runs on beside it")
    if Flag.COLLECTIVE in s.flags:  # about several children: a referral is about one
        raise Refused("a collective alert is about several children: refer a child's own escalation")
    check_cafcass_status(s)


def _apply_refer_to_cafcass(c: _Change, a: ReferToCafcass) -> None:
    s = c.s
    rule = cafcass_rule(s)
    recorded = {x.with_role for x in s.consultations}
    missing = [r for r in rule.consult if r not in a.consulted and r not in recorded]
    if missing:
        raise Refused(f"before referring to CAFCASS, consult {_names(s, missing)} and list them in consulted")
    if rule.alongside:  # v2: the local process runs on beside the referral
        c.flag(Flag.CAFCASS_REFERRED)
        happens = "the local process continues alongside the referral"
    else:
        s.status = Status.REFERRED_TO_CAFCASS
        happens = "the local process is curtailed"
    to, cc = addressees(s)
    c.event(
        EventKind.CAFCASS_REFERRAL,
        f"Referred to CAFCASS; {happens}. Reason: {a.reason}",
        actor=a.actor,
        to=list(rule.inform) or to,
        cc=to + cc if rule.inform else cc,
        data={"consulted": sorted(set(a.consulted) | (recorded & set(rule.consult)))},
    )
    c.outcome = f"referred to CAFCASS; {happens}"


def _later_gated(s: EscalationState) -> list[Stage]:
    stages = track_of(s).stages
    return [st for st in stages[s.stage_index + 1 :] if st.entry_gate]


def _guard_record_consultation(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    gated = _later_gated(s)
    if not gated:
        raise Refused("no later stage needs a consultation")
    if _is_officer(s, actor):
        return
    if not any(actor.role in st.entry_gate.with_roles for st in gated if st.entry_gate):
        raise Refused("only the raising officer, or the person consulted, may record a consultation")


def _apply_record_consultation(c: _Change, a: RecordConsultation) -> None:
    _apply_consultation(c, a, at_start=False)


def _guard_record_meeting(s: EscalationState, actor: Actor) -> None:
    _need_status(s, _OPEN_FOR_ANSWER, "record a meeting")
    if not current_stage(s).meeting:
        raise Refused(f"{current_stage(s).name} is not managed through a meeting")
    if _is_officer(s, actor):
        return
    _need_recipient(s, actor, "record the meeting")


def _apply_record_meeting(c: _Change, a: RecordMeeting) -> None:
    s = c.s
    if a.held_on > london_today(c.now):
        raise Refused(f"the meeting date {a.held_on:%-d %B %Y} is in the future: record it once it is held")
    if a.held_on < s.stage_entered_at.astimezone(LONDON).date():
        raise Refused("the meeting was held before this stage began: give the date of this stage's meeting")
    s.answer = Answer(by=a.actor, at=c.now, text=a.outcome)
    s.status = Status.AWAITING_DECISION
    s.pending_extension = None
    to, cc = addressees(s)
    c.event(
        EventKind.MEETING_RECORDED,
        f"Meeting held on {a.held_on:%-d %B %Y} with {', '.join(a.attendees)}. Outcome: {a.outcome}",
        actor=a.actor,
        to=[RAISING_OFFICER, *to],
        cc=cc,
        data={"held_on": a.held_on.isoformat(), "attendees": a.attendees},
    )
    c.outcome = "meeting recorded; the officer will decide whether it resolves the concern"


def _guard_withdraw(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_officer(s, actor, "withdraw the escalation")


def _apply_withdraw(c: _Change, a: Withdraw) -> None:
    c.s.status = Status.WITHDRAWN
    to, cc = addressees(c.s)
    c.event(EventKind.WITHDRAWN, f"Withdrawn by the officer. Reason: {a.reason}", actor=a.actor, to=to, cc=cc)
    c.outcome = "withdrawn"


def _guard_close(s: EscalationState, actor: Actor) -> None:
    _need_officer(s, actor, "close the escalation")
    _refuse_closed(s)
    if s.status is not Status.EXHAUSTED and Flag.EXCEPTIONAL_DECISION_DUE not in s.flags:
        raise Refused("only an exhausted escalation can be closed; use accept or withdraw")


def _apply_close(c: _Change, a: Close) -> None:
    c.s.status = Status.CLOSED
    to, cc = addressees(c.s)
    c.event(EventKind.CLOSED, f"Closed without resolution. Reason: {a.reason}", actor=a.actor, to=to, cc=cc)
    c.outcome = "closed"


def _guard_note(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_involved(s, actor, "add to the record")


def _apply_note(c: _Change, a: AddNote) -> None:
    c.event(EventKind.NOTE, a.text, actor=a.actor)
    c.outcome = "note added"


def _apply_views(c: _Change, a: RecordViews) -> None:
    c.event(EventKind.VIEWS, f"The {a.whose}'s views: {a.views}", actor=a.actor, data={"whose": a.whose})
    c.outcome = f"the {a.whose}'s views recorded"
