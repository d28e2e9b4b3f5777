"""Who may see the dashboard and reports, and of which teams (pure: no I/O).

The people who supervise escalations, as ``app.access`` has them: the quality-assurance roles (the
protocol's ``breach_notify`` roles, and the ``officer_cover_by`` roles, who may hand an escalation to a
covering officer) and the managers above the first stage (roles that receive or are copied into a later
stage of any track). A role held authority-wide shows every team of the person's authority; held for some
teams, those teams only. Everyone else is refused. Nobody sees another authority's escalations.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.identity import Person
from schemas.protocol import Protocol


class Supervision(BaseModel):
    """What a supervisor sees: their authority, and its teams they supervise (None: every team)."""

    model_config = ConfigDict(frozen=True)

    authority: str
    teams: frozenset[str] | None
    roles: tuple[str, ...]


def supervising_roles(protocol: Protocol) -> set[str]:
    """The protocol's quality-assurance roles and the managers above its first stages."""
    roles = set(protocol.breach_notify) | set(protocol.officer_cover_by)
    for track in protocol.tracks:
        for stage in track.stages[1:]:
            to, cc = stage.addressees(None)
            roles.update(to)
            roles.update(cc)
            for route in stage.routes:
                roles.update(route.to)
                roles.update(route.cc)
    return roles


def supervision(person: Person, protocol: Protocol) -> Supervision | None:
    """What ``person`` may see on the dashboard, or None if they supervise nothing here."""
    if person.authority != protocol.key:
        return None
    wanted = supervising_roles(protocol)
    held = [h for h in person.holdings if h.role in wanted]
    if not held:
        return None
    roles = tuple(dict.fromkeys(h.role for h in held))
    if any(h.team is None for h in held):
        return Supervision(authority=person.authority, teams=None, roles=roles)
    return Supervision(
        authority=person.authority, teams=frozenset(h.team for h in held if h.team), roles=roles
    )
