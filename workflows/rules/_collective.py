"""Collective alerts (seed 001 section 4), pure: what the protocol's ``collective_alerts`` allows at raise.

A collective alert is an escalation like any other once raised: the same ladder, deadlines and notices. At
raise it differs: it names a theme and the children (or carers) it is about instead of one child (its
child reference is ``COLLECTIVE``, so nothing goes on any child's file), it is led by an officer of
``raised_by``, and it starts at the level chosen after consulting one of ``consult`` (no bypass is needed
for that level). An escalation about one child may name the collective alert it belongs to (``part_of``).
"""

from __future__ import annotations

from datetime import datetime

from schemas.escalation import COLLECTIVE_REF, RaiseConcern
from schemas.protocol import EntryPoint, Track
from workflows.rules._core import Refused, london_today


def check_collective(raise_: RaiseConcern, track: Track, target: int, now: datetime) -> EntryPoint | None:
    """For a collective alert: the entry point its chosen level makes of ``target``; ``Refused`` naming
    what the protocol does not allow. For an escalation about one child: its link, checked; None."""
    p = raise_.protocol
    c = raise_.collective
    if c is None:
        if raise_.child_ref.upper() == COLLECTIVE_REF:
            raise Refused(f"{COLLECTIVE_REF} is the reference of collective alerts: raise it as one")
        if raise_.part_of is not None and not raise_.part_of.startswith(f"{p.key}-{COLLECTIVE_REF}-"):
            raise Refused(f"{raise_.part_of} is not a collective alert of {p.authority}")
        return None
    rule = p.collective_alerts
    if rule is None:
        raise Refused(
            f"the {p.authority} protocol has no collective alerts (its 'collective_alerts' section)"
        )
    if raise_.part_of is not None:
        raise Refused("a collective alert belongs to no other collective alert: leave part_of out")
    if raise_.child_ref != COLLECTIVE_REF:
        raise Refused(
            f"a collective alert is about several children: its child reference is {COLLECTIVE_REF}"
        )
    if raise_.officer.role not in rule.raised_by:
        raise Refused(f"collective alerts are led by {p.role_names(rule.raised_by)}")
    if c.consulted_with not in rule.consult:
        raise Refused(
            f"the level of a collective alert is chosen after consulting {p.role_names(rule.consult)}"
        )
    if c.consulted_on > london_today(now):
        raise Refused("the consultation's date is in the future: give the day it was held")
    if len(c.subjects) > rule.max_subjects:
        raise Refused(f"a collective alert names at most {rule.max_subjects} children or carers")
    repeated = sorted({r for r in c.subjects if c.subjects.count(r) > 1})
    if repeated:
        raise Refused(f"each child or carer is named once; repeated: {', '.join(repeated)}")
    return EntryPoint(stage=track.stages[target].key, note="the level chosen for a collective alert")


def collective_data(raise_: RaiseConcern) -> dict[str, object]:
    """What the raising event records of a collective alert or of its link."""
    c = raise_.collective
    if c is None:
        return {"part_of": raise_.part_of} if raise_.part_of else {}
    return {
        "collective": True,
        "theme": c.theme,
        "subjects": list(c.subjects),
        "consulted_with": c.consulted_with,
        "consulted_on": c.consulted_on.isoformat(),
        "consultation": c.consultation,
    }
