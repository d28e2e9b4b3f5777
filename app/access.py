"""Who may see an escalation, and in which roles a person may act on it (pure: no I/O).

A person sees an escalation of their own authority when they raised it, hold it now or held it, are copied
into it now or were, acted on it, or supervise it: a quality-assurance role (the protocol's
``breach_notify`` roles, told when the formal limit passes; the ``officer_cover_by`` roles, who may hand it
to a covering officer) or a manager above the holder (a role that
receives or is copied into a later stage of its track). Roles count only where the directory gives them
for the escalation's team or authority-wide. Anyone else is told the escalation does not exist.

What a visible person may *do* is never decided here: the workflow's ``available_actions`` query and the
rules' guards decide, asked once for each role the person holds for the escalation (``candidate_actors``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from app.identity import Person
from schemas.escalation import Actor, EscalationView, EventKind
from schemas.protocol import Protocol, Stage


class Facts(BaseModel):
    """What never changes about an escalation, from the input it was started with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalation_id: str
    protocol: Protocol
    track: str
    team: str | None
    service_area: str | None
    officer: Actor

    def stages(self) -> list[Stage]:
        return list(self.protocol.track(self.track).stages)

    def stage_index(self, key: str) -> int | None:
        keys = [s.key for s in self.stages()]
        return keys.index(key) if key in keys else None


class Relation(StrEnum):
    RAISED = "raised"
    HOLDS = "holds"
    COPIED = "copied"
    HELD = "held"
    ACTED = "acted"
    SUPERVISES = "supervises"


def _addressed(facts: Facts, stages: list[Stage]) -> tuple[set[str], set[str]]:
    to: set[str] = set()
    cc: set[str] = set()
    for stage in stages:
        t, c = stage.addressees(facts.service_area)
        to.update(t)
        cc.update(c)
    return to, cc


def relation_now(person: Person, facts: Facts, stage: str) -> Relation | None:
    """The person's relation to the escalation from its facts and its current stage alone (no timeline)."""
    if person.authority != facts.protocol.key:
        return None
    if person.id == facts.officer.id:
        return Relation.RAISED
    roles = set(person.roles_for(facts.team))
    stages = facts.stages()
    index = facts.stage_index(stage)
    if index is not None:
        to, cc = stages[index].addressees(facts.service_area)
        if roles & set(to):
            return Relation.HOLDS
        if roles & set(cc):
            return Relation.COPIED
        above_to, above_cc = _addressed(facts, stages[index + 1 :])
        if roles & (above_to | above_cc):
            return Relation.SUPERVISES
    if roles & set(facts.protocol.breach_notify):
        return Relation.SUPERVISES
    if roles & set(facts.protocol.officer_cover_by):  # the officer's managers, who may hand it over
        return Relation.SUPERVISES
    return None


def may_have_held(person: Person, facts: Facts, stage: str) -> bool:
    """Whether the person's roles were addressed by an earlier stage, so the timeline must say."""
    index = facts.stage_index(stage)
    earlier = facts.stages()[:index] if index is not None else facts.stages()
    to, cc = _addressed(facts, earlier)
    return bool(set(person.roles_for(facts.team)) & (to | cc))


def relation(person: Person, facts: Facts, view: EscalationView) -> Relation | None:
    """The person's relation to the escalation, or None: then they must be told it does not exist."""
    now = relation_now(person, facts, view.stage)
    if now is not None or person.authority != facts.protocol.key:
        return now
    return relation_from_past(
        person,
        facts,
        covering_officer=current_officer_id(view),
        acted=any(e.actor is not None and e.actor.id == person.id for e in view.timeline),
        entered={
            e.stage
            for e in view.timeline
            if e.stage and e.kind in (EventKind.RAISED, EventKind.SENT_TO_STAGE)
        },
    )


def relation_from_past(
    person: Person, facts: Facts, *, covering_officer: str | None, acted: bool, entered: set[str]
) -> Relation | None:
    """The relation ``relation_now`` cannot see, from the escalation's past (its timeline, or the record
    store's events): the covering officer it was last handed to, whether the person acted in it, and the
    stages it entered."""
    if covering_officer == person.id:  # a covering officer acts as the raising officer
        return Relation.RAISED
    if acted:
        return Relation.ACTED
    roles = set(person.roles_for(facts.team))
    to, cc = _addressed(facts, [s for s in facts.stages() if s.key in entered])
    if roles & to:
        return Relation.HELD
    if roles & cc:
        return Relation.COPIED
    return None


def current_officer_id(view: EscalationView) -> str | None:
    """The covering officer's id when the escalation was handed over (the latest hand-over), else None."""
    for e in reversed(view.timeline):
        if e.kind is EventKind.OFFICER_REPLACED:
            new = e.data.get("to")
            return str(new.get("id")) if isinstance(new, dict) else None
    return None


def candidate_actors(person: Person, facts: Facts) -> list[Actor]:
    """The actors this person may be in this escalation: the raising officer in their raising role, then
    each role the directory gives them for its team or authority-wide."""
    actors: list[Actor] = []
    if person.id == facts.officer.id:
        actors.append(facts.officer)
    for role in person.roles_for(facts.team):
        actor = Actor(id=person.id, role=role)
        if actor not in actors:
            actors.append(actor)
    return actors
