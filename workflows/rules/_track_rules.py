"""Protocol language v2: the rules in force for an escalation's track, and what its child and concern allow.

A track may set its own total limit, reminder lead, bypass, CAFCASS and extension rules; where it sets
none, the protocol's apply. Tracks, categories and CAFCASS referral may be limited to children of some
statuses; entry points say at which stages a concern may start without a bypass. Pure functions over the
protocol snapshot, so each is microseconds.
"""

from __future__ import annotations

from schemas.escalation import EscalationState, RaiseConcern
from schemas.protocol import BypassRule, CafcassRule, EntryPoint, ExtensionRule, Protocol, Track
from workflows.rules._core import Refused, track_of


def total_days(s: EscalationState) -> int:
    """The formal process's total limit in working days for the escalation's track."""
    return track_of(s).total_formal_working_days or s.protocol.total_formal_working_days


def bypass_rule(s: EscalationState) -> BypassRule:
    return track_of(s).bypass or s.protocol.bypass


def cafcass_rule(s: EscalationState) -> CafcassRule:
    return track_of(s).cafcass or s.protocol.cafcass


def extension_rule(s: EscalationState) -> ExtensionRule:
    return track_of(s).extensions or s.protocol.extensions


def status_name(p: Protocol, status: str | None) -> str:
    return "not recorded" if status is None else p.child_statuses.get(status, status)


def _statuses(p: Protocol, keys: list[str]) -> str:
    return ", ".join(p.child_statuses.get(k, k) for k in keys)


def check_child(raise_: RaiseConcern, track: Track) -> None:
    """Refuse a concern whose child status or severity the protocol does not declare, or whose track or
    category is not for a child of that status. A status not given limits nothing (front doors that
    predate statuses); ``escalate raise`` requires one where the protocol declares them."""
    p = raise_.protocol
    status = raise_.child_status
    if status is not None and status not in p.child_statuses:
        known = ", ".join(p.child_statuses) or "none (leave it out)"
        raise Refused(f"unknown child status {status!r}; {p.authority} has: {known}")
    if raise_.severity is not None and raise_.severity not in p.severities:
        known = ", ".join(p.severities) or "none (leave it out)"
        raise Refused(f"unknown severity {raise_.severity!r}; {p.authority} has: {known}")
    if status is None:
        return
    if track.child_statuses and status not in track.child_statuses:
        raise Refused(
            f"the {track.name} track is for a child who is {_statuses(p, track.child_statuses)}; this child "
            f"is {status_name(p, status)}: choose another track or check the child's status"
        )
    limited = track.category_statuses.get(raise_.category)
    if limited and status not in limited:
        raise Refused(
            f"the category {raise_.category!r} is for a child who is {_statuses(p, limited)}; this child is "
            f"{status_name(p, status)}: choose another category"
        )


def check_cafcass_status(s: EscalationState) -> None:
    """A referral limited by status (a CAFCASS referral concerns a looked-after child) is refused for a
    child of another status."""
    allowed = cafcass_rule(s).child_statuses
    if allowed and s.child_status is not None and s.child_status not in allowed:
        raise Refused(
            f"a CAFCASS referral under the {s.protocol.authority} protocol concerns a child who is "
            f"{_statuses(s.protocol, allowed)}; this child is {status_name(s.protocol, s.child_status)}"
        )


def entry_points(track: Track) -> list[EntryPoint]:
    """The track's entry points; a track that names none starts at its first stage."""
    return list(track.entry_points) or [EntryPoint(stage=track.stages[0].key)]


def start_of(raise_: RaiseConcern, track: Track) -> tuple[int, EntryPoint | None]:
    """``start_index`` for a raise."""
    return start_index(track, raise_.category, raise_.severity, raise_.start_at_stage)


def start_index(
    track: Track, category: str, severity: str | None, start_at_stage: str | None
) -> tuple[int, EntryPoint | None]:
    """Where the concern starts, and the entry point that allows it there (None: a bypass is needed).

    Without ``start_at_stage``: the first entry point tied to this concern's category or severity, else
    the first open to any concern. With it: that stage, by an entry point the concern meets if there is
    one; otherwise a stage above the first entry point is a bypass."""
    met = [e for e in entry_points(track) if e.met_by(category, severity)]
    if not met:
        raise Refused(f"no stage of the {track.name} track is an entry point for this concern")
    if start_at_stage is None:
        chosen = next((e for e in met if e.conditional), met[0])
        return track.stage_index(chosen.stage), chosen
    try:
        target = track.stage_index(start_at_stage)
    except KeyError as exc:
        raise Refused(str(exc.args[0])) from None
    by = next((e for e in met if e.stage == start_at_stage), None)
    if by is not None:
        return target, by
    first = min(track.stage_index(e.stage) for e in met)
    if target < first:
        starts = ", ".join(track.stages[track.stage_index(e.stage)].name for e in met)
        raise Refused(
            f"{track.stages[target].name} is not a stage this concern may start at; it may start at: {starts}"
        )
    return target, None
