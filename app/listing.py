"""Lists of escalations as a person may see them: the lines, and the list read from the record store.

The record store's list (``visible_from_records``) answers from two SQL queries whatever the number of
escalations: the rows with their facts (filtered and sorted in the database), then, only for rows the
person's roles do not explain, their part in the event log (acted in it, held an earlier stage, covers
its officer). The facts' protocol is the authority's current file: a stage a later version renamed
shows as ``?`` and is judged on the roles alone.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from pydantic import BaseModel

from app.access import Facts, Relation, relation_from_past, relation_now
from app.identity import Person
from protocols import ProtocolError, load_protocol
from schemas.escalation import Actor
from schemas.protocol import Protocol
from starter.read_model import (
    EscalationRow,
    ListFilter,
    RowFacts,
    involvement,
    records_with_facts,
)
from starter.read_model import Listing as ReadModelListing


class Item(BaseModel):
    """One line of a list: the escalation, its relation to the person, and whether it waits for them."""

    row: EscalationRow
    relation: Relation
    waiting: list[str] = []


class Listing(BaseModel):
    items: list[Item]
    unreadable: int = 0
    """Escalations that could not be read to decide (no worker answered): the list says so."""
    unindexed: int = 0
    """Escalations started before the search attributes were registered: not in the list."""
    scanned: bool = False
    """No search attributes are registered: each escalation's state was read in turn (slow)."""


class ScannedListing(ReadModelListing):
    """A list read escalation by escalation (no search attributes registered)."""


@lru_cache(maxsize=64)
def _protocol(authority: str) -> Protocol | None:
    try:
        return load_protocol(authority)
    except ProtocolError:
        return None


def _facts(row: EscalationRow, more: RowFacts) -> Facts | None:
    protocol = _protocol(row.authority)
    if protocol is None or not any(t.key == row.track for t in protocol.tracks):
        return None
    return Facts(
        escalation_id=row.escalation_id,
        protocol=protocol,
        track=row.track,
        team=more.team,
        service_area=more.service_area,
        officer=Actor(id=more.raised_by_id, role=more.raised_by_role),
    )


def visible_from_records(person: Person, url: str, wanted: ListFilter, now: datetime) -> Listing:
    """The escalations ``wanted`` asks for that ``person`` may see, from the record store, soonest deadline
    first. ``starter.read_model.RecordStoreUnavailable`` when the store cannot be read."""
    found = records_with_facts(url, wanted.model_copy(update={"authority": person.authority}), now)
    related: dict[str, Relation] = {}
    unsure: dict[str, Facts] = {}
    for row, more in found:
        facts = _facts(row, more)
        if facts is None:
            continue
        now_related = relation_now(person, facts, row.stage)
        if now_related is not None:
            related[row.escalation_id] = now_related
        else:
            unsure[row.escalation_id] = facts
    for escalation_id, part in involvement(url, list(unsure), person.id).items():
        past = relation_from_past(
            person,
            unsure[escalation_id],
            covering_officer=part.covering_officer,
            acted=part.acted,
            entered=part.entered,
        )
        if past is not None:
            related[escalation_id] = past
    return Listing(
        items=[
            Item(row=row, relation=related[row.escalation_id])
            for row, _ in found
            if row.escalation_id in related
        ]
    )
