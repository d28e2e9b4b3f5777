"""EscalationWorkflow: the durable shell around the escalation rules.

It feeds the rules (``workflows.rules``) with actions (updates and signals), timer firings and schedules
computed by the clock activity, and carries out what they return: record, notify, schedule. Every state
change is an activity result or an accepted update/signal, so it is all in the workflow history.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.effects import (
        Effect,
        EscalationSnapshot,
        NotificationInput,
        Notify,
        PlanSchedule,
        Record,
        RecordEventInput,
        RecordRefusal,
        RefusalInput,
    )
    from schemas.escalation import (
        Accept,
        Action,
        ActionResult,
        Actor,
        AddNote,
        Bypass,
        Close,
        DecideExtension,
        Escalate,
        EscalationOutcome,
        EscalationState,
        EscalationView,
        RaiseConcern,
        RecordConsultation,
        RecordMeeting,
        RecordViews,
        ReferToCafcass,
        RequestExtension,
        Respond,
        SetTimescale,
        Withdraw,
    )
    from schemas.schedule import Schedule
    from workflows import rules
    from workflows import search_attributes as indexed

TASK_QUEUE = "escalations"
REFUSED = "Refused"
"""ApplicationError type of a refused action; its message is the reason."""

_ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["InvalidInput"],
)
_ACTIVITY_TIMEOUT = timedelta(seconds=60)


@workflow.defn(name="EscalationWorkflow")
class EscalationWorkflow:
    """One escalation of one concern about one child, from raising to closing."""

    @workflow.init
    def __init__(self, raise_: RaiseConcern) -> None:
        self._lock = asyncio.Lock()
        self._version = 0
        self._started = False
        self._state: EscalationState | None = None
        self._start: rules.Decision | None = None
        self._start_refused = ""
        # Kept up to date only if the starter set them (see workflows.search_attributes): from history.
        started_with = workflow.info().typed_search_attributes
        self._indexed = started_with.get(indexed.STATUS) is not None
        self._index: dict[str, Any] = {
            indexed.STAGE.name: started_with.get(indexed.STAGE),
            indexed.STATUS.name: started_with.get(indexed.STATUS),
        }
        try:
            # Decided here so that queries and validators arriving with the start see the state.
            self._start = rules.start(raise_, workflow.now())
            self._state = self._start.state
        except rules.Refused as refused:
            self._start_refused = refused.reason

    @workflow.run
    async def run(self, raise_: RaiseConcern) -> EscalationOutcome:
        if self._start is None:
            raise ApplicationError(self._start_refused, type=REFUSED, non_retryable=True)
        async with self._lock:
            await self._carry_out(self._start)
            self._started = True
        while not self.state_model.status.is_closed:
            await self._wait_for_change_or_timer()
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self.state_model
        return EscalationOutcome(
            escalation_id=s.escalation_id,
            status=s.status,
            stage=rules.current_stage(s).key,
            flags=list(s.flags),
            events=len(s.timeline),
        )

    # --- queries -----------------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> EscalationView:
        """The whole current state: status, stage, who holds it, deadlines, flags, timeline."""
        view = rules.view(self.state_model, workflow.now())
        return view.model_copy(update={"busy": self._lock.locked()})

    @workflow.query
    def available_actions(self, actor: Actor) -> list[str]:
        """The actions ``actor`` may take now."""
        return rules.available_actions(self.state_model, actor)

    # --- updates (validated; a refusal writes nothing to history) and signals of the same meaning -------

    @workflow.update
    async def respond(self, action: Respond) -> ActionResult:
        return await self._apply(action)

    @respond.validator
    def _v_respond(self, action: Respond) -> None:
        self._validate(action)

    @workflow.signal(name="respond")
    async def respond_signal(self, action: Respond) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def request_extension(self, action: RequestExtension) -> ActionResult:
        return await self._apply(action)

    @request_extension.validator
    def _v_request_extension(self, action: RequestExtension) -> None:
        self._validate(action)

    @workflow.signal(name="request_extension")
    async def request_extension_signal(self, action: RequestExtension) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def decide_extension(self, action: DecideExtension) -> ActionResult:
        return await self._apply(action)

    @decide_extension.validator
    def _v_decide_extension(self, action: DecideExtension) -> None:
        self._validate(action)

    @workflow.signal(name="decide_extension")
    async def decide_extension_signal(self, action: DecideExtension) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def set_timescale(self, action: SetTimescale) -> ActionResult:
        return await self._apply(action)

    @set_timescale.validator
    def _v_set_timescale(self, action: SetTimescale) -> None:
        self._validate(action)

    @workflow.signal(name="set_timescale")
    async def set_timescale_signal(self, action: SetTimescale) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def accept(self, action: Accept) -> ActionResult:
        return await self._apply(action)

    @accept.validator
    def _v_accept(self, action: Accept) -> None:
        self._validate(action)

    @workflow.signal(name="accept")
    async def accept_signal(self, action: Accept) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def escalate(self, action: Escalate) -> ActionResult:
        return await self._apply(action)

    @escalate.validator
    def _v_escalate(self, action: Escalate) -> None:
        self._validate(action)

    @workflow.signal(name="escalate")
    async def escalate_signal(self, action: Escalate) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def bypass(self, action: Bypass) -> ActionResult:
        return await self._apply(action)

    @bypass.validator
    def _v_bypass(self, action: Bypass) -> None:
        self._validate(action)

    @workflow.signal(name="bypass")
    async def bypass_signal(self, action: Bypass) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def refer_to_cafcass(self, action: ReferToCafcass) -> ActionResult:
        return await self._apply(action)

    @refer_to_cafcass.validator
    def _v_refer_to_cafcass(self, action: ReferToCafcass) -> None:
        self._validate(action)

    @workflow.signal(name="refer_to_cafcass")
    async def refer_to_cafcass_signal(self, action: ReferToCafcass) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def record_consultation(self, action: RecordConsultation) -> ActionResult:
        return await self._apply(action)

    @record_consultation.validator
    def _v_record_consultation(self, action: RecordConsultation) -> None:
        self._validate(action)

    @workflow.signal(name="record_consultation")
    async def record_consultation_signal(self, action: RecordConsultation) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def record_meeting(self, action: RecordMeeting) -> ActionResult:
        return await self._apply(action)

    @record_meeting.validator
    def _v_record_meeting(self, action: RecordMeeting) -> None:
        self._validate(action)

    @workflow.signal(name="record_meeting")
    async def record_meeting_signal(self, action: RecordMeeting) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def withdraw(self, action: Withdraw) -> ActionResult:
        return await self._apply(action)

    @withdraw.validator
    def _v_withdraw(self, action: Withdraw) -> None:
        self._validate(action)

    @workflow.signal(name="withdraw")
    async def withdraw_signal(self, action: Withdraw) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def close(self, action: Close) -> ActionResult:
        return await self._apply(action)

    @close.validator
    def _v_close(self, action: Close) -> None:
        self._validate(action)

    @workflow.signal(name="close")
    async def close_signal(self, action: Close) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def add_note(self, action: AddNote) -> ActionResult:
        return await self._apply(action)

    @add_note.validator
    def _v_add_note(self, action: AddNote) -> None:
        self._validate(action)

    @workflow.signal(name="add_note")
    async def add_note_signal(self, action: AddNote) -> None:
        await self._apply_signal(action)

    @workflow.update
    async def record_views(self, action: RecordViews) -> ActionResult:
        return await self._apply(action)

    @record_views.validator
    def _v_record_views(self, action: RecordViews) -> None:
        self._validate(action)

    @workflow.signal(name="record_views")
    async def record_views_signal(self, action: RecordViews) -> None:
        await self._apply_signal(action)

    # --- the shell ---------------------------------------------------------------------------------------

    @property
    def state_model(self) -> EscalationState:
        if self._state is None:
            raise ApplicationError(f"the escalation did not start: {self._start_refused}", type=REFUSED)
        return self._state

    def _validate(self, action: Action) -> None:
        try:
            rules.check(self.state_model, action, workflow.now())
        except rules.Refused as refused:
            raise ApplicationError(refused.reason, type=REFUSED, non_retryable=True) from None

    async def _apply(self, action: Action) -> ActionResult:
        await workflow.wait_condition(lambda: self._started)
        async with self._lock:
            try:
                decision = rules.handle(self.state_model, action, workflow.now())
            except rules.Refused as refused:
                # The state moved between validation and handling: fail this update, change nothing.
                raise ApplicationError(refused.reason, type=REFUSED, non_retryable=True) from None
            await self._carry_out(decision)
            s = self.state_model
            return ActionResult(outcome=decision.outcome, status=s.status, stage=rules.current_stage(s).key)

    async def _apply_signal(self, action: Action) -> None:
        await workflow.wait_condition(lambda: self._started)
        async with self._lock:
            now = workflow.now()
            try:
                decision = rules.handle(self.state_model, action, now)
            except rules.Refused as refused:
                decision = rules.refuse(self.state_model, action, refused.reason, now)
            await self._carry_out(decision)

    async def _wait_for_change_or_timer(self) -> None:
        seen = self._version
        wake = rules.next_wakeup(self.state_model)
        if wake is not None:
            delay = wake - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._version != seen, timeout=delay, timeout_summary="next deadline"
                    )
                    return
                except TimeoutError:
                    pass
            async with self._lock:
                if self._version == seen:
                    await self._carry_out(rules.on_timer(self.state_model, workflow.now()))
            return
        await workflow.wait_condition(lambda: self._version != seen)

    async def _carry_out(self, decision: rules.Decision) -> None:
        """Adopt the decided state, then carry out its effects in order (caller holds the lock)."""
        self._state = decision.state
        self._version += 1
        for effect in decision.effects:
            await self._perform(effect)
        self._update_search_attributes()

    def _update_search_attributes(self) -> None:
        if not self._indexed:
            return
        now = indexed.current(self.state_model)
        changed = indexed.updates(self._index, now)
        if changed:
            workflow.upsert_search_attributes(changed)
            self._index = now

    async def _perform(self, effect: Effect) -> None:
        s = self.state_model
        if isinstance(effect, Record):
            await _activity(
                "record_event",
                RecordEventInput(
                    escalation_id=s.escalation_id,
                    authority=s.protocol.key,
                    child_ref=s.child_ref,
                    track=s.track,
                    status=s.status,
                    stage=effect.entry.stage or rules.current_stage(s).key,
                    entry=effect.entry,
                    run_id=workflow.info().run_id,
                    snapshot=_snapshot(s),
                ),
            )
        elif isinstance(effect, Notify):
            await _activity("send_notification", _notification(s, effect))
        elif isinstance(effect, RecordRefusal):
            await _activity(
                "record_refusal",
                RefusalInput(escalation_id=s.escalation_id, authority=s.protocol.key, refusal=effect.refusal),
            )
        elif isinstance(effect, PlanSchedule):
            schedule = await workflow.execute_activity(
                "plan_schedule",
                effect.request,
                result_type=Schedule,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_ACTIVITY_RETRY,
                summary=f"deadline for {effect.purpose}",
            )
            await self._carry_out(rules.on_scheduled(s, effect, schedule, workflow.now()))


async def _activity(name: str, arg: Any) -> None:
    await workflow.execute_activity(
        name,
        arg,
        start_to_close_timeout=_ACTIVITY_TIMEOUT,
        retry_policy=_ACTIVITY_RETRY,
    )


def _snapshot(s: EscalationState) -> EscalationSnapshot:
    """The fields of ``rules.view`` that the state table keeps, without building the whole view."""
    stage = rules.current_stage(s)
    held_by, _ = rules.addressees(s, stage)
    sched = rules.running_schedule(s)
    total = s.total_schedule
    return EscalationSnapshot(
        category=s.category,
        service_area=s.service_area,
        team=s.team,
        raised_by=s.officer,
        raised_at=s.raised_at,
        stage_name=stage.name,
        stage_number=s.stage_index + 1,
        formal=stage.formal,
        held_by=held_by,
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        total_deadline_date=total.due_date if total else None,
        flags=[f.value for f in s.flags],
    )


def _notification(s: EscalationState, effect: Notify) -> NotificationInput:
    entry = s.timeline[effect.entry_seq - 1]
    stage = rules.current_stage(s)
    sched = s.stage_schedule
    return NotificationInput(
        escalation_id=s.escalation_id,
        authority=s.protocol.key,
        child_ref=s.child_ref,
        team=s.team,
        service_area=s.service_area,
        kind=effect.kind,
        entry=entry,
        officer=s.officer,
        to_roles=effect.to,
        cc_roles=effect.cc,
        stage=stage.key,
        stage_name=stage.name,
        status=s.status,
        deadline=sched.due_at if sched else None,
        deadline_date=sched.due_date if sched else None,
        working_days=sched.working_days_left(entry.at) if sched else None,
        concern_summary=s.concern.summary,
        idempotency_key=f"{s.escalation_id}/{entry.seq}",
    )
