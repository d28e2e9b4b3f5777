"""The application layer's core: connecting, reading an escalation as a person may see it, acting on it,
and the audit of each (``app.service.Application`` is the whole layer; see its docstring)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.db.base import make_engine
from activities.settings import Settings
from app.access import Facts, Relation, candidate_actors, relation
from app.audit import AuditLog, Outcome
from app.errors import AppError, BadInput, NotFound, Refused, Unavailable
from app.identity import People, Person
from app.inbound import InboundReply, replies_for
from app.inputs import (
    Label,
    build_action,
)
from schemas.bounds import LEGACY
from schemas.escalation import (
    ActionResult,
    Actor,
    EscalationView,
    RaiseConcern,
    Status,
)
from starter.connection import connect
from workflows.names import TASK_QUEUE, WORKFLOW_TYPE
from workflows.shell_options import BUSY, BUSY_BACKOFF_S, REFUSED

FACTS_CACHED = 4096


class TimescaleRefused(Refused):
    """The concern was raised, but the shorter timescale asked with it was refused (the rules' reason)."""

    def __init__(self, escalation_id: str, reason: str) -> None:
        super().__init__(
            f"The concern was raised as escalation {escalation_id}, but its shorter timescale was not set: "
            f"{reason}"
        )
        self.escalation_id = escalation_id


@dataclass(frozen=True)
class Caller:
    """A signed-in person and the front door they came through."""

    person: Person
    via: str
    client: str | None = None
    may: frozenset[str] | None = None
    """A service account's declared operations (``app.service_accounts``); None: a person, whom only the
    rules limit."""


class Reading(BaseModel):
    """One escalation as this person may see it, and what they may do now (kind -> the role they act in)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    view: EscalationView
    facts: Facts
    relation: Relation
    allowed: dict[str, Actor]
    replies: list[InboundReply] | None = None
    """Its e-mail replies and what became of each (None: the record store cannot be read now)."""


WAITING_STATUS: dict[str, tuple[Status, ...]] = {
    "respond": (Status.AWAITING_RESPONSE,),
    "record_meeting": (Status.AWAITING_RESPONSE, Status.AWAITING_DECISION),
    "accept": (Status.AWAITING_DECISION,),
    "record_consultation": (Status.ESCALATION_DUE,),
    "close": (Status.EXHAUSTED,),
}
"""An action that, offered in one of these statuses, means the escalation waits for this person; and
``decide_extension`` whenever it is offered (a request for more time waits)."""


def waiting_on(view: EscalationView, allowed: dict[str, Actor]) -> list[str]:
    found = [k for k, statuses in WAITING_STATUS.items() if k in allowed and view.status in statuses]
    if "decide_extension" in allowed:
        found.insert(0, "decide_extension")
    return found


@dataclass
class ApplicationCore:
    """Connecting, reading, acting and the audit; ``app.service.Application`` adds raising and lists."""

    client: Client
    people: People
    audit: AuditLog
    task_queue: str = TASK_QUEUE
    wait_s: float = 30.0
    lists_from: str | None = None
    """The record store the lists read (its database URL) where the worker records into the same
    database as this layer's audit log; None: Temporal's visibility (``app.lists``)."""
    _facts: OrderedDict[str, Facts] = field(default_factory=OrderedDict)

    @classmethod
    async def start(
        cls,
        *,
        client: Client | None = None,
        people: People | None = None,
        database_url: str | None = None,
        task_queue: str = TASK_QUEUE,
        lists_from_records: bool = False,
    ) -> Self:
        """Connect (``starter.connection.connect`` unless given a client) and open the audit log's
        database (``ESCALATION_DATABASE_URL``), migrated to head; with ``lists_from_records``, the lists
        read the escalations the worker records there."""
        from activities.db import migrate

        url = database_url or Settings().database_url
        await asyncio.to_thread(migrate.upgrade, url)
        return cls(
            client=client or await connect(),
            people=people or People.load(),
            audit=AuditLog(make_engine(url)),
            task_queue=task_queue,
            lists_from=url if lists_from_records else None,
        )

    # --- signing in ---------------------------------------------------------------------------------

    def signed_in(self, person: Person, via: str, client: str | None, how: str) -> None:
        self.audit.record("sign_in", Outcome.OK, via=via, person=person, reason=how, client=client)

    def sign_in_refused(self, reason: str, via: str, client: str | None) -> None:
        self.audit.record("sign_in", Outcome.REFUSED, via=via, reason=reason, client=client)

    def signed_out(self, person: Person, via: str, client: str | None) -> None:
        self.audit.record("sign_out", Outcome.OK, via=via, person=person, client=client)

    # --- reading ------------------------------------------------------------------------------------

    async def facts(self, escalation_id: str) -> Facts | None:
        """What never changes about an escalation (from its start input), or None when there is none."""
        if escalation_id in self._facts:
            self._facts.move_to_end(escalation_id)
            return self._facts[escalation_id]
        handle = self.client.get_workflow_handle(escalation_id)
        started: RaiseConcern | None = None
        try:
            async for event in handle.fetch_history_events(page_size=1, rpc_timeout=self._timeout):
                attrs = event.workflow_execution_started_event_attributes
                if attrs.workflow_type.name != WORKFLOW_TYPE:
                    return None
                (value,) = await self.client.data_converter.decode(list(attrs.input.payloads))
                try:
                    started = RaiseConcern.model_validate(value, context={LEGACY: True})
                except ValidationError:  # not an escalation this service started: none to show
                    return None
                break
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return None
            raise Unavailable("The escalation service did not answer: try again in a minute.") from None
        if started is None:
            return None
        facts = Facts(
            escalation_id=escalation_id,
            protocol=started.protocol,
            track=started.track,
            team=started.team,
            service_area=started.service_area,
            officer=started.officer,
        )
        self._facts[escalation_id] = facts
        while len(self._facts) > FACTS_CACHED:
            self._facts.popitem(last=False)
        return facts

    @property
    def _timeout(self) -> timedelta:
        return timedelta(seconds=self.wait_s)

    async def _query(self, escalation_id: str, query: str, *args: Any, result_type: type[Any]) -> Any:
        handle = self.client.get_workflow_handle(escalation_id)
        try:
            return await handle.query(query, args=args, result_type=result_type, rpc_timeout=self._timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(escalation_id) from None
            raise Unavailable(
                "The escalation did not answer: no worker may be running. Try again in a minute."
            ) from None
        except WorkflowQueryFailedError:
            raise Unavailable("The escalation cannot be read just now. Try again in a minute.") from None

    async def _view(self, escalation_id: str) -> EscalationView:
        view: EscalationView = await self._query(escalation_id, "state", result_type=EscalationView)
        return view

    async def _allowed(self, person: Person, facts: Facts, role: str | None = None) -> dict[str, Actor]:
        allowed: dict[str, Actor] = {}
        for actor in candidate_actors(person, facts):
            if role is not None and actor.role != role:
                continue
            kinds: list[str] = await self._query(
                facts.escalation_id, "available_actions", actor, result_type=list[str]
            )
            for kind in kinds:
                allowed.setdefault(kind, actor)
        return allowed

    async def _visible(self, caller: Caller, escalation_id: str) -> tuple[Facts, EscalationView, Relation]:
        """Its facts and state, asked together (one round trip); the state is shown to no one unless the
        facts say it is an escalation and the relation says this person may see it."""
        state = asyncio.ensure_future(self._view(escalation_id))
        try:
            facts = await self.facts(escalation_id)
            if facts is None:
                raise NotFound(escalation_id)
            view = await state
        finally:
            if not state.done():
                state.cancel()
            elif not state.cancelled():
                state.exception()  # a failure not awaited (the facts failed first) is not reported twice
        related = relation(caller.person, facts, view)
        if related is None:
            raise NotFound(escalation_id)
        return facts, view, related

    async def read(self, caller: Caller, escalation_id: str) -> Reading:
        """The escalation and what this person may do now; ``NotFound`` unless they may see it."""
        try:
            self._permit(caller, "read")
            facts, view, related = await self._visible(caller, escalation_id)
            allowed = await self._allowed(caller.person, facts)
        except AppError as exc:
            self.audit_outcome(caller, "read", escalation_id, exc)
            raise
        self.audit_outcome(caller, "read", escalation_id)
        replies = await asyncio.to_thread(replies_for, self.audit.engine, escalation_id)
        return Reading(view=view, facts=facts, relation=related, allowed=allowed, replies=replies)

    async def view(self, caller: Caller, escalation_id: str) -> EscalationView:
        """The escalation as ``read`` shows it, for a front door that shows only its state (``escalate
        status``): the same check of who may see it and the same audit, without asking what the person
        may do or reading its replies."""
        try:
            self._permit(caller, "read")
            _, view, _ = await self._visible(caller, escalation_id)
        except AppError as exc:
            self.audit_outcome(caller, "read", escalation_id, exc)
            raise
        self.audit_outcome(caller, "read", escalation_id)
        return view

    def audit_outcome(
        self,
        caller: Caller,
        event: str,
        escalation_id: str | None,
        failure: AppError | None = None,
        role: str | None = None,
    ) -> None:
        """Record in the audit log what ``caller`` did through a front door and how it ended (``failure``:
        the refusal or error they were given; None: done)."""
        outcomes: dict[type[AppError] | None, Outcome] = {
            None: Outcome.OK,
            NotFound: Outcome.NOT_FOUND,
            Refused: Outcome.REFUSED,
            BadInput: Outcome.BAD_INPUT,
            Unavailable: Outcome.UNAVAILABLE,
        }
        outcome = outcomes.get(type(failure) if failure else None, Outcome.REFUSED)
        self.audit.record(
            event,
            outcome,
            via=caller.via,
            person=caller.person,
            role=role,
            escalation_id=escalation_id,
            reason=failure.message if failure else "",
            client=caller.client,
        )

    def _permit(self, caller: Caller, operation: str) -> None:
        """A service account does only what it is declared for (``Refused`` otherwise)."""
        if caller.may is not None and operation not in caller.may:
            raise Refused(f"Service account {caller.person.id} is not declared for {operation}.")

    # --- acting -------------------------------------------------------------------------------------

    async def act(
        self,
        caller: Caller,
        escalation_id: str,
        kind: str,
        fields: dict[str, Any],
        label: Label = str,
        *,
        role: str | None = None,
        update_id: str | None = None,
    ) -> ActionResult:
        """Take action ``kind`` with ``fields``, in the role the rules allow it for this person (only in
        ``role`` when given: the command line's ``--as-role``).

        ``update_id``: the same id sent again (a front door retrying after a crash) gets the first
        attempt's result instead of acting twice (Temporal deduplicates updates by id)."""
        actor: Actor | None = None
        try:
            self._permit(caller, kind)
            facts, view, _ = await self._visible(caller, escalation_id)
            if view.status.is_closed and update_id is None:  # a retried update may find it closed by itself
                raise Refused(
                    f"The escalation has ended ({view.status.value.replace('_', ' ')}); "
                    "nothing more can be done."
                )
            allowed = await self._allowed(caller.person, facts, role)
            candidates = [a for a in candidate_actors(caller.person, facts) if role in (None, a.role)]
            actor = allowed.get(kind) or (candidates[0] if candidates else None)
            if actor is None:
                raise Refused(
                    "The staff directory gives you no role for this escalation's team, so you cannot act "
                    "on it."
                )
            action = build_action(kind, actor, fields, label)
            result = await self._update(escalation_id, action, update_id)
        except AppError as exc:
            self.audit_outcome(caller, kind[:64], escalation_id, exc, role=actor.role if actor else None)
            raise
        self.audit_outcome(caller, kind, escalation_id, role=actor.role)
        return result

    async def _update(self, escalation_id: str, action: Any, update_id: str | None = None) -> ActionResult:
        """Send the update named by the action's kind; a refusal as busy is sent again, as ``escalate``
        does (0.2 s, doubling to 2 s, for at most ``wait_s``)."""
        handle = self.client.get_workflow_handle(escalation_id)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_s
        pause, longest = BUSY_BACKOFF_S
        while True:
            left = give_up - loop.time()
            if left <= 0:
                raise Unavailable("The escalation is still busy with its last change: try again shortly.")
            try:
                result: ActionResult = await asyncio.wait_for(
                    handle.execute_update(action.kind, action, id=update_id, result_type=ActionResult),
                    timeout=left,
                )
                return result
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == BUSY:
                    await asyncio.sleep(min(pause, max(give_up - loop.time(), 0)))
                    pause = min(pause * 2, longest)
                    continue
                if isinstance(cause, ApplicationError) and cause.type == REFUSED:
                    raise Refused(_sentence(cause.message)) from None
                raise Refused("The escalation could not take that action.") from None
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
                raise Unavailable(
                    "The escalation did not answer in time; it may still take the action once a worker runs."
                ) from None
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:  # ended since it was read
                    raise Refused("The escalation has ended; nothing more can be done.") from None
                raise Unavailable("The escalation service did not answer: try again in a minute.") from None


def _sentence(reason: str) -> str:
    """A rule's reason as a sentence: capital first letter, full stop."""
    reason = " ".join(reason.split())
    if not reason:
        return reason
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "?", "!")) else reason + "."
