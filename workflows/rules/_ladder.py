"""Opening an escalation and moving it up the ladder: stages, gates, bypass rules and consultations."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from schemas.effects import Announcement
from schemas.escalation import (
    Actor,
    Bypass,
    Consultation,
    EscalationState,
    EventKind,
    Flag,
    RaiseConcern,
    RecordConsultation,
    Status,
)
from schemas.protocol import RAISING_OFFICER, GateKind
from schemas.wording import with_article
from workflows.rules._collective import check_collective, collective_data
from workflows.rules._core import (
    Decision,
    Refused,
    _Change,
    _is_officer,
    _names,
    _plays,
    _stage_index,
    addressees,
    current_stage,
    london_today,
    track_of,
)
from workflows.rules._cover import check_external_contacts
from workflows.rules._duties import at_midnight, is_timed, open_duties, stage_request
from workflows.rules._track_rules import bypass_rule, check_child, start_of, total_days

CONSULTED_WITHIN = timedelta(days=366)
"""How long before it is recorded a consultation may have been held: a year."""

# --- starting -------------------------------------------------------------------------------------------


def start(raise_: RaiseConcern, now: datetime, *, honour: bool = True) -> Decision:
    """Open an escalation at the first stage, or at the stage the officer bypasses to.

    The stage it starts at must have its gate open: the consultation (or agreement) it needs is given in
    ``consultations``. ``honour`` False (escalations started before the ``HONOURED`` patch): a gate on the
    first stage was not looked at."""
    p = raise_.protocol
    try:
        track = p.track(raise_.track)
    except KeyError as exc:
        raise Refused(str(exc.args[0])) from None
    if raise_.officer.role not in track.officer_roles:
        raise Refused(
            f"{with_article(p.role_name(raise_.officer.role))} cannot raise on the {track.name} track; "
            f"its officers are: {p.role_names(track.officer_roles)}"
        )
    if raise_.category not in track.categories:
        raise Refused(f"unknown category {raise_.category!r}; choose one of: {'; '.join(track.categories)}")
    if raise_.service_area is not None and raise_.service_area not in p.service_areas:
        known = ", ".join(p.service_areas) or "none (leave it empty)"
        raise Refused(f"unknown service area {raise_.service_area!r}; {p.authority} has: {known}")
    check_child(raise_, track)
    target, entry = start_of(raise_, track)
    chosen = check_collective(raise_, track, target, now)
    entry = chosen or entry  # a collective alert starts at the level chosen with QA: not a bypass
    if entry is None and raise_.start_bypass is None:
        raise Refused("starting past the first stage is a bypass: give its reason (start_bypass)")
    check_external_contacts(p, track, raise_, target)

    state = EscalationState(
        escalation_id=raise_.escalation_id,
        protocol=p,
        track=track.key,
        category=raise_.category,
        service_area=raise_.service_area,
        child_ref=raise_.child_ref,
        team=raise_.team,
        officer=raise_.officer,
        concern=raise_.concern,
        raised_at=now,
        status=Status.AWAITING_RESPONSE,
        stage_index=0,
        stage_entered_at=now,
        child_status=raise_.child_status,
        severity=raise_.severity,
        external_contacts=list(raise_.external_contacts),
        collective=raise_.collective,
        part_of=raise_.part_of,
        flags=[Flag.COLLECTIVE] if raise_.collective is not None else [],
    )
    c = _Change(state, now, honour=honour)
    data: dict[str, object] = {"category": raise_.category, "service_area": raise_.service_area}
    data.update(
        {k: v for k, v in (("child_status", raise_.child_status), ("severity", raise_.severity)) if v}
    )
    if entry is not None and target > 0:
        data["entry_point"] = track.stages[target].key
    data.update(collective_data(raise_))
    c.event(EventKind.RAISED, raise_.concern.summary, actor=raise_.officer, data=data)
    for consultation in raise_.consultations:
        _apply_consultation(c, consultation, at_start=True)
    if entry is not None:
        if honour or target > 0:
            _need_gate_open_at_start(c, target)
        _enter_stage(c, target)
    else:
        assert raise_.start_bypass is not None
        bypass = raise_.start_bypass.model_copy(update={"to_stage": track.stages[target].key})
        _check_bypass_rule(c.s, bypass)
        _need_gate_open_at_start(c, target)
        c.event(
            EventKind.BYPASSED,
            f"Raised directly at {track.stages[target].name}. Reason: {bypass.reason}",
            actor=raise_.officer,
            data={"from": None, "to": track.stages[target].key, "emergency": bypass.emergency},
        )
        if bypass.emergency:
            c.flag(Flag.EMERGENCY_BYPASS)
        _enter_stage(c, target)
    c.outcome = f"raised at {current_stage(c.s).name}"
    return c.decision()


def _need_gate_open_at_start(c: _Change, index: int) -> None:
    if _gate_open(c.s, index):
        return
    stage = track_of(c.s).stages[index]
    gate = stage.entry_gate
    assert gate is not None
    agreed = " that agreed (agreed: true)" if gate.kind is GateKind.AGREEMENT else ""
    raise Refused(
        f"{stage.name} needs a recorded {gate.kind.value} with {_names(c.s, gate.with_roles)} first: "
        f"include it in the consultations{agreed}, with who was consulted (with_role), when (held_on) and "
        "what was said (summary)"
    )


# --- moving between stages -------------------------------------------------------------------------------


def _enter_stage(c: _Change, index: int, begins_at: datetime | None = None) -> None:
    """Send the concern to stage ``index``; its time (and the total limit's, if it is the first formal
    stage) counts from now, or from ``begins_at``, the deadline whose passing moved it here: that
    instant's working day is then the stage's first working day (``receipt_day_counts``)."""
    s = c.s
    at = begins_at or c.now
    on_time = {"received_at": at, "receipt_day_counts": begins_at is not None and at_midnight(at)}
    s.stage_index = index
    s.stage_entered_at = at
    s.status = Status.AWAITING_RESPONSE
    s.stage_schedule = None
    s.stage_protocol_due = None
    s.stage_reminded = False
    s.pending_extension = None
    s.answer = None
    s.action_plan = None
    s.action_plan_due = None
    s.hold_target = None
    s.hold_via = None
    s.hold_schedule = None
    c.unflag(Flag.OVERDUE)
    c.unflag(Flag.ACTION_PLAN_DUE)
    stage = current_stage(s)
    to, cc = addressees(s, stage)
    if stage.told_in_advance:
        c.event(
            EventKind.TOLD_IN_ADVANCE,
            f"The concern is about to go to {_names(s, to)} at {stage.name}.",
            to=list(stage.told_in_advance),
        )
    if stage.formal and s.formal_started_at is None:
        s.formal_started_at = at
        c.schedule(
            "total",
            c.request(working_days=total_days(s), reminder_lead_working_days=0, **on_time),
        )
    text = f"Sent to {_names(s, to)} at {stage.name}."
    if stage.meeting:
        text += " This stage is managed through a meeting: invite all key people and record it."
    sent = Announcement(kind=EventKind.SENT_TO_STAGE, text=text, actor=s.officer, to=to, cc=cc)
    if not is_timed(stage):
        c.event(sent.kind, sent.text + " The protocol sets no response time.", actor=s.officer, to=to, cc=cc)
    else:
        c.schedule("stage", stage_request(c, stage, **on_time), announce=sent)
    open_duties(c, stage)


def _gate_open(s: EscalationState, index: int) -> bool:
    stage = track_of(s).stages[index]
    gate = stage.entry_gate
    if gate is None:
        return True
    relevant = [x for x in s.consultations if x.stage == stage.key and x.with_role in gate.with_roles]
    if not relevant:
        return False
    return gate.kind is GateKind.CONSULTATION or relevant[-1].agreed is True


def _move(
    c: _Change,
    target: int,
    via: EventKind,
    actor: Actor | None,
    reason: str,
    *,
    emergency: bool = False,
    begins_at: datetime | None = None,
    exceptional: bool = False,
) -> None:
    """Escalate or bypass to ``target``, or hold as escalation due while its gate is closed.

    ``begins_at``: the deadline whose passing escalates (see ``_enter_stage``); a hold ignores it, as the
    stage then begins only when its gate opens."""
    s = c.s
    track = track_of(s)
    dest = track.stages[target]
    if not _gate_open(s, target):
        gate = dest.entry_gate
        assert gate is not None
        s.status = Status.ESCALATION_DUE
        s.hold_target = target
        s.hold_via = via
        s.pending_extension = None
        c.unflag(Flag.EXCEPTIONAL_DECISION_DUE)  # decided: now only the gate holds it
        c.event(
            EventKind.ESCALATION_DUE,
            f"{'Bypass' if via is EventKind.BYPASSED else 'Escalation'} to {dest.name} is due: "
            f"record {with_article(gate.kind.value)} with {_names(s, gate.with_roles)} first. "
            f"Reason: {reason}",
            actor=actor,
            to=[RAISING_OFFICER],
            cc=list(gate.with_roles),
            data={"target": dest.key, "gate": gate.kind.value},
        )
        c.schedule("hold", c.request(working_days=1))
        c.outcome = (
            f"held: {dest.name} needs {with_article(gate.kind.value)} with {_names(s, gate.with_roles)}"
        )
        return
    before = current_stage(s)
    to, cc = addressees(s, before)
    word = "Bypassed" if via is EventKind.BYPASSED else "Escalated"
    data: dict[str, object] = {"from": before.key, "to": dest.key, "emergency": emergency}
    circumstances = ""
    if exceptional:
        data["exceptional"] = True
        circumstances = ", the officer judging the circumstances exceptional"
    c.event(
        via,
        f"{word} from {before.name} to {dest.name}{circumstances}. Reason: {reason}",
        actor=actor,
        to=to,
        cc=cc,
        data=data,
    )
    _enter_stage(c, target, begins_at)
    c.outcome = f"{word.lower()} to {dest.name}"


def _escalate(
    c: _Change,
    actor: Actor | None,
    reason: str,
    *,
    begins_at: datetime | None = None,
    exceptional: bool = False,
) -> None:
    """Move to the next stage (``actor`` None: its deadline passed), or end the ladder.

    A stage kept for exceptional circumstances is entered only on the officer's decision that they are
    (``exceptional``): a timer holds for it instead, and an escalation that does not say so is refused."""
    s = c.s
    nxt = s.stage_index + 1
    if nxt >= len(track_of(s).stages):
        s.status = Status.EXHAUSTED
        s.pending_extension = None  # no stage runs to give more time to
        to, cc = addressees(s)
        c.event(
            EventKind.EXHAUSTED,
            "The top of the ladder has been reached without resolution. The officer may refer to "
            f"CAFCASS (where allowed) or close the escalation. Reason: {reason}",
            actor=actor,
            to=[RAISING_OFFICER],
            cc=to + cc,
        )
        c.outcome = "exhausted: the top of the ladder has been reached"
        return
    dest = track_of(s).stages[nxt]
    if c.honour and exceptional and not dest.exceptional:
        raise Refused(
            f"{dest.name} is not one kept for exceptional circumstances: escalate without exceptional"
        )
    deciders = [RAISING_OFFICER, *dest.escalated_by]
    if c.honour and exceptional and (actor is None or not any(_plays(s, actor, r) for r in deciders)):
        raise Refused(
            f"only {_names(s, list(dict.fromkeys(deciders)))} may decide that the circumstances are "
            f"exceptional enough for {dest.name}"
        )
    if c.honour and dest.exceptional and not exceptional:
        if actor is not None:
            raise Refused(
                f"{dest.name} is used only in exceptional circumstances: if they are, escalate with "
                "exceptional (escalate --exceptional) and say why in the reason"
            )
        _hold_for_exceptional(c, nxt, reason)
        return
    _move(c, nxt, EventKind.ESCALATED, actor, reason, begins_at=begins_at, exceptional=exceptional)


def _hold_for_exceptional(c: _Change, target: int, reason: str) -> None:
    """Wait for the officer to decide whether the circumstances are exceptional enough for ``target``."""
    s = c.s
    dest = track_of(s).stages[target]
    s.status = Status.ESCALATION_DUE
    s.hold_target = target
    s.hold_via = EventKind.ESCALATED
    s.hold_schedule = None
    s.pending_extension = None
    c.flag(Flag.EXCEPTIONAL_DECISION_DUE)
    c.event(
        EventKind.EXCEPTIONAL_DUE,
        f"{current_stage(s).name} has not resolved the concern ({reason}). {dest.name} is used only in "
        "exceptional circumstances, so the escalation waits for the officer's decision: if the "
        "circumstances are exceptional, escalate with exceptional and say why; otherwise accept, withdraw "
        "or close it (or refer to CAFCASS where allowed).",
        to=[RAISING_OFFICER],
        data={"target": dest.key},
    )
    c.outcome = f"held: {dest.name} is used only in exceptional circumstances; the officer decides"


def _check_bypass_rule(s: EscalationState, a: Bypass) -> None:
    rule = bypass_rule(s)
    if not rule.prior_discussion_with:
        return
    if a.emergency and rule.emergency_exempt:
        return
    if a.discussed_with in rule.prior_discussion_with:
        return
    needed = _names(s, rule.prior_discussion_with)
    exempt = " (or say it is an emergency)" if rule.emergency_exempt else ""
    raise Refused(f"a bypass needs a prior discussion with {needed}{exempt}: give discussed_with")


def _held_recently(day: date | None, now: datetime) -> None:
    """A consultation is recorded once held: today or earlier, and within the last year."""
    if day is None:
        return
    today = london_today(now)
    if day > today:
        raise Refused(f"held_on: {day:%-d %B %Y} is in the future: give the day the consultation was held")
    if day < today - CONSULTED_WITHIN:
        raise Refused(
            f"held_on: {day:%-d %B %Y} is more than a year ago: a consultation that old does not open a "
            "stage now; hold it again"
        )


def _apply_consultation(c: _Change, a: RecordConsultation, *, at_start: bool) -> None:
    s = c.s
    track = track_of(s)
    index = _stage_index(track, a.stage)
    stage = track.stages[index]
    gate = stage.entry_gate
    if gate is None:
        raise Refused(f"{stage.name} needs no consultation before it")
    if not at_start and index <= s.stage_index:
        raise Refused(f"{stage.name} has already been reached")
    if a.with_role not in gate.with_roles:
        raise Refused(f"{stage.name} needs {with_article(gate.kind.value)} with {_names(s, gate.with_roles)}")
    if not at_start and not _is_officer(s, a.actor) and a.actor.role != a.with_role:
        raise Refused(
            f"you may record only your own {gate.kind.value} (as {s.protocol.role_name(a.actor.role)}); "
            f"the raising officer records one with {s.protocol.role_name(a.with_role)}"
        )
    if gate.kind is GateKind.AGREEMENT and a.agreed is None:
        raise Refused(f"say whether {s.protocol.role_name(a.with_role)} agreed (agreed: true or false)")
    _held_recently(a.held_on, c.now)
    s.consultations.append(
        Consultation(
            stage=stage.key,
            with_role=a.with_role,
            agreed=a.agreed,
            summary=a.summary,
            by=a.actor,
            at=c.now,
            held_on=a.held_on,
        )
    )
    outcome = "" if a.agreed is None else (" They agreed." if a.agreed else " They did not agree.")
    data: dict[str, object] = {"for_stage": stage.key, "with_role": a.with_role, "agreed": a.agreed}
    held = ""
    if a.held_on is not None:
        data["held_on"] = a.held_on.isoformat()
        held = f", held on {a.held_on:%A %-d %B %Y},"
    c.event(
        EventKind.CONSULTATION_RECORDED,
        f"{gate.kind.value.capitalize()} with {s.protocol.role_name(a.with_role)}{held} "
        f"before {stage.name}.{outcome} {a.summary}",
        actor=a.actor,
        data=data,
    )
    c.outcome = "consultation recorded"
    if at_start or s.status is not Status.ESCALATION_DUE or s.hold_target != index:
        return
    if Flag.EXCEPTIONAL_DECISION_DUE in s.flags:  # the officer's decision still holds it, not the gate
        return
    if _gate_open(s, index):
        via = s.hold_via or EventKind.ESCALATED
        s.status = Status.AWAITING_RESPONSE
        _move(c, index, via, a.actor, f"after the {gate.kind.value} with {s.protocol.role_name(a.with_role)}")
    elif a.agreed is False:
        s.status = Status.AWAITING_DECISION
        s.hold_target = s.hold_via = s.hold_schedule = None
        c.event(
            EventKind.NOTE,
            f"{s.protocol.role_name(a.with_role)} did not agree to escalate to {stage.name}; "
            f"the concern stays at {current_stage(s).name}. "
            "The officer may accept, withdraw, bypass or ask again.",
            to=[RAISING_OFFICER],
        )
        c.outcome = f"not agreed: the concern stays at {current_stage(s).name}"
