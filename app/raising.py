"""Raising a concern through the application layer: the web form's fields or the command line's prepared
input, as the signed-in officer, idempotent on its request id."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from temporalio.service import RPCError

from app.core import ApplicationCore, Caller, TimescaleRefused, _sentence
from app.errors import AppError, BadInput, NotFound, Refused, Unavailable
from app.identity import Person
from app.inputs import (
    Label,
    RaiseRequest,
    build_action,
    consultation_at_raise,
    raise_request,
    statuses_known,
)
from protocols import ProtocolError, load_protocol
from schemas.escalation import (
    COLLECTIVE_REF,
    Actor,
    Bypass,
    Collective,
    Concern,
    EscalationView,
    RaiseConcern,
    Status,
)
from schemas.protocol import EntryPoint, Protocol
from starter.escalations import BadInput as RaiseBadInput
from starter.escalations import Raised, prepare, raise_once
from workflows import rules


class Raising(ApplicationCore):
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
            self._permit(caller, "raise")
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
            self.audit_outcome(caller, event, None, failure)
            raise failure from None
        except (rules.Refused, KeyError) as exc:
            failure = Refused(_sentence(exc.reason if isinstance(exc, rules.Refused) else str(exc.args[0])))
            self.audit_outcome(caller, event, None, failure)
            raise failure from None
        except RPCError:
            failure = Unavailable("The escalation service did not answer: try again in a minute.")
            self.audit_outcome(caller, event, None, failure)
            raise failure from None
        except AppError as exc:
            self.audit_outcome(caller, event, None, exc)
            raise
        self.audit_outcome(caller, "raise", raise_.escalation_id, role=role)
        if form.timescale_working_days is not None and not raised.existing:
            try:
                await self._shorten(raise_.escalation_id, officer, form, label)
            except AppError as exc:
                self.audit_outcome(caller, "set_timescale", raise_.escalation_id, exc, role=role)
                if isinstance(exc, TimescaleRefused):
                    raise
                raise TimescaleRefused(raise_.escalation_id, exc.message) from None
            self.audit_outcome(caller, "set_timescale", raise_.escalation_id, role=role)
        return raised.handle.id

    async def raise_prepared(self, caller: Caller, raise_: RaiseConcern) -> Raised:
        """Raise a concern a front door prepared in full (``starter.escalations.prepare``: the command
        line's every option), as the caller: they must be its officer, in a role the directory gives them
        for its team. Idempotent on its id, as ``raise_once``."""
        person = caller.person
        officer = raise_.officer
        try:
            self._permit(caller, "raise")
            if person.authority != raise_.protocol.key or person.id != officer.id:
                raise Refused("You can raise a concern only as yourself, in your own authority.")
            if officer.role not in person.roles_for(raise_.team):
                raise Refused(
                    f"The staff directory does not give you the role {officer.role} for that team, so you "
                    "cannot raise in it."
                )
            raised = await raise_once(self.client, raise_, self.task_queue)
        except RaiseBadInput as exc:
            failure: AppError = BadInput({"form": _sentence(exc.reason)})
            self.audit_outcome(caller, "raise", raise_.escalation_id, failure, role=officer.role)
            raise failure from None
        except RPCError:
            failure = Unavailable("The escalation service did not answer: try again in a minute.")
            self.audit_outcome(caller, "raise", raise_.escalation_id, failure, role=officer.role)
            raise failure from None
        except AppError as exc:
            self.audit_outcome(caller, "raise", raise_.escalation_id, exc, role=officer.role)
            raise
        self.audit_outcome(caller, "raise", raise_.escalation_id, role=officer.role)
        return raised

    async def settled(
        self, caller: Caller, escalation_id: str, timed: bool, within_s: float
    ) -> EscalationView:
        """A just-raised escalation's state once its first stage is sent (its deadline placed when
        ``timed``), or whatever there is after ``within_s``; one read in the audit log."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within_s
        try:
            self._permit(caller, "raise")
            facts = await self.facts(escalation_id)
            if facts is None or facts.officer.id != caller.person.id:
                raise NotFound(escalation_id)
            while True:
                view = await self._view(escalation_id)
                ready = not view.busy and (view.deadline_date is not None or not timed)
                if ready or view.status is not Status.AWAITING_RESPONSE or loop.time() > give_up:
                    break
                await asyncio.sleep(0.1)
        except AppError as exc:
            self.audit_outcome(caller, "read", escalation_id, exc)
            raise
        self.audit_outcome(caller, "read", escalation_id)
        return view

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
