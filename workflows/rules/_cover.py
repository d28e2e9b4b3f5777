"""Cover and delegation, and recipients outside the directory.

* **Cover for an absent recipient**: the protocol's ``cover`` names, for a recipient role, the role that
  covers it while its holder is marked absent in the directory. The notifier sends the notice to the cover
  role's holder and reports it (``Covered``); ``note_covers`` records it once per stage and role, tells the
  officer, and from then on the cover role may act for the absent role at that stage (``_need_recipient``).
* **A covering officer**: ``replace_officer``, by the officer or a role in ``officer_cover_by`` (their
  manager, QA), hands the escalation to another officer of the track, with a reason; from then on the
  covering officer acts as the raising officer and is told of everything.
* **External recipients**: a stage may go to a role in ``external_roles`` (a partner agency's manager),
  whose holder's name and address are given at raise (``external_contacts``) and mailed like staff; the
  officer records their answer on their behalf (``respond`` with ``on_behalf_of``).
"""

from __future__ import annotations

from schemas.effects import Covered
from schemas.escalation import (
    Actor,
    Cover,
    EscalationState,
    EventKind,
    ExternalContact,
    RaiseConcern,
    ReplaceOfficer,
    Respond,
)
from schemas.protocol import RAISING_OFFICER, Protocol, Track
from schemas.wording import with_article
from workflows.rules._core import (
    Refused,
    _Change,
    _is_officer,
    _names,
    _refuse_closed,
    addressees,
    current_stage,
    track_of,
)

# --- cover for an absent recipient ----------------------------------------------------------------------


def note_covers(c: _Change, covered: list[Covered]) -> None:
    """Record each newly reported cover (one per stage and role) and tell the officer."""
    s = c.s
    for cover in covered:
        entry = s.timeline[cover.seq - 1] if 0 < cover.seq <= len(s.timeline) else None
        stage = entry.stage if entry is not None and entry.stage else current_stage(s).key
        if any(x.stage == stage and x.role == cover.role for x in s.covers):
            continue
        if s.protocol.cover.get(cover.role) != cover.cover_role:
            continue  # not what this escalation's protocol says: ignore rather than trust it
        s.covers = [
            *s.covers,
            Cover(stage=stage, role=cover.role, cover_role=cover.cover_role, until=cover.until),
        ]
        until = f" until {cover.until:%A %-d %B %Y}" if cover.until else ""
        p = s.protocol
        c.event(
            EventKind.COVERED,
            f"The {p.role_name(cover.role)} is absent{until}: notices for them go to their cover, the "
            f"{p.role_name(cover.cover_role)}, who may act for them at this stage.",
            to=[RAISING_OFFICER],
            data={
                "role": cover.role,
                "cover_role": cover.cover_role,
                "until": cover.until.isoformat() if cover.until else None,
            },
        )
        c.outcome = f"{cover.role} covered by {cover.cover_role}"


# --- a covering officer ---------------------------------------------------------------------------------


def _guard_replace_officer(s: EscalationState, actor: Actor) -> None:
    _refuse_closed(s)
    allowed = s.protocol.officer_cover_by
    if _is_officer(s, actor) or actor.role in allowed:
        return
    others = f" or {_names(s, allowed)}" if allowed else ""
    raise Refused(
        f"only the raising officer ({s.officer.id}){others} may hand the escalation to a covering officer"
    )


def _apply_replace_officer(c: _Change, a: ReplaceOfficer) -> None:
    s = c.s
    new, old = a.new_officer, s.officer
    track = track_of(s)
    if new.id == old.id:
        raise Refused(f"new_officer: {new.id} already holds this escalation; name the covering officer")
    if new.role not in track.officer_roles:
        raise Refused(
            f"new_officer: {with_article(s.protocol.role_name(new.role))} cannot hold an escalation on the "
            f"{track.name} track; its officers are: {_names(s, track.officer_roles)}"
        )
    s.officers_before = [*s.officers_before, old]
    s.officer = new
    c.event(
        EventKind.OFFICER_REPLACED,
        f"{new.id} ({s.protocol.role_name(new.role)}) covers for {old.id} and acts as the raising officer "
        f"from now on. Reason: {a.reason}",
        actor=a.actor,
        to=[RAISING_OFFICER],
        data={"from": old.model_dump(), "to": new.model_dump()},
    )
    c.outcome = f"{new.id} is now the officer for this escalation"


# --- recipients outside the directory -------------------------------------------------------------------


def check_external_contacts(p: Protocol, track: Track, raise_: RaiseConcern, start: int) -> None:
    """Each external role the track's stages (from ``start``) address has its holder given, and nothing
    else is given."""
    given = [x.role for x in raise_.external_contacts]
    for role in given:
        if role not in p.external_roles:
            known = ", ".join(p.external_roles) or "none"
            raise Refused(
                f"external_contacts: {role!r} is not one of the {p.authority} protocol's external roles "
                f"({known})"
            )
    if len(set(given)) != len(given):
        raise Refused("external_contacts: give each external role once")
    for stage in track.stages[start:]:
        to, cc = stage.addressees(raise_.service_area)
        for role in [*to, *cc, *stage.told_in_advance]:
            if role in p.external_roles and role not in given:
                raise Refused(
                    f"{stage.name} goes to {with_article(p.role_name(role))}, who is outside the "
                    f"{p.authority} directory: give their name and e-mail address in external_contacts "
                    f"(role {role!r})"
                )


def external_recipients(s: EscalationState) -> list[str]:
    """The current stage's recipients who are outside the directory."""
    to, _ = addressees(s)
    return [r for r in to if r in s.protocol.external_roles]


def contact(s: EscalationState, role: str) -> ExternalContact | None:
    return next((x for x in s.external_contacts if x.role == role), None)


def answer_on_behalf(s: EscalationState, a: Respond) -> str | None:
    """Check an answer recorded on behalf of a recipient outside the directory; the words that begin it
    (None: the answer is the actor's own)."""
    external = external_recipients(s)
    if a.on_behalf_of is None:
        to, _ = addressees(s)
        if external and _is_officer(s, a.actor) and a.actor.role not in to:
            raise Refused(
                "to record the answer of a recipient outside the directory, give on_behalf_of: "
                f"{', '.join(external)}"
            )
        return None
    if not _is_officer(s, a.actor):
        raise Refused(
            "only the raising officer records an answer on behalf of a recipient outside the directory"
        )
    if a.on_behalf_of not in external:
        known = ", ".join(external) or "none at this stage"
        raise Refused(
            f"on_behalf_of: {a.on_behalf_of!r} is not a recipient outside the directory here ({known})"
        )
    holder = contact(s, a.on_behalf_of)
    who = s.protocol.role_name(a.on_behalf_of)
    if holder is not None:
        org = f", {holder.organisation}" if holder.organisation else ""
        who = f"{holder.name} ({who}{org})"
    return f"Answer from {who}, recorded by the officer on their behalf: "
