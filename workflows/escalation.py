"""EscalationWorkflow: the durable shell around the escalation rules.

It feeds the rules (``workflows.rules``) with actions (updates and signals), timer firings and schedules
computed by the clock activity, and carries out what they return: record, notify, schedule. Every state
change is an activity result or an accepted update/signal, so it is all in the workflow history.

What it guarantees (escalations started since ``BOUNDED``; older ones replay exactly as they ran):

* Nothing sent can fail a workflow task or the workflow: updates and signals arrive as raw payloads and are
  decoded and bounded here (``workflows.boundary``); a payload that cannot be read is refused with a
  reason naming the field, never a decoding error.
* An action is carried out whole or not adopted: its deadlines are computed before the state changes, so
  a date the calendar cannot place refuses the action; a record or notice that fails for good after that
  is kept in ``problems`` (and flagged) instead of failing the escalation.
* An update is accepted only in a workflow task in which the escalation has not yet acted; otherwise it
  is refused as ``Busy`` (transient: send it again). This keeps the order of commands in history the
  same whichever way the SDK groups an update with an activity result (see ``workflows.activation_order``).
* A long-lived escalation continues as new, carrying its state, before its history grows large.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.names import TASK_QUEUE as TASK_QUEUE  # re-exported: callers long found it here
from workflows.names import WORKFLOW_TYPE
from workflows.shell_options import (
    ACTIVITY_FAILED,
    ACTIVITY_RETRY,
    ACTIVITY_TIMEOUT,
    BUSY,
    HEARTBEAT_TIMEOUT,
    HISTORY_SIZE_LIMIT,
    PLAN_TIMEOUT,
    REFUSED,
    failure_reason,
)

with workflow.unsafe.imports_passed_through():
    from schemas.bounds import LEGACY
    from schemas.effects import (
        BatchOutcome,
        DeliveryCheck,
        Effect,
        EffectBatch,
        EffectItem,
        EscalationSnapshot,
        NotificationInput,
        Notify,
        PlanSchedule,
        Record,
        RecordEventInput,
        RecordRefusal,
        RefusalInput,
        Undelivered,
    )
    from schemas.escalation import (
        Action,
        ActionResult,
        Actor,
        EscalationOutcome,
        EscalationState,
        EscalationView,
        RaiseConcern,
    )
    from schemas.schedule import Schedule, ScheduleRequests, Schedules
    from workflows import boundary, rules, summaries
    from workflows import search_attributes as indexed

BOUNDED = "bounded-inputs-2026-11"
"""Patch id: escalations started with it decode and bound every input, pre-compute deadlines before
adopting an action, keep failed records as problems, and continue as new."""
LEAN = "lean-transitions-2026-11"
"""Patch id: escalations started with it place a transition's deadlines in one activity and carry out its
records and notices in one more, and keep the deadline timer running while the deadline is unchanged."""
EXACT_CLOCK = "exact-clock-2026-12"
"""Patch id: in escalations started with it, a stage entered because the previous stage's deadline passed
begins at that deadline, its first working day the one the deadline's midnight starts (no working day is
lost between stages that time out). Passed to the rules as ``on_timer(..., exact_clock=...)``."""
HONOURED = "honoured-fields-2026-12"
"""Patch id: escalations started with it honour what their protocol says of a gate on the first stage
(the consultation given at raise must open it), of a stage kept for exceptional circumstances (a deadline
passing holds for the officer's decision; escalating into it needs ``exceptional``) and of a judge other
than the raising officer (the officer is told of the answer and the resolution). Passed to the rules as
``start/handle/check/on_timer(..., honour=...)``. Decided when the workflow is constructed, with the
others, as the start decision needs it."""
STALL_AWARE = "stall-aware-delivery-2026-12"
"""Patch id: in escalations started with it, a notice that cannot go out (a role nobody holds at once; the
mail server down for longer than a few quick retries) does not hold the transition's batch in Temporal's
retries: the batch reports it, the escalation stalls visibly (``rules.on_delivery``: a stage whose own
notice waits has no deadline running), and the held notices are tried again on a durable timer with
backoff or at once on the ``redeliver`` signal, after a ``check_delivery`` that sends nothing."""
REDELIVER = "redeliver"
"""Signal (no payload): try held notices now (``escalate directory sync`` sends it to stalled escalations)."""
MAIL_ATTEMPTS = 4
"""Attempts of a batch (1 s, 2 s, 4 s apart) before a mail server that is down stalls the escalation."""
LOCAL_CLOCK = "local-clock-2026-11"
"""Patch id: escalations started with it place deadlines (``plan_schedules``, the working-day calendar: no
I/O) in a local activity: its result is one marker event in the workflow task that asked for it, instead of
an activity task's three events and the workflow task that follows them. Only that pure computation is
local. A local activity's input is not in history until its workflow task completes: if that task is lost
(a worker dies, the task times out), the task runs again later and decides afresh, which is harmless for a
calculation but would leave records and mails written from a decision the escalation did not adopt. So the
batch of records and notices, and the delivery check, stay activity tasks, each scheduled by a completed
workflow task with its input in history. ``workflow.now()`` moves on when a local activity resolves, by an
amount a replay under load can see differently, so what the transition announces after placing its
deadlines takes the time the transition was decided. This one patch also stands for every earlier one, so
a new escalation records one patch marker (and its search attribute upsert), not five of each."""


@workflow.defn(name=WORKFLOW_TYPE)
class EscalationWorkflow:
    """One escalation of one concern about one child, from raising to closing."""

    @workflow.init
    def __init__(self, raise_: RawValue) -> None:
        self._lock = asyncio.Lock()
        self._version = 0
        self._started = False
        self._bounded = False
        self._lean = False
        self._exact = False
        self._honour = False
        self._stall_aware = False
        self._local = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: Any = None
        self._acted_in: tuple[int, Any] | None = None
        self._state: EscalationState | None = None
        self._start: rules.Decision | None = None
        self._start_refused = ""
        self._input: RaiseConcern | None = None
        # Kept up to date only if the starter set them (see workflows.search_attributes): from history.
        started_with = workflow.info().typed_search_attributes
        self._indexed = started_with.get(indexed.STATUS) is not None
        self._index: dict[str, Any] = {
            indexed.STAGE.name: started_with.get(indexed.STAGE),
            indexed.STATUS.name: started_with.get(indexed.STATUS),
        }
        # The patches are decided here (their markers are still the run's first commands, in this order):
        # the start decision below depends on HONOURED.
        # LOCAL_CLOCK implies the others: escalations started before it asked for each in turn.
        self._local = workflow.patched(LOCAL_CLOCK)
        if self._local:
            self._bounded = self._lean = self._exact = self._honour = self._stall_aware = True
        else:
            self._bounded = workflow.patched(BOUNDED)
            self._lean = self._bounded and workflow.patched(LEAN)
            self._exact = self._lean and workflow.patched(EXACT_CLOCK)
            self._honour = self._exact and workflow.patched(HONOURED)
            self._stall_aware = self._exact and workflow.patched(STALL_AWARE)
        try:
            # The start input was bounded by the front door; it is read as leniently as it was recorded.
            self._input = RaiseConcern.model_validate(_json(raise_), context={LEGACY: True})
            if self._input.carried is not None:  # continued as new: carry on where the last run stopped
                self._start = rules.Decision(state=self._input.carried)
            else:
                # Decided here so that queries and validators arriving with the start see the state.
                self._start = rules.start(self._input, workflow.now(), honour=self._honour)
            self._state = self._start.state
        except rules.Refused as refused:
            self._start_refused = refused.reason
        except (ValueError, TypeError) as exc:
            self._start_refused = f"the escalation's input could not be read: {exc}"

    @workflow.run
    async def run(self, raise_: RawValue) -> EscalationOutcome:
        if self._start is None:
            raise ApplicationError(self._start_refused, type=REFUSED, non_retryable=True)
        async with self._lock:
            await self._carry_out(self._start)
            self._started = True
        while not self.state_model.status.is_closed:
            await self._wait_for_change_or_timer()
            if self._bounded and self._history_is_long():
                await self._continue_as_new()
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
        return view.model_copy(update={"busy": self._lock.locked(), "concern": self.state_model.concern})

    @workflow.query
    def available_actions(self, actor: RawValue) -> list[str]:
        """The actions ``actor`` may take now."""
        try:
            who = Actor.model_validate(_json(actor))
        except ValueError as exc:
            raise ApplicationError(f"available_actions needs an actor (id and role): {exc}") from None
        return rules.available_actions(self.state_model, who)

    # --- every action: an update (validated; a refusal writes nothing to history) and a signal -----------

    @workflow.update(dynamic=True)
    async def act(self, name: str, args: Sequence[RawValue]) -> ActionResult:
        await workflow.wait_condition(lambda: self._started)
        return await self._apply(self._decode(name, args, legacy=not self._bounded))

    @act.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        if self._acted_in == self._task_mark():
            raise ApplicationError(
                "the escalation is carrying out its last change; send this again in a moment",
                type=BUSY,
                non_retryable=True,
            )
        try:
            action = self._decode(name, args, legacy=False)
            boundary.check_action(self.state_model, action, workflow.now())
            rules.check(self.state_model, action, workflow.now(), honour=self._honour)
        except (boundary.OutOfBounds, rules.Refused) as refused:
            raise ApplicationError(str(refused), type=REFUSED, non_retryable=True) from None

    @workflow.signal(dynamic=True)
    async def act_signal(self, name: str, args: Sequence[RawValue]) -> None:
        await workflow.wait_condition(lambda: self._started)
        if not self._bounded:
            try:  # as before bounds existed: an unreadable signal was dropped
                action = self._decode(name, args, legacy=True)
            except boundary.OutOfBounds:
                return
            await self._apply_signal(action)
            return
        try:
            action = self._decode(name, args, legacy=False)
            boundary.check_action(self.state_model, action, workflow.now())
        except boundary.OutOfBounds as refused:
            async with self._lock:
                refusal = rules.refuse(self.state_model, name, _actor_in(args), str(refused), workflow.now())
                await self._carry_out(refusal)
            return
        await self._apply_signal(action)

    @workflow.signal(name=REDELIVER)
    async def redeliver(self) -> None:
        """Try the held notices now (a no-op when none are held)."""
        await workflow.wait_condition(lambda: self._started)
        if not self._stall_aware:
            return
        async with self._lock:
            if self.state_model.stall is not None:
                await self._redeliver()

    # --- the shell ---------------------------------------------------------------------------------------

    @property
    def state_model(self) -> EscalationState:
        if self._state is None:
            raise ApplicationError(f"the escalation did not start: {self._start_refused}", type=REFUSED)
        return self._state

    def _decode(self, name: str, args: Sequence[RawValue], *, legacy: bool) -> Action:
        if len(args) != 1:
            raise boundary.OutOfBounds(f"{name}: send exactly one payload, the action (got {len(args)})")
        payload = args[0].payload
        encoding = payload.metadata.get("encoding", b"")
        if encoding == b"binary/null":
            raise boundary.OutOfBounds(f"the {name} action must be a JSON object with its fields, not null")
        if encoding != b"json/plain":
            raise boundary.OutOfBounds(
                f"{name}: the payload is not JSON ({encoding.decode(errors='replace')})"
            )
        return boundary.decode_action(name, payload.data, legacy=legacy)

    def _task_mark(self) -> tuple[int, Any]:
        """Identifies the current workflow task: its history length and start time."""
        return (workflow.info().get_current_history_length(), workflow.now())

    def _mark_acted(self) -> None:
        self._acted_in = self._task_mark()

    async def _apply(self, action: Action) -> ActionResult:
        async with self._lock:
            try:
                if self._bounded:  # the state may have moved since the validator checked it
                    boundary.check_action(self.state_model, action, workflow.now())
                decision = rules.handle(self.state_model, action, workflow.now(), honour=self._honour)
                await self._carry_out(decision, refusable=True)
            except (boundary.OutOfBounds, rules.Refused) as refused:
                # The state moved between validation and handling, or a deadline could not be placed:
                # fail this update, adopt nothing.
                raise ApplicationError(str(refused), type=REFUSED, non_retryable=True) from None
            s = self.state_model
            return ActionResult(outcome=decision.outcome, status=s.status, stage=rules.current_stage(s).key)

    async def _apply_signal(self, action: Action) -> None:
        async with self._lock:
            now = workflow.now()
            try:
                decision = rules.handle(self.state_model, action, now, honour=self._honour)
                await self._carry_out(decision, refusable=self._bounded)
            except rules.Refused as refused:
                refusal = rules.refuse(self.state_model, action.kind, action.actor, refused.reason, now)
                await self._carry_out(refusal)

    async def _wait_for_change_or_timer(self) -> None:
        if self._lean:
            await self._wait_keeping_the_timer()
            return
        seen = self._version
        wake = rules.next_wakeup(self.state_model)
        if wake is not None:
            delay = wake - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._version != seen,
                        timeout=delay,
                        timeout_summary=summaries.timer_summary(self.state_model, wake),
                    )
                    return
                except TimeoutError:
                    pass
            async with self._lock:
                if self._version == seen:
                    await self._carry_out(
                        rules.on_timer(
                            self.state_model, workflow.now(), exact_clock=self._exact, honour=self._honour
                        )
                    )
            return
        await workflow.wait_condition(lambda: self._version != seen)

    async def _wait_keeping_the_timer(self) -> None:
        """Wait for a change or the next deadline; a timer runs on while its deadline stays the same."""
        seen = self._version
        wake = rules.next_wakeup(self.state_model)
        if wake is not None and wake <= workflow.now():
            async with self._lock:
                if self._version == seen:
                    stall = self.state_model.stall
                    if stall is not None and stall.retry_at <= workflow.now():
                        await self._redeliver()
                    else:
                        await self._carry_out(
                            rules.on_timer(
                                self.state_model,
                                workflow.now(),
                                exact_clock=self._exact,
                                honour=self._honour,
                            )
                        )
            return
        if wake != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = None if wake is None else asyncio.create_task(self._sleep_until(wake))
        timer = self._timer
        await workflow.wait_condition(lambda: self._version != seen or (timer is not None and timer.done()))
        if timer is not None and timer.done():
            self._timer = self._timer_at = None  # fired: the next turn finds its deadline due

    async def _sleep_until(self, wake: Any) -> None:
        await workflow.sleep(wake - workflow.now(), summary=summaries.timer_summary(self.state_model, wake))

    async def _carry_out(self, decision: rules.Decision, *, refusable: bool = False) -> None:
        """Adopt the decided state, then carry out its effects in order (caller holds the lock).

        Bounded escalations place every deadline first: if one cannot be placed, an action that may be
        refused (``refusable``) raises ``rules.Refused`` with nothing adopted; otherwise it is a problem.
        """
        if self._lean:
            await self._carry_out_lean(decision, refusable=refusable)
            return
        self._mark_acted()
        placed: dict[int, Schedule] = {}
        if self._bounded:
            for index, effect in enumerate(decision.effects):
                if isinstance(effect, PlanSchedule):
                    try:
                        placed[index] = await self._plan(effect)
                    except ActivityError as failed:
                        reason = f"the {effect.purpose} deadline cannot be placed: {failure_reason(failed)}"
                        if refusable:
                            raise rules.Refused(reason) from None
                        self._problem(reason)
        self._state = decision.state
        self._version += 1
        for index, effect in enumerate(decision.effects):
            try:
                await self._perform(effect, placed.get(index))
            except ActivityError as failed:
                if not self._bounded:
                    raise
                self._problem(
                    f"{_effect_name(effect)} failed and will not be retried: {failure_reason(failed)}"
                )
        self._update_search_attributes()

    async def _carry_out_lean(self, decision: rules.Decision, *, refusable: bool) -> None:
        """``_carry_out`` in two activities at most: the deadlines, then every record and notice in order."""
        self._mark_acted()
        decided = workflow.now()  # before any local activity moves the clock (see LOCAL_CLOCK)
        planned = [e for e in decision.effects if isinstance(e, PlanSchedule)]
        placed: list[Schedule] = []
        if planned:
            try:
                placed = await self._plan_all(planned)
            except ACTIVITY_FAILED as failed:
                reason = f"a deadline cannot be placed: {failure_reason(failed)}"
                if refusable:
                    raise rules.Refused(reason) from None
                self._problem(reason)
        self._state = decision.state
        self._version += 1
        schedules = iter(placed)
        batch: list[EffectItem | Record] = []
        notices: list[Notify] = []
        pending = list(decision.effects)
        while pending:
            effect = pending.pop(0)
            if isinstance(effect, Notify):
                notices.append(effect)
            if not isinstance(effect, PlanSchedule):
                # A record waits for the transition's deadlines: its snapshot (the records' row and the
                # case note) shows the deadline the transition set, such as an approved extension's.
                batch.append(effect if isinstance(effect, Record) else self._effect_item(effect))
                continue
            schedule = next(schedules, None)
            if schedule is not None:  # announced now, in order, with the state as it then stands
                when = decided if self._local else workflow.now()
                then = rules.on_scheduled(self.state_model, effect, schedule, when)
                self._state = then.state
                pending[:0] = then.effects
        items = [self._effect_item(e) if isinstance(e, Record) else e for e in batch]
        if items and self._stall_aware:
            await self._carry_out_reporting(items, notices)
        elif items:
            try:
                await self._activity(
                    "carry_out_effects",
                    EffectBatch(items=items),
                    summary=summaries.batch_summary(self.state_model.protocol, items),
                )
            except ActivityError as failed:
                self._problem(f"records and notices failed and will not be retried: {failure_reason(failed)}")
        self._update_search_attributes()

    async def _carry_out_reporting(self, items: list[EffectItem], notices: list[Notify]) -> None:
        """The batch, reporting the notices that could not go out; the rules then stall or unstall."""
        try:
            result = await workflow.execute_activity(
                "carry_out_effects_reporting",
                EffectBatch(items=items, report_undelivered_from_attempt=MAIL_ATTEMPTS),
                result_type=BatchOutcome,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=summaries.batch_summary(self.state_model.protocol, items),
            )
        except ActivityError as failed:
            self._mark_acted()
            self._problem(f"records and notices failed and will not be retried: {failure_reason(failed)}")
            return
        self._mark_acted()
        outcome = BatchOutcome.model_validate(result)
        if outcome.undelivered or self.state_model.stall is not None or outcome.covered:
            then = rules.on_delivery(
                self.state_model, notices, outcome.undelivered, workflow.now(), covered=outcome.covered
            )
            await self._carry_out_lean(then, refusable=False)

    async def _redeliver(self) -> None:
        """Check that the held notices can go out (sending nothing), then send them, or try later."""
        s = self.state_model
        assert s.stall is not None
        roles = sorted({r for p in s.stall.notices for r in [*p.to, *p.cc]})
        check = DeliveryCheck(authority=s.protocol.key, team=s.team, officer_id=s.officer.id, roles=roles)
        self._mark_acted()
        try:
            result = await workflow.execute_activity(
                "check_delivery",
                check,
                result_type=BatchOutcome,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary="can held notices go out",
            )
            found = BatchOutcome.model_validate(result).undelivered
        except ActivityError as failed:  # a bug, not an outage (those are retried): try again later
            self._problem(f"checking whether held notices can go out failed: {failure_reason(failed)}")
            found = [Undelivered(seq=0, reason=s.stall.reason)]
        self._mark_acted()
        if found:
            self._state = rules.still_stalled(self.state_model, found[0], workflow.now()).state
            self._version += 1
            self._update_search_attributes()
            return
        await self._carry_out_lean(rules.redeliver(self.state_model, workflow.now()), refusable=False)

    async def _plan_all(self, planned: list[PlanSchedule]) -> list[Schedule]:
        """A transition's deadlines, placed at once: in a local activity since ``LOCAL_CLOCK``."""
        requests = ScheduleRequests(requests=[p.request for p in planned])
        summary = summaries.schedules_summary([p.purpose for p in planned])
        if self._local:
            placed = await workflow.execute_local_activity(
                "plan_schedules",
                requests,
                result_type=Schedules,
                start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=summary,
            )
        else:
            placed = await workflow.execute_activity(
                "plan_schedules",
                requests,
                result_type=Schedules,
                start_to_close_timeout=PLAN_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=summary,
            )
        self._mark_acted()
        return list(Schedules.model_validate(placed).schedules)

    def _effect_item(self, effect: Effect) -> EffectItem:
        """The activity input of a record, notice or refusal, from the state as it now stands."""
        s = self.state_model
        run_id = workflow.info().first_execution_run_id or workflow.info().run_id
        if isinstance(effect, Record):
            return EffectItem(record=_record_input(s, effect, run_id))
        if isinstance(effect, Notify):
            return EffectItem(notify=_notification(s, effect, run_id))
        assert isinstance(effect, RecordRefusal)
        refusal = RefusalInput(
            escalation_id=s.escalation_id, authority=s.protocol.key, refusal=effect.refusal, run_id=run_id
        )
        return EffectItem(refusal=refusal)

    def _problem(self, text: str) -> None:
        workflow.logger.error("escalation %s: %s", self.state_model.escalation_id, text)
        self._state = rules.with_problem(self.state_model, text)

    def _update_search_attributes(self) -> None:
        """Keep the search attributes and the Temporal UI's current details in step with the state."""
        workflow.set_current_details(summaries.current_details(self.state_model, workflow.now()))
        if not self._indexed:
            return
        now = indexed.current(self.state_model)
        changed = indexed.updates(self._index, now)
        if changed:
            workflow.upsert_search_attributes(changed)
            self._index = now

    async def _plan(self, effect: PlanSchedule) -> Schedule:
        schedule = await workflow.execute_activity(
            "plan_schedule",
            effect.request,
            result_type=Schedule,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT if self._bounded else None,
            retry_policy=ACTIVITY_RETRY,
            summary=f"deadline for {effect.purpose}",
        )
        self._mark_acted()
        return Schedule.model_validate(schedule)

    async def _perform(self, effect: Effect, placed: Schedule | None = None) -> None:
        s = self.state_model
        run_id = workflow.info().first_execution_run_id or workflow.info().run_id
        if isinstance(effect, Record):
            await self._activity(
                "record_event", _record_input(s, effect, run_id), summary=f"record {effect.entry.kind}"
            )
        elif isinstance(effect, Notify):
            notice = _notification(s, effect, run_id)
            await self._activity(
                "send_notification",
                notice,
                summary=summaries.batch_summary(s.protocol, [EffectItem(notify=notice)]),
            )
        elif isinstance(effect, RecordRefusal):
            await self._activity(
                "record_refusal",
                RefusalInput(
                    escalation_id=s.escalation_id,
                    authority=s.protocol.key,
                    refusal=effect.refusal,
                    run_id=run_id,
                ),
            )
        elif isinstance(effect, PlanSchedule):
            schedule = placed or await self._plan(effect)
            await self._carry_out(rules.on_scheduled(self.state_model, effect, schedule, workflow.now()))

    async def _activity(self, name: str, arg: Any, summary: str | None = None) -> None:
        await workflow.execute_activity(
            name,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT if self._bounded else None,
            retry_policy=ACTIVITY_RETRY,
            summary=summary,
        )
        self._mark_acted()

    # --- continuing as new -------------------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        assert self._input is not None
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.history_events_before_continuing
            or info.get_current_history_size() >= HISTORY_SIZE_LIMIT
        )

    async def _continue_as_new(self) -> None:
        """Carry the state into a new run once no action is in progress (updates must not be cut off)."""
        await workflow.wait_condition(lambda: not self._lock.locked() and workflow.all_handlers_finished())
        if self.state_model.status.is_closed:
            return
        assert self._input is not None
        carried = self._input.model_copy(update={"carried": self.state_model})
        workflow.continue_as_new(carried)


def _json(raw: RawValue) -> Any:
    """The JSON value inside a payload, or ValueError if it holds none."""
    payload = raw.payload
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"binary/null":
        return None
    if encoding != b"json/plain":
        raise ValueError(f"payload encoding {encoding.decode(errors='replace')!r} is not JSON")
    try:
        return json.loads(payload.data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None


def _actor_in(args: Sequence[RawValue]) -> Actor:
    """Who sent an unreadable signal, if the payload says so plainly; otherwise ``unknown``."""
    try:
        return Actor.model_validate(_json(args[0])["actor"])
    except Exception:
        return Actor(id="unknown", role="unknown")


def _effect_name(effect: Effect) -> str:
    if isinstance(effect, Record):
        return f"recording event {effect.entry.seq}"
    if isinstance(effect, Notify):
        return f"the notice of event {effect.entry_seq}"
    if isinstance(effect, RecordRefusal):
        return "recording a refusal"
    return f"placing the {effect.purpose} deadline"


def _record_input(s: EscalationState, effect: Record, run_id: str) -> RecordEventInput:
    return RecordEventInput(
        escalation_id=s.escalation_id,
        authority=s.protocol.key,
        child_ref=s.child_ref,
        track=s.track,
        status=s.status,
        stage=effect.entry.stage or rules.current_stage(s).key,
        entry=effect.entry,
        run_id=run_id,
        snapshot=_snapshot(s),
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
        stage_label=stage.label,
        case_note_type=s.protocol.stage_note_type(stage, s.officer.role),
        concern=s.concern,
        part_of=s.part_of,
    )


def _notification(s: EscalationState, effect: Notify, run_id: str) -> NotificationInput:
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
        run_id=run_id,
        stage_label=stage.label,
        concern=s.concern,
        external=[x for x in s.external_contacts if x.role in (*effect.to, *effect.cc)],
    )
