"""Notices that cannot go out: the escalation stalls visibly, and a stage's clock waits for its notice.

The protocols count a stage's working days from receipt. When the notice sending a concern to a stage's
recipients cannot go out (nobody holds the role, the mail server is down), the stage's deadline (and the
total limit, if this stage began the formal process) is withdrawn, the escalation is ``stalled`` with the
reason, and the raising officer and the protocol's ``breach_notify`` roles (its QA managers) are told.
When the notice can go out again (``redeliver``) the stage is sent afresh with its time counted from
then, and the other held notices are sent as they were (same entry, same idempotency key).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.effects import Announcement, Covered, Notify, Undelivered
from schemas.escalation import EscalationState, EventKind, Flag, PendingNotice, Stall, Status
from schemas.protocol import RAISING_OFFICER
from workflows.rules._core import LONDON, Decision, _Change, current_stage
from workflows.rules._cover import note_covers
from workflows.rules._duties import is_timed, stage_request
from workflows.rules._track_rules import total_days

RETRY_FIRST = timedelta(minutes=1)
RETRY_LONGEST = timedelta(hours=1)
"""Held notices are tried again after 1 minute, doubling to at most every hour (and on demand)."""


def retry_after(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones."""
    factor: int = 2 ** min(max(attempts - 1, 0), 12)
    return min(RETRY_FIRST * factor, RETRY_LONGEST)


def _key(notice: PendingNotice | Notify) -> tuple[int, tuple[str, ...]]:
    if isinstance(notice, Notify):
        return notice.entry_seq, tuple(notice.to)
    return notice.seq, tuple(notice.to)


def _stage_notice_seq(s: EscalationState) -> int | None:
    """The entry of the notice that sent the concern to the current stage, while its answer is awaited."""
    if s.status is not Status.AWAITING_RESPONSE:
        return None
    stage = current_stage(s).key
    for entry in reversed(s.timeline):
        if entry.kind is EventKind.SENT_TO_STAGE and entry.stage == stage:
            return entry.seq
        if entry.kind in (EventKind.ESCALATED, EventKind.BYPASSED) and entry.stage != stage:
            return None  # the stage was entered after its last notice: its notice is still to come
    return None


def _hold_clock(c: _Change) -> bool:
    """Withdraw the stage's deadline (and the total limit it began): its time has not begun."""
    s = c.s
    sched = s.stage_schedule
    if sched is None:
        return False
    total = s.total_schedule
    if total is not None and total.received_at == sched.received_at and current_stage(s).formal:
        s.total_schedule = None
    s.stage_schedule = None
    s.stage_reminded = False
    return True


def on_delivery(
    state: EscalationState,
    attempted: list[Notify],
    undelivered: list[Undelivered],
    now: datetime,
    covered: list[Covered] | None = None,
) -> Decision:
    """Take in which of the ``attempted`` notices could not go out (the batch's result, in history), and
    which went to a cover role's holder for an absent recipient (``covered``)."""
    c = _Change(state, now)
    s = c.s
    if covered:
        note_covers(c, covered)
    failed = {(u.seq, tuple(u.to)): u for u in undelivered}
    tried = {_key(n) for n in attempted}
    before = s.stall.notices if s.stall else []
    pending = [p for p in before if _key(p) not in tried]
    pending += [
        PendingNotice(seq=n.entry_seq, kind=n.kind, to=list(n.to), cc=list(n.cc))
        for n in attempted
        if _key(n) in failed
    ]
    stall = s.stall
    if not pending:
        if stall is not None:
            s.stall = None
            c.unflag(Flag.STALLED)
            c.event(
                EventKind.NOTICES_DELIVERED,
                f"The notices held back since {_when(stall.since)} have gone out.",
                to=[RAISING_OFFICER],
            )
            c.outcome = "notices delivered"
        return c.decision()
    why = next(iter(failed.values()), None)
    stage_seq = _stage_notice_seq(s)
    holds = stage_seq is not None and any(p.seq == stage_seq for p in pending) and _hold_clock(c)
    if stall is None:
        s.stall = Stall(
            reason=why.reason if why else "a notice could not go out",
            since=now,
            notices=pending,
            clock_held=holds,
            retry_at=now + retry_after(1),
        )
        c.flag(Flag.STALLED)
    else:
        attempts = stall.attempts + 1
        s.stall = stall.model_copy(
            update={
                "reason": why.reason if why else stall.reason,
                "notices": pending,
                "clock_held": stall.clock_held or holds,
                "attempts": attempts,
                "retry_at": now + retry_after(attempts),
            }
        )
    held = {_key(p) for p in before}
    fresh = [
        n for n in attempted if _key(n) in failed and _key(n) not in held and n.kind not in _ABOUT_STALLS
    ]
    if fresh and why is not None:
        _tell(c, why, fresh, holds)
    return c.decision()


_ABOUT_STALLS = (EventKind.STALLED, EventKind.NOTICES_DELIVERED)
"""Notices about the stall itself: when they cannot go out either, they wait without a new event."""


def _tell(c: _Change, why: Undelivered, fresh: list[Notify], holds: bool) -> None:
    """Record (and tell the officer and the QA roles) that notices could not go out."""
    s = c.s
    roles = s.protocol.role_names(sorted({r for n in fresh for r in n.to if r != RAISING_OFFICER}))
    clock = (
        f" The time of {current_stage(s).name} has not begun: it runs from when its notice goes out."
        if holds
        else ""
    )
    detail = f" ({why.detail})" if why.detail else ""
    entry = c.event(
        EventKind.STALLED,
        f"Stalled: {why.reason}. The notice to {roles or 'the officer'} could not go out{detail}.{clock} "
        "It is tried again, and at once when the directory is synced.",
        data={"reason": why.reason, "notices": [n.entry_seq for n in fresh]},
    )
    # Told separately, so that one who cannot be reached does not keep the other from being told.
    c.effects.append(Notify(entry_seq=entry.seq, kind=entry.kind, to=[RAISING_OFFICER]))
    qa = [r for r in s.protocol.breach_notify if r != RAISING_OFFICER]
    if qa:
        c.effects.append(Notify(entry_seq=entry.seq, kind=entry.kind, to=qa))
    c.outcome = f"stalled: {why.reason}"


def still_stalled(state: EscalationState, why: Undelivered, now: datetime) -> Decision:
    """A check before trying again found the notices still cannot go out: try later."""
    c = _Change(state, now)
    stall = c.s.stall
    if stall is not None:
        attempts = stall.attempts + 1
        c.s.stall = stall.model_copy(
            update={"reason": why.reason, "attempts": attempts, "retry_at": now + retry_after(attempts)}
        )
    return c.decision()


def redeliver(state: EscalationState, now: datetime) -> Decision:
    """Send the held notices again: the stage's own notice afresh, its time counted from now."""
    c = _Change(state, now)
    s = c.s
    stall = s.stall
    if stall is None:
        return c.decision()
    stage_seq = _stage_notice_seq(s) if stall.clock_held and s.stage_schedule is None else None
    kept: list[PendingNotice] = []
    for notice in stall.notices:
        if notice.seq == stage_seq and notice.kind is EventKind.SENT_TO_STAGE:
            _send_stage_again(c, notice, stall)
            continue
        kept.append(notice)
        c.effects.append(Notify(entry_seq=notice.seq, kind=notice.kind, to=notice.to, cc=notice.cc))
    s.stall = stall.model_copy(update={"notices": kept, "clock_held": False})
    return c.decision()


def _send_stage_again(c: _Change, notice: PendingNotice, stall: Stall) -> None:
    s = c.s
    stage = current_stage(s)
    assert is_timed(stage)  # a stage without a time has no clock to hold
    if s.total_schedule is None and stage.formal and s.formal_started_at is not None:
        s.formal_started_at = c.now
        c.schedule(
            "total",
            c.request(working_days=total_days(s), reminder_lead_working_days=0),
        )
    text = (
        f"Sent to {s.protocol.role_names(notice.to)} at {stage.name}: the notice of {_when(stall.since)} "
        f"could not go out ({stall.reason}), so the stage's time runs from now."
    )
    sent = Announcement(kind=EventKind.SENT_TO_STAGE, text=text, actor=s.officer, to=notice.to, cc=notice.cc)
    c.schedule("stage", stage_request(c, stage), announce=sent)


def _when(at: datetime) -> str:
    return f"{at.astimezone(LONDON):%A %-d %B %Y at %H:%M}"
