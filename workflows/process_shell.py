"""The shell the protocol's other processes share: the escalation shell's machinery for a smaller state.

A process workflow (``workflows.deemed_agreement``, ``workflows.practice_concern``) subclasses
``ProcessShell`` and names its pure rules; this module does the rest as ``EscalationWorkflow`` does it:

* updates arrive as raw payloads and are decoded and bounded here (``decode``, with the boundary's
  sentences naming each field); a refused update writes nothing to history;
* a transition's deadlines are placed first by the ``plan_schedules`` activity (the clock), so a deadline
  that cannot be placed refuses the action with nothing adopted; its records and notices then go in one
  ``carry_out_effects`` activity (the same record store, case notes and mail as escalations);
* an update is accepted only in a workflow task in which the process has not yet acted (``Busy``);
* search attributes (authority, process as the track, stage, status, deadline, flags) are kept current
  when the starter set them; a long history continues as new, carrying the state;
* a disagreement's informal resolution starts as a child ``EscalationWorkflow`` (see ``_open``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

from workflows.shell_options import (
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
    from pydantic import BaseModel, TypeAdapter, ValidationError

    from schemas.bounds import LEGACY
    from schemas.effects import (
        EffectBatch,
        EffectItem,
        Notify,
        PlanSchedule,
        Record,
        RecordRefusal,
        RefusalInput,
    )
    from schemas.escalation import Actor, RaiseConcern, Status
    from schemas.process_models import (
        DecisionsState,
        PracticeState,
        ProcessOutcome,
        ProcessResult,
        ProcessView,
    )
    from schemas.schedule import Schedule, ScheduleRequests, Schedules
    from workflows import boundary
    from workflows import search_attributes as indexed
    from workflows.rules import Refused
    from workflows.rules import _process_core as core

S = TypeVar("S", DecisionsState, PracticeState)

ESCALATION_WORKFLOW = "EscalationWorkflow"
"""The informal resolution a disagreement opens (``workflows.escalation.WORKFLOW_TYPE``)."""


def decode(adapter: TypeAdapter[Any], kinds: Sequence[str], name: str, args: Sequence[RawValue]) -> Any:
    """The action ``name`` from its one JSON payload; ``boundary.OutOfBounds`` naming what is wrong."""
    if name not in kinds:
        raise boundary.OutOfBounds(f"unknown action {name!r}; known actions: {', '.join(kinds)}")
    if len(args) != 1:
        raise boundary.OutOfBounds(f"{name}: send exactly one payload, the action (got {len(args)})")
    try:
        data = json_value(args[0])
    except ValueError as exc:
        raise boundary.OutOfBounds(f"{name}: {exc}") from None
    if not isinstance(data, dict):
        raise boundary.OutOfBounds(f"the {name} action must be a JSON object with its fields (actor, ...)")
    try:
        return adapter.validate_python({**data, "kind": data.get("kind", name)})
    except ValidationError as exc:
        raise boundary.OutOfBounds(boundary.describe(exc, name)) from None


def json_value(raw: RawValue) -> Any:
    """The JSON value inside a payload, or ValueError if it holds none."""
    payload = raw.payload
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"binary/null":
        raise ValueError("the payload is null")
    if encoding != b"json/plain":
        raise ValueError(f"the payload is not JSON ({encoding.decode(errors='replace')})")
    try:
        return json.loads(payload.data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the payload is not readable JSON ({exc})") from None


class ProcessShell(Generic[S]):
    """Everything but the rules. A subclass sets ``process`` and implements the ``_rule_*`` methods."""

    process = ""

    # --- what a subclass provides (its pure rules) ---------------------------------------------------------

    def _rule_start(self, raw: Any, now: datetime) -> core.ProcessDecision[S]:
        raise NotImplementedError

    def _rule_handle(self, state: S, action: Any, now: datetime) -> core.ProcessDecision[S]:
        raise NotImplementedError

    def _rule_timer(self, state: S, now: datetime) -> core.ProcessDecision[S]:
        raise NotImplementedError

    def _rule_decode(self, name: str, args: Sequence[RawValue]) -> Any:
        raise NotImplementedError

    def _rule_view(self, state: S, now: datetime) -> ProcessView:
        raise NotImplementedError

    def _rule_actions(self, state: S, actor: Actor, now: datetime) -> list[str]:
        raise NotImplementedError

    def _rule_item(self, state: S, effect: Record | Notify, run_id: str) -> EffectItem:
        raise NotImplementedError

    # --- set-up and the main loop ------------------------------------------------------------------------

    def _set_up(self, raw: RawValue, model: type[BaseModel]) -> None:
        self._lock = asyncio.Lock()
        self._version = 0
        self._started = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: Any = None
        self._acted_in: tuple[int, Any] | None = None
        self._state: S | None = None
        self._start: core.ProcessDecision[S] | None = None
        self._start_refused = ""
        self._input: Any = None
        started_with = workflow.info().typed_search_attributes
        self._indexed = started_with.get(indexed.STATUS) is not None
        self._index: dict[str, Any] = {
            indexed.STAGE.name: started_with.get(indexed.STAGE),
            indexed.STATUS.name: started_with.get(indexed.STATUS),
        }
        try:
            self._input = model.model_validate(json_value(raw), context={LEGACY: True})
            self._start = self._rule_start(self._input, workflow.now())
            self._state = self._start.state
        except Refused as refused:
            self._start_refused = refused.reason
        except (ValueError, TypeError) as exc:
            self._start_refused = f"the process's input could not be read: {exc}"

    async def _run(self) -> ProcessOutcome:
        if self._start is None:
            raise ApplicationError(self._start_refused, type=REFUSED, non_retryable=True)
        async with self._lock:
            await self._carry_out(self._start)
            self._started = True
        while not self.state_model.status.is_closed:
            await self._wait_keeping_the_timer()
            if self._history_is_long():
                await self._continue_as_new()
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self.state_model
        linked = getattr(s, "resolution_id", None)
        return ProcessOutcome(
            process_id=s.process_id, status=s.status, outcome=s.outcome, events=len(s.timeline), linked=linked
        )

    @property
    def state_model(self) -> S:
        if self._state is None:
            raise ApplicationError(f"the process did not start: {self._start_refused}", type=REFUSED)
        return self._state

    # --- queries and updates -------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> ProcessView:
        """Where the process stands, with its timeline."""
        view = self._rule_view(self.state_model, workflow.now())
        return view.model_copy(update={"busy": self._lock.locked()})

    @workflow.query
    def available_actions(self, actor: RawValue) -> list[str]:
        """The actions ``actor`` may take now."""
        try:
            who = Actor.model_validate(json_value(actor))
        except ValueError as exc:
            raise ApplicationError(f"available_actions needs an actor (id and role): {exc}") from None
        return self._rule_actions(self.state_model, who, workflow.now())

    @workflow.update(dynamic=True)
    async def act(self, name: str, args: Sequence[RawValue]) -> ProcessResult:
        await workflow.wait_condition(lambda: self._started)
        async with self._lock:
            try:
                action = self._rule_decode(name, args)
                decision = self._rule_handle(self.state_model, action, workflow.now())
                await self._carry_out(decision, refusable=True)
            except (
                boundary.OutOfBounds,
                Refused,
            ) as refused:  # the state moved, or a deadline cannot be placed
                raise ApplicationError(str(refused), type=REFUSED, non_retryable=True) from None
            s = self.state_model
            return ProcessResult(outcome=decision.outcome, status=s.status, stage=s.stage)

    @act.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        if self._acted_in == self._task_mark():
            raise ApplicationError(
                "the process is carrying out its last change; send this again in a moment",
                type=BUSY,
                non_retryable=True,
            )
        try:
            action = self._rule_decode(name, args)
            self._rule_handle(self.state_model, action, workflow.now())
        except (boundary.OutOfBounds, Refused) as refused:
            raise ApplicationError(str(refused), type=REFUSED, non_retryable=True) from None

    # --- carrying out ------------------------------------------------------------------------------------

    def _task_mark(self) -> tuple[int, Any]:
        return (workflow.info().get_current_history_length(), workflow.now())

    def _mark_acted(self) -> None:
        self._acted_in = self._task_mark()

    async def _wait_keeping_the_timer(self) -> None:
        """Wait for a change or the next deadline; a timer runs on while its deadline stays the same."""
        seen = self._version
        wake = core.next_wakeup(self.state_model)
        if wake is not None and wake <= workflow.now():
            async with self._lock:
                if self._version == seen:
                    await self._carry_out(self._rule_timer(self.state_model, workflow.now()))
            return
        if wake != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = None if wake is None else asyncio.create_task(self._sleep_until(wake))
        timer = self._timer
        await workflow.wait_condition(lambda: self._version != seen or (timer is not None and timer.done()))
        if timer is not None and timer.done():
            self._timer = self._timer_at = None

    async def _sleep_until(self, wake: datetime) -> None:
        await workflow.sleep(wake - workflow.now(), summary="next deadline")

    async def _carry_out(self, decision: core.ProcessDecision[S], *, refusable: bool = False) -> None:
        """Place the deadlines, adopt the state, record and send in one activity, then open what it opens."""
        self._mark_acted()
        requests = [e.request for e in decision.effects if isinstance(e, PlanSchedule)]
        placed: list[Schedule] = []
        if requests:
            try:
                placed = await self._plan_all(requests)
            except ActivityError as failed:
                reason = f"a deadline cannot be placed: {failure_reason(failed)}"
                if refusable:
                    raise Refused(reason) from None
                self._problem(reason)
        self._state = decision.state
        self._version += 1
        schedules = iter(placed)
        batch: list[Record | Notify | RecordRefusal] = []
        pending = list(decision.effects)
        while pending:
            effect = pending.pop(0)
            if not isinstance(effect, PlanSchedule):
                batch.append(effect)
                continue
            schedule = next(schedules, None)
            if schedule is not None:
                then = core.on_scheduled(self.state_model, effect, schedule, workflow.now())
                self._state = then.state
                pending[:0] = then.effects
        items = [self._item(e) for e in batch]
        if items:
            try:
                await self._activity("carry_out_effects", EffectBatch(items=items))
            except ActivityError as failed:
                self._problem(f"records and notices failed and will not be retried: {failure_reason(failed)}")
        if decision.opens is not None:
            await self._open(decision.opens)
        self._update_search_attributes()

    def _item(self, effect: Record | Notify | RecordRefusal) -> EffectItem:
        s = self.state_model
        run_id = workflow.info().first_execution_run_id or workflow.info().run_id
        if isinstance(effect, RecordRefusal):
            refusal = RefusalInput(
                escalation_id=s.process_id, authority=s.protocol.key, refusal=effect.refusal, run_id=run_id
            )
            return EffectItem(refusal=refusal)
        return self._rule_item(s, effect, run_id)

    async def _open(self, raise_: RaiseConcern) -> None:
        """Start the escalation a decision opens, as a child workflow that outlives this one.

        A child rather than a start from an activity: the start is a command in this history (replayed,
        never repeated), it needs no client or credentials in the worker, its input goes through the same
        encrypting data converter, and Temporal links the two (parent and child in the UI and in each
        history). ``ABANDON``: the escalation runs on once this process has ended. Its id is derived from
        this process's id; one already started (a reset, say) is taken as opened."""
        attributes = None
        if self._indexed:
            track = raise_.protocol.track(raise_.track)
            attributes = indexed.initial(
                raise_.protocol.key, track.key, track.stages[0].key, Status.AWAITING_RESPONSE
            )
        try:
            await workflow.start_child_workflow(
                ESCALATION_WORKFLOW,
                raise_,
                id=raise_.escalation_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=attributes,
                static_summary="informal resolution",
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info(
                "%s: %s was already opened", self.state_model.process_id, raise_.escalation_id
            )
        self._mark_acted()

    async def _plan_all(self, requests: list[Any]) -> list[Schedule]:
        placed = await workflow.execute_activity(
            "plan_schedules",
            ScheduleRequests(requests=requests),
            result_type=Schedules,
            start_to_close_timeout=PLAN_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary="deadlines",
        )
        self._mark_acted()
        return list(Schedules.model_validate(placed).schedules)

    async def _activity(self, name: str, arg: Any) -> None:
        await workflow.execute_activity(
            name,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._mark_acted()

    def _problem(self, text: str) -> None:
        workflow.logger.error("%s: %s", self.state_model.process_id, text)
        self._state = core.with_problem(self.state_model, text)

    def _update_search_attributes(self) -> None:
        if not self._indexed:
            return
        s = self.state_model
        running = s.schedule if s.status is Status.AWAITING_RESPONSE else None
        now = {
            indexed.STAGE.name: s.stage,
            indexed.STATUS.name: s.status.value,
            indexed.DEADLINE.name: running.due_at if running else None,
            indexed.FLAGS.name: sorted(f.value for f in s.flags),
        }
        changed = indexed.updates(self._index, now)
        if changed:
            workflow.upsert_search_attributes(changed)
            self._index = now

    # --- continuing as new -------------------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.history_events_before_continuing
            or info.get_current_history_size() >= HISTORY_SIZE_LIMIT
        )

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(lambda: not self._lock.locked() and workflow.all_handlers_finished())
        if self.state_model.status.is_closed:
            return
        workflow.continue_as_new(self._input.model_copy(update={"carried": self.state_model}))
