"""Answers and time: respond, ask for and decide on more time, set the timescale, accept."""

from __future__ import annotations

from datetime import date, datetime

from schemas.effects import Announcement
from schemas.escalation import (
    Accept,
    Actor,
    Answer,
    DecideExtension,
    EscalationState,
    EventKind,
    Flag,
    PendingExtension,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
)
from workflows.rules._core import (
    _OPEN_FOR_ANSWER,
    Refused,
    _Change,
    _is_officer,
    _iso,
    _need_judge,
    _need_officer,
    _need_recipient,
    _need_status,
    _not_past,
    _plays,
    _refuse_closed,
    _suffix,
    _told_officer,
    addressees,
    began_at_a_deadline,
    current_stage,
    london_today,
)
from workflows.rules._cover import answer_on_behalf, external_recipients
from workflows.rules._duties import need_steps_done
from workflows.rules._joint import accept_waits, ask_again, guard_joint_accept
from workflows.rules._track_rules import extension_rule, total_days


def _guard_respond(s: EscalationState, actor: Actor) -> None:
    _need_status(s, _OPEN_FOR_ANSWER, "respond")
    if not (external_recipients(s) and _is_officer(s, actor)):  # the officer records an external answer
        _need_recipient(s, actor, "respond")
    if current_stage(s).meeting:
        raise Refused(f"{current_stage(s).name} is managed through a meeting: record the meeting instead")


def _apply_respond(c: _Change, a: Respond) -> None:
    s = c.s
    if a.action_plan_due and not a.action_plan:
        raise Refused("an action plan's due date was given without the action plan: add the plan")
    _not_past(a.action_plan_due, c.now, "the action plan's due date")
    on_behalf = answer_on_behalf(s, a)
    ask_again(c)
    s.answer = Answer(
        by=a.actor, at=c.now, text=a.answer, action_plan=a.action_plan, action_plan_due=a.action_plan_due
    )
    s.pending_extension = None
    s.status = Status.AWAITING_DECISION
    _, cc = addressees(s)
    judges = current_stage(s).judges()
    data: dict[str, object] = {"action_plan": a.action_plan, "action_plan_due": _iso(a.action_plan_due)}
    if on_behalf is not None:
        data["on_behalf_of"] = a.on_behalf_of
    c.event(
        EventKind.RESPONSE,
        (on_behalf or "") + a.answer,
        actor=a.actor,
        to=judges,
        cc=_told_officer(s, a.actor, cc) if c.honour else cc,
        data=data,
    )
    c.outcome = (
        f"answer recorded; {s.protocol.role_names(judges)} will decide whether it resolves the concern"
    )


def _guard_request_extension(s: EscalationState, actor: Actor) -> None:
    _need_status(s, (Status.AWAITING_RESPONSE,), "ask for more time")
    _need_recipient(s, actor, "ask for more time")
    if s.stage_schedule is None:
        raise Refused("this stage has no deadline to extend")
    if s.pending_extension:
        raise Refused(
            f"a request for more time (until {s.pending_extension.until:%-d %B %Y}) is already waiting "
            "for the officer's decision"
        )


def _apply_request_extension(c: _Change, a: RequestExtension) -> None:
    s = c.s
    assert s.stage_schedule is not None
    _not_past(a.until, c.now, "the requested date")
    if a.until <= s.stage_schedule.due_date:
        raise Refused(
            f"the requested date must be after the current deadline ({s.stage_schedule.due_date:%-d %B %Y})"
        )
    s.pending_extension = PendingExtension(
        requested_by=a.actor, until=a.until, reason=a.reason, requested_at=c.now
    )
    c.event(
        EventKind.EXTENSION_REQUESTED,
        f"More time asked for, until {a.until:%A %-d %B %Y}. Reason: {a.reason}",
        actor=a.actor,
        to=[extension_rule(s).approved_by],
        data={"until": a.until.isoformat()},
    )
    c.outcome = f"request sent to {s.protocol.role_name(extension_rule(s).approved_by)} for a decision"


def _guard_decide_extension(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    approver = extension_rule(s).approved_by
    if not _plays(s, actor, approver):
        raise Refused(f"only {s.protocol.role_name(approver)} may decide a request for more time")
    if s.pending_extension is None:
        raise Refused("there is no request for more time waiting for a decision")


def _apply_decide_extension(c: _Change, a: DecideExtension) -> None:
    s = c.s
    pending = s.pending_extension
    assert pending is not None and s.stage_schedule is not None
    to, cc = addressees(s)
    if not a.approve:
        if not a.reason.strip():
            raise Refused("say why the request for more time is declined (reason)")
        s.pending_extension = None
        c.event(
            EventKind.EXTENSION_DECIDED,
            f"More time until {pending.until:%-d %B %Y} declined. Reason: {a.reason}",
            actor=a.actor,
            to=to,
            cc=cc,
            data={"approved": False, "until": pending.until.isoformat()},
        )
        c.outcome = "extension declined; the deadline stands"
        return
    if pending.until <= s.stage_schedule.due_date:
        raise Refused(
            f"the stage's deadline is already {s.stage_schedule.due_date:%-d %B %Y}, on or after the date "
            f"asked for ({pending.until:%-d %B %Y}): decline the request, as no more time is needed"
        )
    total = s.total_schedule
    beyond = total is not None and pending.until > total.due_date
    if beyond and not a.exceed_total_limit:
        assert total is not None
        raise Refused(
            f"{pending.until:%-d %B %Y} is past the {total_days(s)}-working-day limit "
            f"of the formal process ({total.due_date:%-d %B %Y}); to allow it anyway, approve again with "
            "exceed_total_limit and a reason"
        )
    if beyond and not a.reason.strip():
        raise Refused("going past the total limit needs a reason: say why it is in the child's interests")
    s.pending_extension = None
    text = f"More time approved, until {pending.until:%A %-d %B %Y}."
    if beyond:
        c.flag(Flag.BEYOND_TOTAL_LIMIT)
        text += " The officer has explicitly allowed this to pass the total limit."
    if a.reason.strip():
        text += f" Reason: {a.reason}"
    c.event(
        EventKind.EXTENSION_DECIDED,
        text,
        actor=a.actor,
        to=to,
        cc=cc,
        data={"approved": True, "until": pending.until.isoformat(), "beyond_total_limit": beyond},
    )
    c.schedule(
        "reschedule",
        c.request(
            received_at=s.stage_schedule.received_at,
            until=pending.until,
            receipt_day_counts=began_at_a_deadline(s),
        ),
    )
    c.outcome = f"extension approved until {pending.until:%-d %B %Y}"


def _guard_set_timescale(s: EscalationState, actor: Actor) -> None:
    _need_status(s, (Status.AWAITING_RESPONSE,), "set the timescale")
    _need_officer(s, actor, "set the stage's timescale")
    if current_stage(s).formal and Flag.BREACHED in s.flags:
        raise Refused(
            "the formal process's total limit has passed, so no timescale can keep within it: more time "
            "comes only through a request for more time approved with exceed_total_limit"
        )


def _apply_set_timescale(c: _Change, a: SetTimescale) -> None:
    s = c.s
    stage = current_stage(s)
    rules = s.protocol.timescales
    if (a.working_days is None) == (a.until is None):
        raise Refused("give either working_days or until, not both and not neither")
    _not_past(a.until, c.now, "the date")
    limit_days = stage.response_working_days
    if a.working_days is not None:
        longer = limit_days is not None and a.working_days > limit_days
        shorter = limit_days is None or a.working_days < limit_days
        asked = f"{a.working_days} working days"
    else:
        assert a.until is not None
        longer = s.stage_protocol_due is not None and a.until > s.stage_protocol_due
        shorter = s.stage_protocol_due is None or a.until < s.stage_protocol_due
        asked = f"until {a.until:%-d %B %Y}"
    if longer and not (not stage.formal and rules.informal_may_agree_longer):
        raise Refused(
            f"{asked} is longer than the protocol's {limit_days} working days for {stage.name}; "
            "more time at this stage comes through a request for more time that the officer approves"
        )
    if shorter and not longer and not rules.officer_may_shorten:
        raise Refused(f"the {s.protocol.authority} protocol does not let the officer shorten a stage's time")
    _timescale_within_limits(s, a, asked, c.now)
    to, cc = addressees(s)
    announce = Announcement(
        kind=EventKind.TIMESCALE_SET,
        text=f"The officer set this stage's time to {asked}. Reason: {a.reason}",
        actor=a.actor,
        to=to,
        cc=cc,
    )
    request = c.request(
        received_at=s.stage_entered_at,
        working_days=a.working_days,
        until=a.until,
        receipt_day_counts=began_at_a_deadline(s),
    )
    c.schedule("reschedule", request, announce=announce)
    c.outcome = f"timescale set to {asked}"


def _timescale_within_limits(s: EscalationState, a: SetTimescale, asked: str, now: datetime) -> None:
    """A new timescale must not have run out already, nor pass the formal process's total limit.

    Counted on the working days the stage's (or the total's) schedule already lists, so the rules need no
    calendar; a count beyond what they list is later than any deadline now running.
    """
    counts_from, ends = _stage_working_days(s)
    if a.working_days is not None and counts_from is None:
        raise Refused(
            f"{current_stage(s).name} has no deadline running to count working days on: give the date "
            "(until) instead"
        )
    if a.working_days is not None and counts_from is not None:
        if a.working_days == 0:
            past = london_today(now) > counts_from
        else:
            past = a.working_days <= len(ends) and ends[a.working_days - 1] <= now
        if past:
            raise Refused(
                f"{asked} from when this stage began ({counts_from:%-d %B %Y}) have already run out: "
                "give more working days, or a date from today"
            )
    total = s.total_schedule
    if total is None or not current_stage(s).formal:
        return
    if a.until is not None:
        beyond = a.until > total.due_date
    elif counts_from is not None:
        assert a.working_days is not None
        beyond = a.working_days > sum(1 for end in total.working_day_ends if london_today(end) > counts_from)
    else:
        beyond = False
    if beyond:
        raise Refused(
            f"{asked} runs past the {total_days(s)}-working-day limit of the formal "
            f"process ({total.due_date:%-d %B %Y}); time past it comes only through a request for more time "
            "that the officer approves with exceed_total_limit and a reason"
        )


def _stage_working_days(s: EscalationState) -> tuple[date | None, list[datetime]]:
    """The day this stage's time counts from, and the end of each working day after it that is known."""
    if s.stage_schedule is not None:
        return s.stage_schedule.counts_from, list(s.stage_schedule.working_day_ends)
    total = s.total_schedule
    if total is None:
        return None, []
    entered = london_today(s.stage_entered_at)
    days = [total.counts_from, *(london_today(end) for end in total.working_day_ends)]
    counts_from = next((day for day in days if day >= entered), None)
    if counts_from is None:
        return None, []
    return counts_from, [end for end in total.working_day_ends if london_today(end) > counts_from]


def _guard_accept(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    _need_judge(s, actor, "accept the answer")
    need_steps_done(s)
    guard_joint_accept(s, actor)


def _apply_accept(c: _Change, a: Accept) -> None:
    s = c.s
    if accept_waits(c, a):
        return
    to, cc = addressees(s)
    if c.honour:
        cc = _told_officer(s, a.actor, cc)
    if s.status is Status.MONITORING:
        s.status = Status.RESOLVED
        c.event(
            EventKind.RESOLVED,
            "The action plan was carried out; the concern is resolved." + _suffix(a.note),
            actor=a.actor,
            to=to,
            cc=cc,
        )
        c.outcome = "resolved: action plan confirmed done"
        return
    answer = s.answer if s.status is Status.AWAITING_DECISION else None
    plan = a.action_plan or (answer.action_plan if answer else None)
    due = a.action_plan_due or (answer.action_plan_due if answer else None)
    if plan and due is None:
        raise Refused("an agreed action plan needs its due date (action_plan_due) to be monitored")
    if due and not plan:
        raise Refused("an action plan's due date was given without the action plan: add the plan")
    if plan and due:
        _not_past(due, c.now, "the action plan's due date")
        s.status = Status.MONITORING
        s.action_plan, s.action_plan_due = plan, due
        s.pending_extension = None
        c.event(
            EventKind.MONITORING_STARTED,
            f"Action plan agreed, to be done by {due:%A %-d %B %Y}: {plan}" + _suffix(a.note),
            actor=a.actor,
            to=to,
            cc=cc,
            data={"action_plan_due": due.isoformat()},
        )
        c.schedule("hold", c.request(until=due))
        c.outcome = f"monitoring the action plan until {due:%-d %B %Y}"
        return
    s.status = Status.RESOLVED
    c.event(EventKind.RESOLVED, "The concern is resolved." + _suffix(a.note), actor=a.actor, to=to, cc=cc)
    c.outcome = "resolved"
