"""PracticeConcernWorkflow: a concern about an officer's own practice, investigated and, if unresolved,
escalated.

A thin type on ``workflows.process_shell`` over the pure rules of ``workflows.rules.practice_concern``:
started with ``RaisePracticeConcern``; updates ``give_feedback``, ``accept_feedback``, ``escalate`` and
``withdraw``; queries ``state`` and ``available_actions``. No feedback within the protocol's working days
escalates it by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import TypeAdapter

    from schemas.effects import EffectItem, Notify, Record
    from schemas.escalation import Actor
    from schemas.process_models import (
        PRACTICE_ACTIONS,
        PracticeAction,
        PracticeState,
        ProcessOutcome,
        ProcessView,
        RaisePracticeConcern,
    )
    from workflows.process_shell import ProcessShell, decode
    from workflows.rules import practice_concern as rules
    from workflows.rules._process_core import ProcessDecision

WORKFLOW_TYPE = "PracticeConcernWorkflow"
_ACTIONS: TypeAdapter[Any] = TypeAdapter(PracticeAction)


@workflow.defn(name=WORKFLOW_TYPE)
class PracticeConcernWorkflow(ProcessShell[PracticeState]):
    """One concern about an officer's practice, from referral to resolved, concluded or withdrawn."""

    @workflow.init
    def __init__(self, raise_: RawValue) -> None:
        self._set_up(raise_, RaisePracticeConcern)

    @workflow.run
    async def run(self, raise_: RawValue) -> ProcessOutcome:
        return await self._run()

    def _rule_start(self, raw: Any, now: datetime) -> ProcessDecision[PracticeState]:
        return rules.start(raw, now)

    def _rule_handle(
        self, state: PracticeState, action: Any, now: datetime
    ) -> ProcessDecision[PracticeState]:
        return rules.handle(state, action, now)

    def _rule_timer(self, state: PracticeState, now: datetime) -> ProcessDecision[PracticeState]:
        return rules.on_timer(state, now)

    def _rule_decode(self, name: str, args: Sequence[RawValue]) -> Any:
        return decode(_ACTIONS, PRACTICE_ACTIONS, name, args)

    def _rule_view(self, state: PracticeState, now: datetime) -> ProcessView:
        return rules.view(state, now)

    def _rule_actions(self, state: PracticeState, actor: Actor, now: datetime) -> list[str]:
        return rules.available_actions(state, actor)

    def _rule_item(self, state: PracticeState, effect: Record | Notify, run_id: str) -> EffectItem:
        return rules.effect_item(state, effect, run_id)
