"""DeemedAgreementWorkflow: review decisions that stand unless the team manager disagrees in time.

A thin type on ``workflows.process_shell`` over the pure rules of ``workflows.rules.deemed_agreement``:
started with ``SendDecisions``; updates ``agree``, ``disagree`` and ``withdraw``; queries ``state`` and
``available_actions``. A disagreement in time starts the informal resolution as a child
``EscalationWorkflow`` and ends this one (closed, outcome ``disagreed``, result's ``linked`` its id).
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
        DECISIONS_ACTIONS,
        DecisionsAction,
        DecisionsState,
        ProcessOutcome,
        ProcessView,
        SendDecisions,
    )
    from workflows.process_shell import ProcessShell, decode
    from workflows.rules import deemed_agreement as rules
    from workflows.rules._process_core import ProcessDecision

WORKFLOW_TYPE = "DeemedAgreementWorkflow"
_ACTIONS: TypeAdapter[Any] = TypeAdapter(DecisionsAction)


@workflow.defn(name=WORKFLOW_TYPE)
class DeemedAgreementWorkflow(ProcessShell[DecisionsState]):
    """One review's decisions, from sending to agreed, deemed agreed, disagreed or withdrawn."""

    @workflow.init
    def __init__(self, send: RawValue) -> None:
        self._set_up(send, SendDecisions)

    @workflow.run
    async def run(self, send: RawValue) -> ProcessOutcome:
        return await self._run()

    def _rule_start(self, raw: Any, now: datetime) -> ProcessDecision[DecisionsState]:
        return rules.start(raw, now)

    def _rule_handle(
        self, state: DecisionsState, action: Any, now: datetime
    ) -> ProcessDecision[DecisionsState]:
        return rules.handle(state, action, now)

    def _rule_timer(self, state: DecisionsState, now: datetime) -> ProcessDecision[DecisionsState]:
        return rules.on_timer(state, now)

    def _rule_decode(self, name: str, args: Sequence[RawValue]) -> Any:
        return decode(_ACTIONS, DECISIONS_ACTIONS, name, args)

    def _rule_view(self, state: DecisionsState, now: datetime) -> ProcessView:
        return rules.view(state, now)

    def _rule_actions(self, state: DecisionsState, actor: Actor, now: datetime) -> list[str]:
        return rules.available_actions(state, actor, now)

    def _rule_item(self, state: DecisionsState, effect: Record | Notify, run_id: str) -> EffectItem:
        return rules.effect_item(state, effect, run_id)
