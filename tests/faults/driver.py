"""Escalations driven through many actions by the client's updates, while components fail underneath.

Each escalation is raised with ``starter.escalations.prepare``/``raise_concern`` and then takes seeded
random actions among those its people may take now (the ``available_actions`` query): answers, requests
for more time and decisions on them, escalations, consultations and meetings where a stage needs them,
notes and views (now and then a note at the same time as another action); it ends with ``accept`` or
``withdraw``. Every update has a fixed update id, so sending it again after the server or the worker went
away cannot apply it twice (Temporal returns the first outcome); an update refused as ``Busy`` is sent
again. Every text carries a tag (``[e3.a7]``) by which the checks find each applied action in the
timeline exactly once, and no refused one."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from protocols import load_protocol
from schemas.escalation import (
    Accept,
    ActionResult,
    Actor,
    AddNote,
    Concern,
    DecideExtension,
    Escalate,
    EscalationView,
    RecordConsultation,
    RecordMeeting,
    RecordViews,
    RequestExtension,
    Respond,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER, GateKind
from starter.escalations import prepare, raise_concern
from starter.sample_data import TEAM, person
from workflows.escalation import BUSY, REFUSED, EscalationWorkflow

__all__ = ["AUTHORITIES", "Driven", "DriverStuck", "EscalationDriver", "Progress"]

AUTHORITIES = [
    ("gloucestershire", "iro-cp"),
    ("waltham-forest", "iro"),
    ("wigan", "iro"),
    ("dudley", "iro-cp"),
    ("waltham-forest-fwi", "iro"),
    ("wigan", "cp"),
]
"""(authority, track) pairs the escalations cycle through: gates, meetings and agreements among them."""

TERMINAL = ("accept", "withdraw")
WEIGHTS = {
    "add_note": 2.0,
    "record_views": 1.0,
    "respond": 2.0,
    "request_extension": 1.5,
    "decide_extension": 3.0,
    "escalate": 1.5,
    "record_consultation": 3.0,
    "record_meeting": 3.0,
}
"""The actions driven (and how often, where several are open); the rest are left to other tests."""
CONCURRENT_NOTE = 0.25
"""How often a note is sent at the same time as the action: one of the two may be refused as ``Busy``."""
LONDON = ZoneInfo("Europe/London")
QUERY_TIMEOUT = timedelta(seconds=15)
UPDATE_TIMEOUT = timedelta(seconds=30)

T = TypeVar("T")


class DriverStuck(RuntimeError):
    """A call kept failing past the overall deadline: the escalation (or a component) is stuck."""


@dataclass
class Progress:
    """Shared by the drivers and the fault loop: how far the drive has got."""

    applied: int = 0
    refused: int = 0
    busy: int = 0
    transient: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def bump(self) -> None:
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


@dataclass
class Driven:
    """What one escalation was sent: the tags of the actions applied and refused."""

    escalation_id: str
    authority: str
    applied: dict[str, str] = field(default_factory=dict)
    """tag -> action name, for every action the escalation accepted."""
    refused: dict[str, str] = field(default_factory=dict)
    """tag -> the reason, for every action the escalation refused."""
    closed_by: str = ""


class EscalationDriver:
    """One escalation, from raising to accepted or withdrawn, through ``actions`` actions."""

    def __init__(
        self,
        client: Client,
        number: int,
        *,
        seed: int,
        actions: int,
        progress: Progress,
        deadline: float,
        prefix: str = "F",
    ) -> None:
        self.client = client
        self.number = number
        self.rng = random.Random(f"{seed}/{number}")
        self.actions = actions
        self.progress = progress
        self.deadline = deadline
        self.authority, self.track = AUTHORITIES[number % len(AUTHORITIES)]
        self.protocol = load_protocol(self.authority)
        track = self.protocol.track(self.track)
        self.officer = person(self.authority, track.officer_roles[0])
        self.child_ref = f"{prefix}{seed % 10**6:06d}{number:04d}"
        self.raise_ = prepare(
            authority=self.authority,
            track=self.track,
            category=track.categories[0],
            child_ref=self.child_ref,
            sequence=1,
            team=TEAM,
            officer=self.officer,
            concern=Concern(
                summary=f"Fault drive {number}: the care plan has not been reviewed.",
                impact_on_child="Plans for the child are drifting.",
                requested_action="Review the plan and confirm it in writing.",
            ),
        )
        self.driven = Driven(self.raise_.escalation_id, self.authority)
        self.handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(self.raise_.escalation_id)

    # -- retries ------------------------------------------------------------------------------------------

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it gets through a component's outage, or DriverStuck past the deadline."""
        pause = 0.2
        while True:
            try:
                return await call()
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, WorkflowQueryFailedError) as exc:
                last: BaseException = exc
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if not (isinstance(cause, ApplicationError) and cause.type == BUSY):
                    raise
                self.progress.busy += 1
                last = exc
            else:  # pragma: no cover - returned above
                raise AssertionError
            self.progress.transient += 1
            if time.monotonic() > self.deadline:
                raise DriverStuck(f"{self.raise_.escalation_id}: {what} kept failing: {last!r}") from last
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def view(self) -> EscalationView:
        """The state once the escalation is not mid-change."""
        while True:
            view: EscalationView = await self._retrying(
                "state", lambda: self.handle.query(EscalationWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
            )
            if not view.busy:
                return view
            if time.monotonic() > self.deadline:
                raise DriverStuck(f"{self.raise_.escalation_id} stayed busy")
            await asyncio.sleep(0.05)

    async def _available(self, actor: Actor) -> list[str]:
        return await self._retrying(
            "available_actions",
            lambda: self.handle.query(
                "available_actions", actor, result_type=list[str], rpc_timeout=QUERY_TIMEOUT
            ),
        )

    async def _send(self, tag: str, name: str, action: BaseModel) -> None:
        update_id = f"{self.raise_.escalation_id}/{tag}"

        async def call() -> ActionResult:
            result: ActionResult = await self.handle.execute_update(
                name, action, id=update_id, result_type=ActionResult, rpc_timeout=UPDATE_TIMEOUT
            )
            return result

        try:
            await self._retrying(name, call)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if not (isinstance(cause, ApplicationError) and cause.type == REFUSED):
                raise
            self.driven.refused[tag] = cause.message
            self.progress.refused += 1
        else:
            self.driven.applied[tag] = name
            self.progress.applied += 1
        self.progress.bump()

    # -- the drive ----------------------------------------------------------------------------------------

    async def run(self) -> Driven:
        async def start() -> None:
            # An earlier attempt may have started it before the connection broke.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await raise_concern(self.client, self.raise_)

        await self._retrying("start", start)
        for step in range(self.actions):
            view = await self.view()
            tag = f"e{self.number}.a{step}"
            choice = await self._choose(view, tag, terminal=False)
            if choice is None:
                continue
            if self.rng.random() < CONCURRENT_NOTE:
                note = AddNote(actor=self.officer, text=f"[{tag}n] fault drive note sent alongside")
                await asyncio.gather(self._send(tag, *choice), self._send(f"{tag}n", "add_note", note))
            else:
                await self._send(tag, *choice)
        view = await self.view()
        tag = f"e{self.number}.end"
        choice = await self._choose(view, tag, terminal=True)
        if choice is not None:
            await self._send(tag, *choice)
            self.driven.closed_by = choice[0]
        return self.driven

    def _people(self, view: EscalationView) -> list[Actor]:
        """Who may act now: the officer, the stage's holders and copied, the next stage's gatekeepers."""
        roles = [*view.held_by, *view.copied]
        stages = self.protocol.track(self.track).stages
        for stage in stages[view.stage_number :]:
            roles += [r for r in stage.escalated_by if r != RAISING_OFFICER]
            if stage.entry_gate:
                roles += stage.entry_gate.with_roles
        people = [self.officer]
        for role in dict.fromkeys(roles):
            if role != RAISING_OFFICER:
                people.append(person(self.authority, role))
        return people

    async def _choose(
        self, view: EscalationView, tag: str, *, terminal: bool
    ) -> tuple[str, BaseModel] | None:
        options: list[tuple[str, Actor]] = []
        for actor in self._people(view):
            for name in await self._available(actor):
                if (name in TERMINAL) == terminal and (terminal or name in WEIGHTS):
                    options.append((name, actor))
        if not options:
            return None
        if terminal:
            options.sort(key=lambda o: (TERMINAL.index(o[0]), o[1].id))
            name, actor = options[0]
        else:
            name, actor = self.rng.choices(options, weights=[WEIGHTS[n] for n, _ in options])[0]
        return name, self._payload(name, actor, view, tag)

    def _payload(self, name: str, actor: Actor, view: EscalationView, tag: str) -> BaseModel:
        text = f"[{tag}] fault drive {name}"
        today = datetime.now(LONDON).date()
        if name == "respond":
            return Respond(actor=actor, answer=f"{text}: the plan is being reviewed.")
        if name == "request_extension":
            base = view.deadline_date or today
            return RequestExtension(
                actor=actor, until=base + timedelta(days=self.rng.randint(1, 6)), reason=text
            )
        if name == "decide_extension":
            pending = view.pending_extension
            within = pending is not None and (
                view.total_deadline_date is None or pending.until <= view.total_deadline_date
            )
            return DecideExtension(actor=actor, approve=within and self.rng.random() < 0.6, reason=text)
        if name == "escalate":
            return Escalate(actor=actor, reason=f"{text}: the answer does not address the concern.")
        if name == "record_consultation":
            return self._consultation(actor, view, text)
        if name == "record_meeting":
            attendees = ["the officer", "the manager"]
            return RecordMeeting(actor=actor, held_on=today, attendees=attendees, outcome=text)
        if name == "record_views":
            whose: list[Literal["child", "parent", "carer"]] = ["child", "parent", "carer"]
            return RecordViews(actor=actor, whose=self.rng.choice(whose), views=text)
        if name == "accept":
            return Accept(actor=actor, note=text)
        if name == "withdraw":
            return Withdraw(actor=actor, reason=text)
        return AddNote(actor=actor, text=text)

    def _consultation(self, actor: Actor, view: EscalationView, text: str) -> RecordConsultation:
        stages = self.protocol.track(self.track).stages
        gated = next(s for s in stages[view.stage_number :] if s.entry_gate)
        assert gated.entry_gate is not None
        gate = gated.entry_gate
        with_role = actor.role if actor.role in gate.with_roles else gate.with_roles[0]
        agreed = True if gate.kind is GateKind.AGREEMENT else None
        return RecordConsultation(
            actor=actor, stage=gated.key, with_role=with_role, agreed=agreed, summary=text
        )


def tags_in(text: str) -> list[str]:
    """The drive's tags (``e3.a7``) in a timeline entry's text."""
    out = []
    start = 0
    while (i := text.find("[e", start)) != -1:
        j = text.find("]", i)
        if j == -1:
            break
        out.append(text[i + 1 : j])
        start = j + 1
    return out
