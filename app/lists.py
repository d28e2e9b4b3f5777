"""Lists through the application layer: every escalation a person may see, from the record store
(``app.listing``) or Temporal's visibility, and what waits for them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.service import RPCError, RPCStatusCode

from app.access import candidate_actors, may_have_held, relation, relation_now
from app.core import ApplicationCore, Caller, waiting_on
from app.errors import NotFound, Unavailable
from app.identity import Person
from app.listing import Item, Listing, ScannedListing, visible_from_records
from starter.escalations import search_attributes_registered
from starter.read_model import BASE_QUERY, EscalationRow, ListFilter, RecordStoreUnavailable, list_escalations
from starter.read_model import Listing as ReadModelListing


class Lists(ApplicationCore):
    # --- lists --------------------------------------------------------------------------------------

    async def escalations(
        self,
        caller: Caller,
        *,
        open_only: bool = False,
        with_waiting: bool = True,
        wanted: ListFilter | None = None,
        records_url: str | None = None,
    ) -> Listing:
        """Every escalation of the person's authority they may see (``wanted`` narrows it), soonest
        deadline first, each with what waits for them (``with_waiting=False``: not asked, so that a list
        needs no worker where the person's relation is plain from the escalation's facts).

        With ``records_url`` (or, without it, the layer's ``lists_from``) the list comes from the record
        store (``app.listing``: two SQL queries, and a state query only for each open escalation the person
        may act on when waiting is asked); otherwise from Temporal's visibility."""
        person = caller.person
        now = datetime.now(UTC)
        wanted = (wanted or ListFilter(open_only=open_only)).model_copy(
            update={"authority": person.authority}
        )
        records_url = records_url or self.lists_from
        if records_url is not None:
            self._permit(caller, "list")
            try:
                recorded = await asyncio.to_thread(visible_from_records, person, records_url, wanted, now)
            except RecordStoreUnavailable as exc:
                raise Unavailable(f"{exc}.") from None
            if with_waiting:
                limit = asyncio.Semaphore(8)

                async def waiting(item: Item) -> Item:
                    async with limit:
                        return await self._with_waiting(person, item)

                recorded.items = list(await asyncio.gather(*(waiting(i) for i in recorded.items)))
            return recorded
        try:
            self._permit(caller, "list")
            listing: ReadModelListing = await list_escalations(self.client, wanted, now, self._timeout)
        except RPCError as exc:
            if exc.status != RPCStatusCode.INVALID_ARGUMENT or await search_attributes_registered(
                self.client
            ):
                raise Unavailable(
                    "The list of escalations cannot be read just now: try again in a minute."
                ) from None
            listing = await self._scanned(person.authority, wanted.open_only)
        limit = asyncio.Semaphore(8)

        async def one(row: EscalationRow) -> Item | BaseException | None:
            async with limit:
                try:
                    facts = await self.facts(row.escalation_id)
                    if facts is None:
                        return None
                    related = relation_now(person, facts, row.stage)
                    view = None
                    if related is None and may_have_held(person, facts, row.stage):
                        view = await self._view(row.escalation_id)
                        related = relation(person, facts, view)
                    if related is None:
                        return None
                    waiting: list[str] = []
                    if with_waiting and not row.status.is_closed and candidate_actors(person, facts):
                        view = view or await self._view(row.escalation_id)
                        waiting = waiting_on(view, await self._allowed(person, facts))
                    return Item(row=row, relation=related, waiting=waiting)
                except (Unavailable, NotFound) as exc:
                    return exc

        found = await asyncio.gather(*(one(r) for r in listing.rows))
        items = [i for i in found if isinstance(i, Item)]
        return Listing(
            items=items,
            unreadable=sum(1 for i in found if isinstance(i, Unavailable)),
            unindexed=listing.unindexed,
            scanned=isinstance(listing, ScannedListing),
        )

    async def _with_waiting(self, person: Person, item: Item) -> Item:
        """The item with what waits for the person in it (unchanged when it cannot be read now)."""
        if item.row.status.is_closed:
            return item
        try:
            facts = await self.facts(item.row.escalation_id)
            if facts is None or not candidate_actors(person, facts):
                return item
            view = await self._view(item.row.escalation_id)
            waiting = waiting_on(view, await self._allowed(person, facts))
        except (Unavailable, NotFound):
            return item
        return item.model_copy(update={"waiting": waiting})

    async def _scanned(self, authority: str, open_only: bool) -> ScannedListing:
        """The list without registered search attributes: each escalation's state read in turn (slow, and
        needs a worker); one that does not answer is left out and counted as unreadable by the caller."""
        query = BASE_QUERY + (" AND ExecutionStatus = 'Running'" if open_only else "")
        ids: list[str] = []
        try:
            async for execution in self.client.list_workflows(query, rpc_timeout=self._timeout):
                if execution.id not in ids and execution.id.startswith(authority + "-"):
                    ids.append(execution.id)
        except RPCError:
            raise Unavailable(
                "The list of escalations cannot be read just now: try again in a minute."
            ) from None
        rows: list[EscalationRow] = []
        for escalation_id in ids:
            try:
                v = await self._view(escalation_id)
            except (Unavailable, NotFound):
                continue
            if v.authority != authority or (open_only and v.status.is_closed):
                continue
            rows.append(
                EscalationRow(
                    escalation_id=v.escalation_id,
                    authority=v.authority,
                    track=v.track,
                    stage=v.stage,
                    status=v.status,
                    stage_number=v.stage_number,
                    stage_count=v.stage_count,
                    deadline=v.deadline,
                    deadline_date=v.deadline_date,
                    working_days_left=v.working_days_left,
                    flags=[f.value for f in v.flags],
                )
            )
        rows.sort(key=lambda r: (r.deadline is None, r.deadline or datetime.max.replace(tzinfo=UTC)))
        return ScannedListing(rows=rows, unindexed=0)

    async def waiting_for(self, caller: Caller) -> Listing:
        """The open escalations waiting for this person's action, soonest deadline first."""
        listing = await self.escalations(caller, open_only=True)
        return Listing(items=[i for i in listing.items if i.waiting], unreadable=listing.unreadable)
