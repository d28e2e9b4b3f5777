"""Sample escalations for a local service: ``escalate up --with-sample-data``.

A few escalations at different stages of different authorities' protocols, staffed from the sample
directories (team-a). Loading twice changes nothing: each has a fixed id and a start is skipped if it exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities.directory import load_directory_file
from activities.settings import Settings
from protocols import load_protocol
from schemas.escalation import (
    Actor,
    Bypass,
    Concern,
    EscalationView,
    EventKind,
    RecordConsultation,
    RequestExtension,
    Respond,
)
from starter.escalations import DifferentRequest, prepare, raise_once
from workflows.escalation import EscalationWorkflow

TEAM = "team-a"
"""The sample directories (protocols/directories) fill every role for team-a and team-b."""


def person(authority: str, role: str) -> Actor:
    """Who holds ``role`` for the sample team in ``authority``'s sample directory."""
    directory = load_directory_file(Settings().directory_dir / f"{authority}.yaml")
    held = [a for a in directory.assignments if a.role == role and a.team in (TEAM, None)]
    held.sort(key=lambda a: a.team is None)  # the team's holder before an authority-wide one
    return Actor(id=held[0].person, role=role)


def _concern(summary: str) -> Concern:
    return Concern(
        summary=summary,
        impact_on_child="Plans for the child are drifting while this is unresolved.",
        requested_action="Agree the actions and dates needed, and confirm them in writing.",
    )


async def _start(
    client: Client, authority: str, ref: str, summary: str, **extra: Any
) -> WorkflowHandle[Any, Any] | None:
    protocol = load_protocol(authority)
    track = protocol.tracks[0]
    officer = person(authority, track.officer_roles[0])
    raise_ = prepare(
        authority=authority,
        track=track.key,
        category=track.categories[0],
        child_ref=ref,
        sequence=1,
        team=TEAM,
        officer=officer,
        concern=_concern(summary),
        **extra,
    )
    try:
        raised = await raise_once(client, raise_)
    except DifferentRequest:  # an older sample with the same id
        return None
    return None if raised.existing else raised.handle  # loaded before: leave it as it is


async def _settled(handle: WorkflowHandle[Any, Any]) -> EscalationView:
    """The state once the workflow has carried out its start (deadline computed, notices sent)."""
    for _ in range(600):
        view: EscalationView = await handle.query(EscalationWorkflow.state)
        if not view.busy and view.timeline and view.timeline[-1].kind is not EventKind.RAISED:
            return view
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{handle.id} did not settle within a minute")


async def load_sample_data(client: Client, say: Callable[[str], None] = print) -> int:
    """Start the sample escalations; returns how many were new."""
    started = 0
    steps: list[
        tuple[str, str, str, dict[str, Any], Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]] | None]
    ] = []

    # Gloucestershire: just raised, at the informal stage.
    steps.append(
        ("gloucestershire", "SAMPLE01", "The care plan has not been reviewed since the move.", {}, None)
    )

    # Waltham Forest: bypassed straight to the head of service after the line-manager discussion.
    wf = load_protocol("waltham-forest").tracks[0]
    target = wf.stages[2]
    wf_officer = person("waltham-forest", wf.officer_roles[0])
    consultations = []
    if target.entry_gate:
        consultations.append(
            RecordConsultation(
                actor=wf_officer,
                stage=target.key,
                with_role=target.entry_gate.with_roles[0],
                summary="Discussed; agreed to go to the head of service.",
            )
        )
    bypass = Bypass(
        actor=wf_officer,
        to_stage=target.key,
        reason="Statutory visits missed for two months.",
        discussed_with=next(iter(load_protocol("waltham-forest").bypass.prior_discussion_with), None),
    )
    steps.append(
        (
            "waltham-forest",
            "SAMPLE02",
            "Statutory visits have not happened.",
            {"start_at_stage": target.key, "start_bypass": bypass, "consultations": consultations},
            None,
        )
    )

    # Wigan: the team manager has answered; the IRO is to decide.
    async def wigan_answer(handle: WorkflowHandle[Any, Any]) -> None:
        stage = load_protocol("wigan").tracks[0].stages[0]
        await handle.execute_update(
            "respond",
            Respond(
                actor=person("wigan", stage.to[0]), answer="A plan is agreed: visits weekly from Monday."
            ),
        )

    steps.append(("wigan", "SAMPLE03", "No plan for contact with siblings.", {}, wigan_answer))

    # Dudley: the manager has asked for more time; the IRO is to decide.
    async def dudley_extension(handle: WorkflowHandle[Any, Any]) -> None:
        view = await _settled(handle)
        stage = load_protocol("dudley").tracks[0].stages[0]
        assert view.deadline_date is not None, "Dudley's first stage has a deadline"
        await handle.execute_update(
            "request_extension",
            RequestExtension(
                actor=person("dudley", stage.to[0]),
                until=view.deadline_date + timedelta(days=3),
                reason="Waiting for the health assessment.",
            ),
        )

    steps.append(("dudley", "SAMPLE04", "Health assessment overdue.", {}, dudley_extension))

    for authority, ref, summary, extra, then in steps:
        handle = await _start(client, authority, ref, summary, **extra)
        if handle is None:
            say(f"sample {authority}-{ref}-0001 already loaded")
            continue
        if then is not None:
            await then(handle)
        started += 1
        say(f"sample {handle.id} loaded")
    return started
