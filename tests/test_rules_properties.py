"""Property-based tests of the escalation rules: random people doing random things while the clock runs.

For every protocol and track, hypothesis draws a start (officer role, service area, at the first stage or
bypassing to a later one) and then up to ``STEPS_MAX`` steps. A step is either an action of any kind, from
the raising officer, someone playing one of the protocol's roles or a stranger, with plausible and
implausible fields, which crosses ``boundary.check_action`` and then ``rules.handle`` (either may refuse);
or the clock moving forward, which fires the timers through the driver. After every step the invariants
below must hold; each is its own assertion helper, so a failure names the property it broke.

At each action step, every kind is also tried for the sender and the officer with payloads that pass
every payload check (``witnesses``), to hold ``available_actions`` to what the rules really accept; the
decisions those get are checked too, which looks one action ahead.

The runs are derandomized and use no example database: every run, here and in CI, tries the same cases.
``RULES_PROPERTY_EXAMPLES=1500`` searches deeper; ``--hypothesis-show-statistics`` shows how runs end.
The strict xfail tests at the end are bugs in the rules that the search found, each a minimal example.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protocols import load_protocol
from schemas.effects import Notify, Record
from schemas.escalation import (
    ACTION_KINDS,
    Accept,
    Action,
    Actor,
    AddNote,
    Bypass,
    Close,
    DecideExtension,
    Escalate,
    EscalationState,
    EventKind,
    Flag,
    RecordConsultation,
    RecordMeeting,
    RecordStep,
    RecordViews,
    ReferToCafcass,
    ReplaceOfficer,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER, Protocol
from tests.driver import Driver, all_tracks, make_raise
from workflows import boundary, rules

BASE = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
"""Monday 5 January 2026; each example starts up to a year later, so BST and bank holidays come round."""
STEPS_MAX = 25
EXAMPLES_PER_TRACK = int(os.environ.get("RULES_PROPERTY_EXAMPLES", "100"))
"""Examples per track; set ``RULES_PROPERTY_EXAMPLES`` higher for a deeper search (the same cases first)."""
TIMERS_MAX = 200
"""More timers than this in one clock step means a timer that never stops falling due."""
STRANGER = Actor(id="stranger-1", role="passer_by")
BOGUS_STAGE = "no-such-stage"

PROPERTIES = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=EXAMPLES_PER_TRACK,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def protocol(authority: str) -> Protocol:
    """Protocols are frozen models, so one loaded copy serves every example."""
    return load_protocol(authority)


def people(state: EscalationState) -> list[Actor]:
    """Everyone who may try something: the officer, one person per protocol role, and a stranger."""
    staff = [Actor(id=f"{role.replace('_', '-')}-1", role=role) for role in state.protocol.roles]
    return [state.officer, *staff, STRANGER]


# --- what hypothesis draws -----------------------------------------------------------------------------

TEXTS = st.sampled_from(["Because the plan is late.", "  Padded with spaces.  ", "x", "Line one.\nLine two."])
OPTIONAL_TEXTS = st.sampled_from(["", "   ", "In the child's interests."])
MAYBE_TEXTS = st.none() | TEXTS
WORKING_DAYS = st.integers(0, 6) | st.integers(0, 60)
ATTENDEES = st.lists(st.sampled_from(["Team manager", "IRO", "Parent", "Child"]), min_size=1, max_size=3)


KIND_WEIGHTS = {
    "respond": 4,
    "request_extension": 2,
    "decide_extension": 3,
    "set_timescale": 2,
    "accept": 3,
    "escalate": 3,
    "bypass": 2,
    "refer_to_cafcass": 1,
    "record_consultation": 3,
    "record_meeting": 3,
    "replace_officer": 1,
    "withdraw": 1,
    "close": 1,
    "add_note": 1,
    "record_views": 1,
    "record_step": 2,
}
"""How often each kind is drawn: the ones that end an escalation less often, so runs go further."""
WEIGHTED_KINDS = [kind for kind, weight in KIND_WEIGHTS.items() for _ in range(weight)]
assert set(KIND_WEIGHTS) == set(ACTION_KINDS)


def london_date(at: datetime) -> date:
    return at.astimezone(rules.LONDON).date()


def dates(d: Driver) -> st.SearchStrategy[date]:
    """Days around today (a year back to past a year ahead) and around the escalation's own dates."""
    s = d.state
    today = rules.london_today(d.now)
    anchors = [today, london_date(s.stage_entered_at)]
    anchors += [x.due_date for x in (s.stage_schedule, s.total_schedule, s.hold_schedule) if x is not None]
    if s.stage_protocol_due is not None:
        anchors.append(s.stage_protocol_due)
    near = st.tuples(st.sampled_from(anchors), st.integers(-2, 2)).map(lambda x: x[0] + timedelta(days=x[1]))
    wide = st.integers(-400, 400).map(lambda k: today + timedelta(days=k))
    return near | wide


def actors(d: Driver) -> st.SearchStrategy[Actor]:
    """Anyone, with a lean towards the officer and the people the current stage involves."""
    s = d.state
    pool = people(s)
    by_role = {a.role: a for a in pool[1:-1]}
    to, cc = rules.addressees(s)
    track = rules.track_of(s)
    gates = [r for x in track.stages if x.entry_gate for r in x.entry_gate.with_roles]
    wanted = [*to, *cc, rules.current_stage(s).judged_by, s.protocol.extensions.approved_by, *gates]
    involved = [by_role[r] for r in dict.fromkeys(wanted) if r in by_role] or [s.officer]
    recipients = [by_role[r] for r in to if r in by_role] or [s.officer]
    return (
        st.just(s.officer) | st.sampled_from(recipients) | st.sampled_from(involved) | st.sampled_from(pool)
    )


def action_of(d: Driver, kind: str) -> st.SearchStrategy[Action]:
    """An action of ``kind``, with fields that may or may not make sense now.

    Only the strategy for ``kind`` is built: strategies that depend on the state cannot be cached, and
    building all fourteen at every step would cost more than running the rules.
    """
    s = d.state
    p = s.protocol
    track = rules.track_of(s)
    who = actors(d)
    stage_keys = st.sampled_from([*(x.key for x in track.stages), BOGUS_STAGE])
    roles = st.sampled_from([*p.roles, RAISING_OFFICER, STRANGER.role])
    gate_roles = {x.key: list(x.entry_gate.with_roles) for x in track.stages if x.entry_gate}

    def consultation(stage: str) -> st.SearchStrategy[RecordConsultation]:
        """Mostly with a role of that stage's gate (or of any gate), sometimes with anyone."""
        likely = gate_roles.get(stage) or [r for rs in gate_roles.values() for r in rs] or list(p.roles)
        return st.builds(
            RecordConsultation,
            actor=who,
            stage=st.just(stage),
            with_role=st.sampled_from(likely) | roles,
            agreed=st.none() | st.booleans(),
            summary=TEXTS,
        )

    if kind == "respond":
        return st.builds(
            Respond, actor=who, answer=TEXTS, action_plan=MAYBE_TEXTS, action_plan_due=st.none() | dates(d)
        )
    if kind == "request_extension":
        return st.builds(RequestExtension, actor=who, until=dates(d), reason=TEXTS)
    if kind == "decide_extension":
        return st.builds(
            DecideExtension,
            actor=who,
            approve=st.booleans(),
            reason=OPTIONAL_TEXTS,
            exceed_total_limit=st.booleans(),
        )
    if kind == "set_timescale":
        return st.one_of(
            st.builds(SetTimescale, actor=who, working_days=WORKING_DAYS, reason=TEXTS),
            st.builds(SetTimescale, actor=who, until=dates(d), reason=TEXTS),
            st.builds(
                SetTimescale,
                actor=who,
                working_days=st.none() | WORKING_DAYS,
                until=st.none() | dates(d),
                reason=TEXTS,
            ),
        )
    if kind == "accept":
        return st.builds(
            Accept,
            actor=who,
            note=OPTIONAL_TEXTS,
            action_plan=MAYBE_TEXTS,
            action_plan_due=st.none() | dates(d),
        )
    if kind == "escalate":
        return st.builds(Escalate, actor=who, reason=TEXTS, exceptional=st.booleans())
    if kind == "bypass":
        return st.builds(
            Bypass,
            actor=who,
            to_stage=stage_keys,
            reason=TEXTS,
            emergency=st.booleans(),
            discussed_with=st.none() | roles,
        )
    if kind == "refer_to_cafcass":
        consulted = st.lists(roles, max_size=3) | st.just(list(p.cafcass.consult))
        return st.builds(ReferToCafcass, actor=who, reason=TEXTS, consulted=consulted)
    if kind == "record_consultation":
        return stage_keys.flatmap(consultation)
    if kind == "record_meeting":
        return st.builds(RecordMeeting, actor=who, held_on=dates(d), attendees=ATTENDEES, outcome=TEXTS)
    if kind == "replace_officer":
        covering = st.builds(
            Actor,
            id=st.sampled_from(["cover-officer-1", "cover-officer-2", s.officer.id]),
            role=st.sampled_from([*track.officer_roles, STRANGER.role]),
        )
        return st.builds(ReplaceOfficer, actor=who, new_officer=covering, reason=TEXTS)
    if kind == "withdraw":
        return st.builds(Withdraw, actor=who, reason=TEXTS)
    if kind == "close":
        return st.builds(Close, actor=who, reason=TEXTS)
    if kind == "add_note":
        return st.builds(AddNote, actor=who, text=TEXTS)
    if kind == "record_step":
        keys = [duty.key for duty in d.state.duties] or ["officer-task"]
        people = st.lists(st.sampled_from(["child", "parents", "carers", "family", "advocate"]), max_size=3)
        return st.builds(
            RecordStep,
            actor=who,
            step=st.sampled_from(keys) | st.just("no-such-step"),
            told=people,
            how=st.none() | st.sampled_from(["in_person", "phone", "letter"]),
            note=OPTIONAL_TEXTS,
        )
    assert kind == "record_views", kind
    return st.builds(RecordViews, actor=who, whose=st.sampled_from(["child", "parent", "carer"]), views=TEXTS)


def witnesses(state: EscalationState, actor: Actor, now: datetime) -> dict[str, list[Action]]:
    """For each kind, payloads that pass every payload check whenever the guard lets ``actor`` act."""
    p = state.protocol
    track = rules.track_of(state)
    stage = rules.current_stage(state)
    later = track.stages[state.stage_index + 1 :]
    today = rules.london_today(now)
    due = state.stage_schedule.due_date if state.stage_schedule else today
    prior = p.bypass.prior_discussion_with
    why = "A reason."
    return {
        "respond": [
            Respond(actor=actor, answer="Done."),
            *(Respond(actor=actor, answer="Done.", on_behalf_of=r) for r in p.external_roles),
        ],
        "request_extension": [
            RequestExtension(actor=actor, until=max(today, due) + timedelta(days=1), reason=why)
        ],
        "decide_extension": [
            DecideExtension(actor=actor, approve=False, reason="Not in the child's interests.")
        ],
        "set_timescale": [
            SetTimescale(actor=actor, working_days=stage.response_working_days or 1, reason=why),
            SetTimescale(actor=actor, until=today, reason=why),
        ],
        "accept": [
            Accept(actor=actor),
            Accept(actor=actor, action_plan="Update the plan.", action_plan_due=today),
        ],
        "escalate": [Escalate(actor=actor, reason=why), Escalate(actor=actor, reason=why, exceptional=True)],
        "bypass": [
            Bypass(
                actor=actor,
                to_stage=x.key,
                reason=why,
                emergency=True,
                discussed_with=prior[0] if prior else None,
            )
            for x in later
        ],
        "refer_to_cafcass": [ReferToCafcass(actor=actor, reason=why, consulted=list(p.cafcass.consult))],
        "record_consultation": [
            RecordConsultation(actor=actor, stage=x.key, with_role=role, agreed=True, summary="Agreed.")
            for x in later
            if x.entry_gate
            for role in x.entry_gate.with_roles
        ],
        "record_meeting": [RecordMeeting(actor=actor, held_on=today, attendees=["IRO"], outcome="Agreed.")],
        "replace_officer": [
            ReplaceOfficer(
                actor=actor, new_officer=Actor(id="cover-officer", role=track.officer_roles[0]), reason=why
            )
        ],
        "withdraw": [Withdraw(actor=actor, reason=why)],
        "close": [Close(actor=actor, reason=why)],
        "add_note": [AddNote(actor=actor, text="A note.")],
        "record_views": [RecordViews(actor=actor, whose="child", views="Wants to stay.")],
        "record_step": [
            RecordStep(
                actor=actor,
                step=duty.key,
                told=["child", "parents", "carers", "family", "advocate"],
                how="phone",
            )
            for duty in state.duties
            if duty.done is None
        ],
    }


# --- the invariants --------------------------------------------------------------------------------------


def assert_refusal_changed_nothing(
    before: dict[str, Any], state: EscalationState, d: Driver, effects: int
) -> None:
    """A refused action leaves the state exactly as it was and produces no effect."""
    assert d.state is state, "a refused action replaced the state"
    assert d.state.model_dump() == before, "a refused action changed the state"
    assert len(d.effects) == effects, f"a refused action produced effects: {d.effects[effects:]}"


def assert_input_untouched(state: EscalationState, before: dict[str, Any]) -> None:
    """The rules never edit the state they are given, whether they accept or refuse."""
    assert state.model_dump() == before, "the rules edited the state they were given in place"


def assert_within_protocol(state: EscalationState) -> None:
    """The stage, status and any held target all exist in the protocol snapshot."""
    track = state.protocol.track(state.track)
    assert isinstance(state.status, Status), f"status {state.status!r} is not a Status"
    assert 0 <= state.stage_index < len(track.stages), f"stage_index {state.stage_index} is off the track"
    assert rules.current_stage(state) is track.stages[state.stage_index]
    if state.hold_target is not None:
        assert state.stage_index < state.hold_target < len(track.stages), (
            f"hold_target {state.hold_target} is not a later stage than {state.stage_index}"
        )
        held = track.stages[state.hold_target]
        deciding = Flag.EXCEPTIONAL_DECISION_DUE in state.flags
        assert held.entry_gate is not None or deciding, "hold_target has no entry gate"
        assert not deciding or held.exceptional, "held for an exceptional decision on an ordinary stage"
    if Flag.EXCEPTIONAL_DECISION_DUE in state.flags:
        assert state.status is Status.ESCALATION_DUE, "an exceptional decision is due but nothing is held"
    if state.status is Status.ESCALATION_DUE:
        assert state.hold_target is not None, "escalation due with nothing held"
        assert state.hold_via in (EventKind.ESCALATED, EventKind.BYPASSED)
    keys = {x.key for x in track.stages}
    assert {c.stage for c in state.consultations} <= keys, "a consultation is for a stage not on the track"


def assert_timeline_in_order(state: EscalationState, now: datetime) -> None:
    """Sequence numbers run 1..n without gaps; timestamps never decrease nor pass the clock."""
    timeline = state.timeline
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1)), "timeline seq has gaps"
    for a, b in pairwise(timeline):
        assert a.at <= b.at, f"entry {b.seq} ({b.at}) is earlier than entry {a.seq} ({a.at})"
    assert not timeline or timeline[-1].at <= now, "a timeline entry is later than the clock"
    keys = {x.key for x in rules.track_of(state).stages}
    assert {e.stage for e in timeline} <= keys, "a timeline entry names a stage not on the track"


def assert_records_match_timeline(d: Driver) -> None:
    """Every timeline entry is recorded exactly once, as it stands; every notice is about a real entry."""
    timeline = d.state.timeline
    records = [e for e in d.effects if isinstance(e, Record)]
    seqs = [r.entry.seq for r in records]
    assert len(seqs) == len(set(seqs)), f"a timeline entry was recorded twice: {sorted(seqs)}"
    assert sorted(seqs) == [e.seq for e in timeline], "records and timeline differ"
    for record in records:
        assert record.entry == timeline[record.entry.seq - 1], (
            f"record {record.entry.seq} differs from the entry"
        )
    for notice in (e for e in d.effects if isinstance(e, Notify)):
        assert 1 <= notice.entry_seq <= len(timeline), (
            f"a notice for entry {notice.entry_seq}, which is not there"
        )
        assert timeline[notice.entry_seq - 1].kind is notice.kind, "a notice's kind differs from its entry"


def assert_notices_go_to_known_roles(d: Driver) -> None:
    """Every notice goes to someone, and only to roles of the protocol or the raising officer."""
    known = {*d.state.protocol.roles, RAISING_OFFICER}
    for notice in (e for e in d.effects if isinstance(e, Notify)):
        assert notice.to, f"a {notice.kind.value} notice with no one to send it to"
        assert set(notice.to + notice.cc) <= known, f"a {notice.kind.value} notice to unknown roles"


def assert_no_timer_left_behind(state: EscalationState, now: datetime) -> None:
    """Once the clock has moved, every timer that fell due by then has fired."""
    wake = rules.next_wakeup(state)
    assert wake is None or wake > now, f"a timer due at {wake} had not fired by {now}"


def assert_view_agrees(state: EscalationState, now: datetime) -> None:
    """The supervisor's view shows the state as it is: its stage, and a deadline only while one runs."""
    view = rules.view(state, now)
    assert view.status is state.status and view.stage == rules.current_stage(state).key
    assert 1 <= view.stage_number <= view.stage_count == len(rules.track_of(state).stages)
    running = state.status is Status.AWAITING_RESPONSE and state.stage_schedule is not None
    assert (view.deadline is not None) == running, "the view shows a deadline that does not run, or hides one"
    for left in (view.working_days_left, view.total_working_days_left):
        assert left is None or left >= 0


def assert_deadlines_after_their_events(state: EscalationState, now: datetime) -> None:
    """No deadline falls before the event that set it; the stage's runs from within the stage."""
    named = {"stage": state.stage_schedule, "total": state.total_schedule, "hold": state.hold_schedule}
    for name, schedule in named.items():
        if schedule is None:
            continue
        assert schedule.received_at <= now, f"the {name} schedule was received in the future"
        assert schedule.due_at >= schedule.received_at, (
            f"the {name} deadline {schedule.due_at} is before its event {schedule.received_at}"
        )
        if schedule.remind_at is not None:
            assert schedule.received_at < schedule.remind_at <= schedule.due_at, (
                f"the {name} reminder {schedule.remind_at} is not within "
                f"{schedule.received_at}..{schedule.due_at}"
            )
    if state.stage_schedule is not None:
        assert state.stage_schedule.received_at >= state.stage_entered_at, (
            "the stage's deadline counts from before the stage was entered"
        )
    if state.total_schedule is not None:
        assert state.total_schedule.received_at == state.formal_started_at, (
            "the total limit does not count from the start of the formal process"
        )


def assert_total_limit_respected(state: EscalationState, now: datetime, *, timers_ran: bool) -> None:
    """Past the total limit without resolution the escalation is breached, and never before it."""
    total = state.total_schedule
    breaches = [e for e in state.timeline if e.kind is EventKind.BREACHED]
    assert len(breaches) <= 1, "the total limit was breached more than once"
    if Flag.BREACHED in state.flags:
        assert total is not None, "breached with no total limit"
        assert len(breaches) == 1, "breached without a breach entry"
        assert breaches[0].at >= total.due_at, "breached before the total limit passed"
    else:
        assert not breaches, "a breach entry without the breached flag"
    running = total is not None and not state.status.is_closed and state.status is not Status.MONITORING
    if timers_ran and running and total is not None and now >= total.due_at:
        assert Flag.BREACHED in state.flags, (
            f"the total limit ({total.due_at}) passed at {now} without resolution, yet no breach "
            f"(status {state.status.value})"
        )


def assert_extensions_pass_the_total_limit_only_explicitly(state: EscalationState) -> None:
    """An approved extension past the total limit says so and carries the ``beyond_total_limit`` flag."""
    total = state.total_schedule
    for entry in state.timeline:
        if entry.kind is not EventKind.EXTENSION_DECIDED or not entry.data.get("approved"):
            continue
        until = date.fromisoformat(entry.data["until"])
        past = total is not None and total.received_at <= entry.at and until > total.due_date
        assert entry.data.get("beyond_total_limit") is past, f"entry {entry.seq} misstates beyond_total_limit"
        assert Flag.BEYOND_TOTAL_LIMIT in state.flags or not past, (
            f"extension (entry {entry.seq}) past the total limit without the flag"
        )


def assert_closed_accepts_nothing(state: EscalationState) -> None:
    """Once closed, no one is offered anything and no timer is left."""
    if not state.status.is_closed:
        return
    for actor in people(state):
        assert rules.available_actions(state, actor) == [], (
            f"{actor} is offered actions on a closed escalation"
        )
    assert rules.next_wakeup(state) is None, "a closed escalation still has a timer"


def assert_closed_refused(was_closed: bool, action: Action, refusal: Exception | None) -> None:
    """An action on a closed escalation is refused."""
    assert not was_closed or refusal is not None, f"a closed escalation accepted {action!r}"


def assert_clock_left_closed_alone(before: dict[str, Any], d: Driver, effects: int) -> None:
    """Moving the clock changes nothing on a closed escalation."""
    assert d.state.model_dump() == before, "the clock changed a closed escalation"
    assert len(d.effects) == effects, (
        f"the clock produced effects on a closed escalation: {d.effects[effects:]}"
    )


def _outcome(state: EscalationState, action: Action, now: datetime) -> rules.Decision | str:
    """The rules' decision on ``action``, or the reason they refuse it."""
    try:
        return rules.handle(state, action, now)
    except rules.Refused as exc:
        return exc.reason


def assert_available_actions_agree(state: EscalationState, actor: Actor, now: datetime) -> None:
    """What ``available_actions`` offers ``actor`` can be done with some payload; what it omits, with none.

    Every decision a witness payload gets is checked as a next state too (``check_decision``), so each step
    also looks one action ahead.
    """
    offered = rules.available_actions(state, actor)
    assert set(offered) <= set(ACTION_KINDS)
    for kind, payloads in witnesses(state, actor, now).items():
        outcomes = [_outcome(state, payload, now) for payload in payloads]
        decisions = [x for x in outcomes if isinstance(x, rules.Decision)]
        if kind in offered:
            assert decisions, (
                f"{kind!r} is offered to {actor} ({state.status.value}) but is refused: {outcomes}"
            )
        else:
            accepted = payloads[outcomes.index(decisions[0])] if decisions else None
            assert accepted is None, (
                f"{kind!r} is not offered to {actor} ({state.status.value}) yet {accepted!r} passes"
            )
        for decision in decisions:
            check_decision(state, decision)


def assert_unoffered_action_refused(state: EscalationState, action: Action, now: datetime) -> None:
    """An action ``available_actions`` does not offer its sender is refused, whatever its payload."""
    if action.kind not in rules.available_actions(state, action.actor):
        assert isinstance(_outcome(state, action, now), str), (
            f"{action!r} was not offered but the rules accept it"
        )


def assert_decision_records_its_entries(state: EscalationState, decision: rules.Decision) -> None:
    """A decision keeps the timeline it was given and records exactly the entries it adds, in order."""
    timeline = decision.state.timeline
    assert timeline[: len(state.timeline)] == state.timeline, "a decision rewrote earlier timeline entries"
    added = timeline[len(state.timeline) :]
    assert [e.entry for e in decision.effects if isinstance(e, Record)] == added, (
        "records differ from new entries"
    )
    for notice in (e for e in decision.effects if isinstance(e, Notify)):
        assert notice.entry_seq in {e.seq for e in added}, (
            f"a notice for entry {notice.entry_seq}, not a new one"
        )


def check_decision(state: EscalationState, decision: rules.Decision) -> None:
    """The invariants that hold for a decision before its schedules are computed."""
    assert_within_protocol(decision.state)
    assert_decision_records_its_entries(state, decision)


def check_state(d: Driver, *, timers_ran: bool) -> None:
    assert_within_protocol(d.state)
    assert_timeline_in_order(d.state, d.now)
    assert_records_match_timeline(d)
    assert_deadlines_after_their_events(d.state, d.now)
    assert_total_limit_respected(d.state, d.now, timers_ran=timers_ran)
    assert_extensions_pass_the_total_limit_only_explicitly(d.state)
    assert_closed_accepts_nothing(d.state)
    assert_notices_go_to_known_roles(d)
    assert_view_agrees(d.state, d.now)
    assert_consultations_recorded_by_those_consulted(d.state)
    assert_requests_for_time_only_while_awaiting_an_answer(d.state)
    assert_deadlines_set_are_not_already_past(d.state)
    assert_stage_deadline_passes_the_total_limit_only_explicitly(d.state)
    if timers_ran:
        assert_no_timer_left_behind(d.state, d.now)


# --- the steps -------------------------------------------------------------------------------------------


def start(data: st.DataObject, authority: str, track_key: str) -> Driver:
    p = protocol(authority)
    track = p.track(track_key)
    officer = Actor(
        id="officer-1", role=data.draw(st.sampled_from(track.officer_roles), label="officer role")
    )
    area = data.draw(st.sampled_from([None, *p.service_areas]), label="service area")
    now = BASE + timedelta(hours=data.draw(st.integers(0, 366 * 24), label="hours after BASE"))
    later = [x.key for x in track.stages[1:]]
    bypassing = later and data.draw(st.integers(0, 3), label="bypass at start (0)") == 0
    at = data.draw(st.sampled_from(later), label="start at") if bypassing else None
    bypass = None
    consultations = []
    if at is not None:
        prior = p.bypass.prior_discussion_with
        bypass = Bypass(
            actor=officer,
            to_stage=at,
            reason="Urgent.",
            emergency=True,
            discussed_with=prior[0] if prior else None,
        )
        gate = track.stages[track.stage_index(at)].entry_gate
        if gate:
            consultations.append(
                RecordConsultation(
                    actor=officer, stage=at, with_role=gate.with_roles[0], agreed=True, summary="Agreed."
                )
            )
    raise_ = make_raise(
        authority,
        track_key,
        officer=officer,
        service_area=area,
        start_at_stage=at,
        start_bypass=bypass,
        consultations=consultations,
        protocol=p,
    )
    return Driver(raise_, now)


def act(d: Driver, data: st.DataObject) -> None:
    state, now, effects = d.state, d.now, len(d.effects)
    before = state.model_dump()
    kind = data.draw(st.sampled_from(WEIGHTED_KINDS), label="kind")
    action = data.draw(action_of(d, kind), label="action")
    refusal: Exception | None = None
    try:
        boundary.check_action(state, action, now)
        d.act(action)
    except (boundary.OutOfBounds, rules.Refused) as exc:
        refusal = exc
    if refusal is not None:
        assert_refusal_changed_nothing(before, state, d, effects)
    else:
        assert_more_time_is_not_less(state, d.state)
    event(f"{action.kind}: {type(refusal).__name__ if refusal else 'accepted'}")
    assert_closed_refused(state.status.is_closed, action, refusal)
    assert_input_untouched(state, before)
    assert_unoffered_action_refused(state, action, now)
    assert_available_actions_agree(state, action.actor, now)
    if action.actor != state.officer:
        assert_available_actions_agree(state, state.officer, now)
    assert_input_untouched(state, before)
    check_state(d, timers_ran=False)


def tick(d: Driver, data: st.DataObject, how: str) -> None:
    closed, effects = d.state.status.is_closed, len(d.effects)
    before = d.state.model_dump()
    if how == "clock":
        d.advance(timedelta(hours=data.draw(st.integers(1, 120), label="hours")), max_timers=TIMERS_MAX)
    else:
        wake = rules.next_wakeup(d.state) or d.now
        past = timedelta(minutes=data.draw(st.integers(0, 90), label="minutes past the next timer"))
        d.advance_to(max(d.now, wake) + past, max_timers=TIMERS_MAX)
    if closed:
        assert_clock_left_closed_alone(before, d, effects)
    check_state(d, timers_ran=True)


@pytest.mark.parametrize(("authority", "track"), all_tracks())
@PROPERTIES
@given(data=st.data())
def test_random_actions_and_time_keep_the_invariants(authority: str, track: str, data: st.DataObject) -> None:
    d = start(data, authority, track)
    check_state(d, timers_ran=False)
    for _ in range(data.draw(st.integers(1, STEPS_MAX), label="steps")):
        how = data.draw(st.sampled_from(["act", "act", "act", "clock", "next timer"]), label="step")
        if how == "act":
            act(d, data)
        else:
            tick(d, data, how)
    event(f"ended {d.state.status.value} at stage {d.state.stage_index + 1}")
    for flag in d.state.flags:
        event(f"flagged {flag.value}")


# --- bugs the search found, now fixed in the rules --------------------------------------------------------
# Each invariant below failed on the rules as they were, as the minimal example after it showed; the rules
# now keep them, and the property checks them at every step.


def assert_consultations_recorded_by_those_consulted(state: EscalationState) -> None:
    """A consultation is recorded by the raising officer or by the person consulted, never for a colleague."""
    officers = {state.officer.id, *(o.id for o in state.officers_before)}  # a covering officer took over
    for c in state.consultations:
        assert c.by.id in officers or c.by.role == c.with_role, (
            f"{c.by} recorded a consultation with {c.with_role!r} before {c.stage!r}"
        )


def test_a_consulted_person_records_only_their_own_consultation() -> None:
    d = Driver(make_raise("waltham-forest", "iro", protocol=protocol("waltham-forest")), BASE)
    qa = Actor(id="ad-quality-assurance-1", role="ad_quality_assurance")  # consulted before stages 4 to 6
    with contextlib.suppress(rules.Refused):
        d.act(
            RecordConsultation(actor=qa, stage="stage-3", with_role="iro_line_manager", summary="For them.")
        )
    assert_consultations_recorded_by_those_consulted(d.state)


def assert_requests_for_time_only_while_awaiting_an_answer(state: EscalationState) -> None:
    """A request for more time waits for a decision only while the stage still awaits its answer."""
    if state.pending_extension is not None and not state.status.is_closed:
        assert state.status is Status.AWAITING_RESPONSE, (
            f"a request for more time is still waiting while the escalation is {state.status.value}"
        )


def test_exhaustion_drops_a_pending_request_for_more_time() -> None:
    p = protocol("gloucestershire")
    top = p.tracks[0].stages[-1].key
    officer = Actor(id="officer-1", role="iro")
    bypass = Bypass(actor=officer, to_stage=top, reason="Urgent.", emergency=True)
    raise_ = make_raise(p.key, officer=officer, start_at_stage=top, start_bypass=bypass, protocol=p)
    d = Driver(raise_, BASE)
    assert d.state.stage_schedule is not None
    until = d.state.stage_schedule.due_date + timedelta(days=3)
    d.act(RequestExtension(actor=d.recipient(), until=until, reason="The panel meets next week."))
    d.advance_to(d.state.stage_schedule.due_at)  # no answer and no decision: the top stage's time runs out
    assert d.state.status is Status.EXHAUSTED
    assert_requests_for_time_only_while_awaiting_an_answer(d.state)


def assert_deadlines_set_are_not_already_past(state: EscalationState) -> None:
    """A deadline that an action sets (a timescale, an approved extension) has not passed when it is set."""
    for entry in state.timeline:
        if entry.kind is EventKind.TIMESCALE_SET:
            due = date.fromisoformat(entry.data["due_date"])
        elif entry.kind is EventKind.EXTENSION_DECIDED and entry.data.get("approved"):
            due = date.fromisoformat(entry.data["until"])
        else:
            continue
        assert due >= london_date(entry.at), (
            f"entry {entry.seq} ({entry.kind.value}) of {london_date(entry.at)} set a past deadline, {due}"
        )


def test_a_timescale_in_working_days_cannot_set_a_deadline_already_past() -> None:
    d = Driver(make_raise("gloucestershire", protocol=protocol("gloucestershire")), BASE)  # a Monday
    d.advance(timedelta(days=3))  # Thursday: one working day from Monday ended on Tuesday
    with contextlib.suppress(rules.Refused):
        d.act(SetTimescale(actor=d.state.officer, working_days=1, reason="Shorter, for the child."))
    assert_deadlines_set_are_not_already_past(d.state)


def assert_more_time_is_not_less(before: EscalationState, after: EscalationState) -> None:
    """Approving a request for more time never brings the stage's deadline forward."""
    added = after.timeline[len(before.timeline) :]
    approved = any(e.kind is EventKind.EXTENSION_DECIDED and e.data.get("approved") for e in added)
    if approved and before.stage_schedule is not None and after.stage_schedule is not None:
        assert after.stage_schedule.due_date >= before.stage_schedule.due_date, (
            f"more time was approved, yet the deadline moved from {before.stage_schedule.due_date} "
            f"to {after.stage_schedule.due_date}"
        )


def test_approving_more_time_never_brings_the_deadline_forward() -> None:
    d = Driver(make_raise("gloucestershire", protocol=protocol("gloucestershire")), BASE)
    assert d.state.stage_schedule is not None
    due = d.state.stage_schedule.due_date
    d.act(RequestExtension(actor=d.recipient(), until=due + timedelta(days=3), reason="Waiting on a report."))
    # The informal stage may run to a timescale agreed with the officer: they agree a longer one.
    d.act(
        SetTimescale(actor=d.state.officer, until=due + timedelta(days=10), reason="Agreed with the manager.")
    )
    before = d.state
    with contextlib.suppress(rules.Refused):
        d.act(DecideExtension(actor=d.state.officer, approve=True))
    assert_more_time_is_not_less(before, d.state)


def assert_stage_deadline_passes_the_total_limit_only_explicitly(state: EscalationState) -> None:
    """A stage deadline passes the total limit only where the protocol's own timescale does, or flagged."""
    stage, total = state.stage_schedule, state.total_schedule
    if stage is not None and total is not None and stage.due_date > total.due_date:
        own = state.stage_protocol_due is not None and stage.due_date <= state.stage_protocol_due
        assert own or Flag.BEYOND_TOTAL_LIMIT in state.flags, (
            f"the stage deadline {stage.due_date} passes the total limit {total.due_date} without the flag"
        )


def test_a_timescale_passes_the_total_limit_only_explicitly() -> None:
    p = protocol("wigan")
    top = p.track("iro").stages[-1]
    assert top.formal and top.response_working_days is None
    officer = Actor(id="officer-1", role="iro")
    bypass = Bypass(
        actor=officer,
        to_stage=top.key,
        reason="Urgent.",
        emergency=True,
        discussed_with=p.bypass.prior_discussion_with[0],
    )
    raise_ = make_raise(
        p.key, "iro", officer=officer, start_at_stage=top.key, start_bypass=bypass, protocol=p
    )
    d = Driver(raise_, BASE)  # the formal process, and its 20-working-day limit, start now
    with contextlib.suppress(rules.Refused):
        d.act(SetTimescale(actor=officer, working_days=21, reason="The director is away."))
    assert_stage_deadline_passes_the_total_limit_only_explicitly(d.state)
