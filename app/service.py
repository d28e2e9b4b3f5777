"""The application layer every front door calls: connect, authorise, raise, act, read and list.

A front door (the web pages, the JSON API; next the command line and the e-mail ingester) authenticates a
person, then calls ``Application`` with a ``Caller``; it holds no rule of its own. Here:

* **who sees what** (``app.access``): an escalation the person has no business in is ``NotFound``, the
  same as one that does not exist;
* **who may do what**: the workflow's ``available_actions`` query for each role the directory gives the
  person for the escalation's team (``app.access.candidate_actors``); an action it does not offer is still
  sent, in the person's most fitting role, so that the refusal is the rules' own reason (a refused update
  leaves the history unchanged);
* **bounded input**: the actions' pydantic models (``app.inputs``);
* **raising**: ``starter.escalations.prepare`` and ``raise_once`` (idempotent on the form's request id);
* **lists**: the visibility read model (``starter.read_model``), then each escalation the person may see;
* **audit** (``app.audit``): every sign-in, raise, action and read of an escalation, with its outcome.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
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
from app.access import Facts, Relation, candidate_actors, may_have_held, relation, relation_now
from app.audit import AuditLog, Outcome
from app.errors import AppError, BadInput, NotFound, Refused, Unavailable
from app.identity import People, Person
from app.inputs import (
    Label,
    RaiseRequest,
    build_action,
    consultation_at_raise,
    raise_request,
    statuses_known,
)
from protocols import ProtocolError, load_protocol
from schemas.bounds import LEGACY
from schemas.escalation import (
    COLLECTIVE_REF,
    ActionResult,
    Actor,
    Bypass,
    Collective,
    Concern,
    EscalationView,
    RaiseConcern,
    Status,
)
from schemas.protocol import EntryPoint, Protocol
from starter.connection import connect
from starter.escalations import BadInput as RaiseBadInput
from starter.escalations import prepare, raise_once
from starter.read_model import EscalationRow, ListFilter, list_escalations
from workflows import rules
from workflows.escalation import BUSY, REFUSED, TASK_QUEUE, WORKFLOW_TYPE

BUSY_BACKOFF_S = (0.2, 2.0)
"""As ``escalate``: the first pause before sending a busy-refused update again, and the longest."""
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


class Reading(BaseModel):
    """One escalation as this person may see it, and what they may do now (kind -> the role they act in)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    view: EscalationView
    facts: Facts
    relation: Relation
    allowed: dict[str, Actor]


class Item(BaseModel):
    """One line of a list: the escalation, its relation to the person, and whether it waits for them."""

    row: EscalationRow
    relation: Relation
    waiting: list[str] = []


class Listing(BaseModel):
    items: list[Item]
    unreadable: int = 0
    """Escalations that could not be read to decide (no worker answered): the list says so."""


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
class Application:
    client: Client
    people: People
    audit: AuditLog
    task_queue: str = TASK_QUEUE
    wait_s: float = 30.0
    _facts: OrderedDict[str, Facts] = field(default_factory=OrderedDict)

    @classmethod
    async def start(
        cls,
        *,
        client: Client | None = None,
        people: People | None = None,
        database_url: str | None = None,
        task_queue: str = TASK_QUEUE,
    ) -> Application:
        """Connect (``starter.connection.connect`` unless given a client) and open the audit log's
        database (``ESCALATION_DATABASE_URL``), migrated to head."""
        from activities.db import migrate

        url = database_url or Settings().database_url
        await asyncio.to_thread(migrate.upgrade, url)
        return cls(
            client=client or await connect(),
            people=people or People.load(),
            audit=AuditLog(make_engine(url)),
            task_queue=task_queue,
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
                started = RaiseConcern.model_validate(value, context={LEGACY: True})
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

    async def _allowed(self, person: Person, facts: Facts) -> dict[str, Actor]:
        allowed: dict[str, Actor] = {}
        for actor in candidate_actors(person, facts):
            kinds: list[str] = await self._query(
                facts.escalation_id, "available_actions", actor, result_type=list[str]
            )
            for kind in kinds:
                allowed.setdefault(kind, actor)
        return allowed

    async def _visible(self, caller: Caller, escalation_id: str) -> tuple[Facts, EscalationView, Relation]:
        facts = await self.facts(escalation_id)
        if facts is None:
            raise NotFound(escalation_id)
        view = await self._view(escalation_id)
        related = relation(caller.person, facts, view)
        if related is None:
            raise NotFound(escalation_id)
        return facts, view, related

    async def read(self, caller: Caller, escalation_id: str) -> Reading:
        """The escalation and what this person may do now; ``NotFound`` unless they may see it."""
        try:
            facts, view, related = await self._visible(caller, escalation_id)
            allowed = await self._allowed(caller.person, facts)
        except AppError as exc:
            self._audit(caller, "read", escalation_id, exc)
            raise
        self._audit(caller, "read", escalation_id)
        return Reading(view=view, facts=facts, relation=related, allowed=allowed)

    def _audit(
        self,
        caller: Caller,
        event: str,
        escalation_id: str | None,
        failure: AppError | None = None,
        role: str | None = None,
    ) -> None:
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

    # --- acting -------------------------------------------------------------------------------------

    async def act(
        self,
        caller: Caller,
        escalation_id: str,
        kind: str,
        fields: dict[str, Any],
        label: Label = str,
        *,
        update_id: str | None = None,
    ) -> ActionResult:
        """Take action ``kind`` with ``fields``, in the role the rules allow it for this person.

        ``update_id``: the same id sent again (a front door retrying after a crash) gets the first
        attempt's result instead of acting twice (Temporal deduplicates updates by id)."""
        actor: Actor | None = None
        try:
            facts, _, _ = await self._visible(caller, escalation_id)
            allowed = await self._allowed(caller.person, facts)
            candidates = candidate_actors(caller.person, facts)
            actor = allowed.get(kind) or (candidates[0] if candidates else None)
            if actor is None:
                raise Refused(
                    "The staff directory gives you no role for this escalation's team, so you cannot act "
                    "on it."
                )
            action = build_action(kind, actor, fields, label)
            result = await self._update(escalation_id, action, update_id)
        except AppError as exc:
            self._audit(caller, kind[:64], escalation_id, exc, role=actor.role if actor else None)
            raise
        self._audit(caller, kind, escalation_id, role=actor.role)
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

    # --- raising ------------------------------------------------------------------------------------

    def raising_roles(self, person: Person) -> dict[str, list[str]]:
        """Track key -> the officer roles this person holds that may raise on it (empty: cannot raise)."""
        try:
            protocol = load_protocol(person.authority)
        except ProtocolError:
            return {}
        held = {h.role for h in person.holdings}
        return {
            t.key: [r for r in t.officer_roles if r in held]
            for t in protocol.tracks
            if any(r in held for r in t.officer_roles)
        }

    def protocol_of(self, person: Person) -> Protocol:
        return load_protocol(person.authority)

    async def raise_concern(
        self,
        caller: Caller,
        fields: dict[str, Any],
        label: Label = str,
        *,
        dry_run: bool = False,
        collective: Collective | None = None,
    ) -> str:
        """Raise a concern from the raise form's fields; the escalation id (the same on a retry).

        ``dry_run``: check everything raising checks (bounds, the protocol's rules, the directory) and
        start nothing (a form's "check your answers"); it returns the id the escalation would have.
        ``collective``: raise a collective alert (``app.collective``), at the level chosen with QA."""
        person = caller.person
        event = "raise_check" if dry_run else "raise"
        try:
            form = raise_request(fields, label)
            roles = self.raising_roles(person).get(form.track, [])
            role = next(
                (r for r in roles if form.team in person.teams_for(r) or None in person.teams_for(r)), None
            )
            if role is None:
                raise Refused(
                    "The staff directory does not give you a role that raises concerns on that track for "
                    "that team."
                )
            protocol = self.protocol_of(person)
            statuses_known(form, protocol, label)
            if form.part_of is not None and not re.fullmatch(
                rf"{protocol.key}-{COLLECTIVE_REF}-\d{{4,}}", form.part_of
            ):
                raise BadInput(
                    {
                        "part_of": f"{label('part_of')} must be a collective alert's id, like "
                        f"{protocol.key}-{COLLECTIVE_REF}-0123456789"
                    }
                )
            track = protocol.track(form.track)
            start, entry = rules.start_index(track, form.category, form.severity, form.start_at_stage)
            if collective is not None:  # the level chosen with QA: not a bypass
                entry = entry or EntryPoint(stage=track.stages[start].key)
            officer = Actor(id=person.id, role=role)
            bypass = None
            if form.start_at_stage and entry is None:  # a bypass at the start, not an entry point
                if not form.bypass_reason:
                    raise BadInput({"bypass_reason": f"Enter {label('bypass_reason').lower()}"})
                bypass = Bypass(
                    actor=officer,
                    to_stage=form.start_at_stage,
                    reason=form.bypass_reason,
                    emergency=form.emergency,
                    discussed_with=form.discussed_with,
                )
            raise_ = prepare(
                authority=person.authority,
                track=form.track,
                category=form.category,
                child_ref=form.child_ref,
                officer=officer,
                concern=Concern(
                    summary=form.summary,
                    impact_on_child=form.impact_on_child,
                    requested_action=form.requested_action,
                    child_views=form.child_views,
                    parents_views=form.parents_views,
                ),
                team=form.team,
                start_at_stage=form.start_at_stage,
                start_bypass=bypass,
                request_id=form.request_id,
                child_status=form.child_status,
                severity=form.severity,
                consultations=consultation_at_raise(form, track.stages[start], officer, label),
                external_contacts=form.external_contacts,
                collective=collective,
                part_of=form.part_of,
            )
            if dry_run:
                return raise_.escalation_id
            raised = await raise_once(self.client, raise_, self.task_queue)
        except RaiseBadInput as exc:
            failure: AppError = BadInput({"form": _sentence(exc.reason)})
            self._audit(caller, event, None, failure)
            raise failure from None
        except (rules.Refused, KeyError) as exc:
            failure = Refused(_sentence(exc.reason if isinstance(exc, rules.Refused) else str(exc.args[0])))
            self._audit(caller, event, None, failure)
            raise failure from None
        except RPCError:
            failure = Unavailable("The escalation service did not answer: try again in a minute.")
            self._audit(caller, event, None, failure)
            raise failure from None
        except AppError as exc:
            self._audit(caller, event, None, exc)
            raise
        self._audit(caller, "raise", raise_.escalation_id, role=role)
        if form.timescale_working_days is not None and not raised.existing:
            try:
                await self._shorten(raise_.escalation_id, officer, form, label)
            except AppError as exc:
                self._audit(caller, "set_timescale", raise_.escalation_id, exc, role=role)
                if isinstance(exc, TimescaleRefused):
                    raise
                raise TimescaleRefused(raise_.escalation_id, exc.message) from None
            self._audit(caller, "set_timescale", raise_.escalation_id, role=role)
        return raised.handle.id

    async def _shorten(self, escalation_id: str, officer: Actor, form: RaiseRequest, label: Label) -> None:
        """The shorter timescale asked at raise: once the first stage's deadline is placed, the officer's
        ``set_timescale``; a refusal says the concern was raised and why the timescale was not set."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_s
        while True:
            view = await self._view(escalation_id)
            if (not view.busy and view.deadline_date is not None) or loop.time() > give_up:
                break
            await asyncio.sleep(0.1)
        action = build_action(
            "set_timescale",
            officer,
            {"working_days": form.timescale_working_days, "reason": form.timescale_reason},
            label,
        )
        try:
            await self._update(escalation_id, action)
        except Refused as exc:
            raise TimescaleRefused(escalation_id, exc.message) from None

    # --- lists --------------------------------------------------------------------------------------

    async def escalations(self, caller: Caller, *, open_only: bool = False) -> Listing:
        """Every escalation of the person's authority they may see, soonest deadline first, each with
        what waits for them."""
        person = caller.person
        now = datetime.now(UTC)
        try:
            listing = await list_escalations(
                self.client, ListFilter(authority=person.authority, open_only=open_only), now, self._timeout
            )
        except RPCError:
            raise Unavailable(
                "The list of escalations cannot be read just now: try again in a minute."
            ) from None
        limit = asyncio.Semaphore(8)

        async def one(row: EscalationRow) -> Item | BaseException | None:
            async with limit:
                try:
                    facts = await self.facts(row.escalation_id)
                    if facts is None:
                        return None
                    related = relation_now(person, facts, row.stage)
                    view = None
                    if related is None and may_have_held(person, facts, row.stage):
                        view = await self._view(row.escalation_id)
                        related = relation(person, facts, view)
                    if related is None:
                        return None
                    waiting: list[str] = []
                    if not row.status.is_closed and candidate_actors(person, facts):
                        view = view or await self._view(row.escalation_id)
                        waiting = waiting_on(view, await self._allowed(person, facts))
                    return Item(row=row, relation=related, waiting=waiting)
                except (Unavailable, NotFound) as exc:
                    return exc

        found = await asyncio.gather(*(one(r) for r in listing.rows))
        items = [i for i in found if isinstance(i, Item)]
        return Listing(items=items, unreadable=sum(1 for i in found if isinstance(i, Unavailable)))

    async def waiting_for(self, caller: Caller) -> Listing:
        """The open escalations waiting for this person's action, soonest deadline first."""
        listing = await self.escalations(caller, open_only=True)
        return Listing(items=[i for i in listing.items if i.waiting], unreadable=listing.unreadable)


def _sentence(reason: str) -> str:
    """A rule's reason as a sentence: capital first letter, full stop."""
    reason = " ".join(reason.split())
    if not reason:
        return reason
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "?", "!")) else reason + "."
