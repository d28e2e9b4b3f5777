"""Every action through the JSON API, against the real application layer, a dev server and a real worker,
and every kind of refusal: wrong person, wrong role, wrong stage, an ended escalation, past dates,
over-long text, CSRF missing. Refusals are 4xx with the rule's reason and nothing internal; HTML and
script typed into every text field come back escaped on the escalation's page."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from markupsafe import escape

from app.service import Application
from tests.test_web import browser, sign_in, web
from tests.workflow_harness import unique_ref

__all__ = ["web"]  # the fixture, shared with tests/test_web.py

pytestmark = pytest.mark.asyncio(loop_scope="session")

CATEGORY = "Quality of practice"
INTERNAL = re.compile(r"Traceback|pydantic|temporalio|RPCError|ValidationError|\bloc\b|\bactor\b|File \"")


@dataclass
class Api:
    """One signed-in person's API client."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def act(self, escalation_id: str, kind: str, **fields: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/escalations/{escalation_id}/actions/{kind}", json=fields, headers=self.headers
        )

    async def ok(self, escalation_id: str, kind: str, **fields: Any) -> dict[str, Any]:
        done = await self.act(escalation_id, kind, **fields)
        assert done.status_code == 200, (kind, done.status_code, done.text)
        body: dict[str, Any] = done.json()
        return body

    async def refused(self, escalation_id: str, kind: str, status: int, words: str, **fields: Any) -> str:
        """The action is refused with ``status`` and a message containing ``words``; nothing internal."""
        done = await self.act(escalation_id, kind, **fields)
        assert done.status_code == status, (kind, done.status_code, done.text)
        body = done.json()
        assert words.lower() in done.text.lower(), (kind, body)
        assert not INTERNAL.search(done.text), (kind, body)
        return str(body.get("message", ""))

    async def read(self, escalation_id: str) -> dict[str, Any]:
        got = await self.client.get(f"/api/escalations/{escalation_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    async def raise_(self, **fields: Any) -> str:
        made = await self.client.post("/api/escalations", json=fields, headers=self.headers)
        assert made.status_code == 201, made.text
        return str(made.json()["escalation_id"])


async def api(application: Application, who: str) -> Api:
    client = browser(application)
    await sign_in(client, who)
    me = (await client.get("/api/me")).json()
    return Api(client, {"X-CSRF-Token": me["csrf_token"]})


def concern(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "track": "iro",
        "category": CATEGORY,
        "child_ref": unique_ref(),
        "child_status": "looked_after",
        "team": "team-a",
        "summary": "The plan has drifted <script>alert('summary')</script>.",
        "impact_on_child": "No school <b>place</b>.",
        "requested_action": "Agree a date.",
    }
    return {**fields, **changes}


def marker(field: str) -> str:
    return f"<script>alert('{field}')</script><b>{field}</b>"


def shown_escaped(page: str, *fields: str) -> None:
    """Each field's marker is on the page escaped, and never as markup."""
    for f in fields:
        forms = {str(escape(marker(f))), html.escape(marker(f), quote=False), html.escape(marker(f))}
        assert any(e in page for e in forms), f
        assert marker(f) not in page, f


TOMORROW_PLUS = (date.today() + timedelta(days=30)).isoformat()


async def test_the_ladder_through_the_api(web: Application) -> None:
    """iro track at Wigan: raise with a shorter timescale; note, views, more time asked and decided, an
    answer with an action plan, an escalation the protocol gives to another role, a consultation, a bypass,
    a meeting, escalate into the exceptional stage, CAFCASS; each refusal kind along the way."""
    officer = await api(web, "wigan/wig-iro-a")
    manager = await api(web, "wigan/wig-team-manager-a")
    outsider = await api(web, "wigan/wig-team-manager-b")
    iro_tm = await api(web, "wigan/wig-iro-team-manager")
    try:
        # Raising: the child's status is required where the protocol declares statuses; a shorter time.
        missing = await officer.client.post(
            "/api/escalations", json={**concern(), "child_status": None}, headers=officer.headers
        )
        assert missing.status_code == 422 and "child_status" in missing.json()["fields"]
        unknown = await officer.client.post(
            "/api/escalations", json=concern(child_status="martian"), headers=officer.headers
        )
        assert unknown.status_code == 422 and "must be one of" in unknown.json()["fields"]["child_status"]
        escalation_id = await officer.raise_(
            **concern(timescale_working_days=3, timescale_reason=marker("timescale_reason"))
        )
        read = await officer.read(escalation_id)
        kinds = [e["kind"] for e in read["escalation"]["timeline"]]
        assert "timescale_set" in kinds, kinds
        assert read["escalation"]["child_status"] == "looked_after"

        # Over-long text in every text field of every action: 422 naming the field, nothing sent.
        long = "x" * 20_001
        today = date.today().isoformat()
        texts: dict[str, tuple[dict[str, Any], list[str]]] = {
            "respond": ({"answer": "a", "action_plan": "p"}, ["answer", "action_plan"]),
            "request_extension": ({"until": TOMORROW_PLUS, "reason": "r"}, ["reason"]),
            "decide_extension": ({"approve": False, "reason": "r"}, ["reason"]),
            "set_timescale": ({"working_days": 2, "reason": "r"}, ["reason"]),
            "accept": ({"note": "n", "action_plan": "p"}, ["note", "action_plan"]),
            "escalate": ({"reason": "r"}, ["reason"]),
            "bypass": ({"to_stage": "stage-3", "reason": "r"}, ["reason"]),
            "refer_to_cafcass": ({"reason": "r"}, ["reason"]),
            "record_consultation": (
                {"stage": "stage-2", "with_role": "iro_team_manager", "summary": "s"},
                ["summary"],
            ),
            "record_meeting": ({"held_on": today, "attendees": ["a"], "outcome": "o"}, ["outcome"]),
            "replace_officer": (
                {"new_officer": {"id": "wig-iro-b", "role": "iro"}, "reason": "r"},
                ["reason"],
            ),
            "withdraw": ({"reason": "r"}, ["reason"]),
            "close": ({"reason": "r"}, ["reason"]),
            "add_note": ({"text": "t"}, ["text"]),
            "record_views": ({"whose": "child", "views": "v"}, ["views"]),
            "record_step": ({"step": "child-told", "note": "n"}, ["note"]),
        }
        for kind, (fields, long_ones) in texts.items():
            for name in long_ones:
                refused = await officer.act(escalation_id, kind, **{**fields, name: long})
                assert refused.status_code == 422, (kind, name, refused.text)
                said = refused.json()["fields"][name]
                assert "20,000" in said and "characters" in said, (kind, name, refused.text)
                assert not INTERNAL.search(refused.text)
        after = (await officer.read(escalation_id))["escalation"]["timeline"]
        assert [e["kind"] for e in after] == kinds  # nothing was taken

        # CSRF missing: refused before anything happens.
        no_csrf = await officer.client.post(
            f"/api/escalations/{escalation_id}/actions/add_note", json={"text": "x"}
        )
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text

        # Wrong person (no business in it): the same 404 as for none at all.
        hidden = await outsider.act(escalation_id, "respond", answer="mine")
        none = await outsider.act("wigan-T0000000000-0001", "respond", answer="mine")
        assert hidden.status_code == none.status_code == 404
        assert hidden.json()["message"].replace(escalation_id, "ID") == none.json()["message"].replace(
            "wigan-T0000000000-0001", "ID"
        )
        # Wrong role: the manager may not withdraw, the officer may not respond.
        await manager.refused(escalation_id, "withdraw", 403, "Only the raising officer", reason="mine")
        await officer.refused(escalation_id, "respond", 403, "", answer="I answer myself")
        # Wrong stage: no meeting at stage 1; no consultation needed by a later stage of this kind.
        await officer.refused(
            escalation_id,
            "record_meeting",
            403,
            "meeting",
            held_on=date.today().isoformat(),
            attendees=["IRO"],
            outcome="met",
        )
        # Unknown action, and a field that is not part of the action.
        await officer.refused(escalation_id, "launch_rockets", 422, "no action called")
        await officer.refused(
            escalation_id, "add_note", 422, "not part of this action", text="x", colour="red"
        )

        # Notes and views, with HTML and script.
        await officer.ok(escalation_id, "add_note", text=marker("text"))
        await officer.ok(escalation_id, "record_views", whose="child", views=marker("views"))
        await officer.refused(escalation_id, "record_views", 422, "select whose", whose="dog", views="x")

        # More time: past dates refused; over-long text refused naming the field; then asked and approved.
        await manager.refused(
            escalation_id, "request_extension", 403, "past", until="2001-01-01", reason="more time"
        )
        await manager.refused(
            escalation_id,
            "request_extension",
            422,
            "20,000 characters or fewer",
            until=TOMORROW_PLUS,
            reason="x" * 20_001,
        )
        await manager.refused(
            escalation_id, "request_extension", 422, "real date", until="2027-02-31", reason="x"
        )
        await manager.ok(escalation_id, "request_extension", until=TOMORROW_PLUS, reason=marker("reason"))
        assert "decide_extension" in (await officer.read(escalation_id))["actions"]
        await manager.refused(escalation_id, "decide_extension", 403, "", approve=True)  # not the approver
        await officer.ok(
            escalation_id,
            "decide_extension",
            approve=True,
            reason=marker("decision"),
            exceed_total_limit=True,
        )
        await officer.refused(
            escalation_id, "set_timescale", 403, "past", until="2001-01-01", reason="sooner"
        )

        # The answer, with an action plan; the officer says it does not address the concern.
        await manager.ok(
            escalation_id,
            "respond",
            answer=marker("answer"),
            action_plan=marker("action_plan"),
            action_plan_due=TOMORROW_PLUS,
        )
        # Stage 2 needs the IRO Team Manager's agreement first: the escalation is held until it is recorded.
        held = await officer.ok(escalation_id, "escalate", reason=marker("escalate_reason"))
        assert held["status"] == "escalation_due" and held["stage"] == "stage-1", held
        await officer.refused(
            escalation_id,
            "record_consultation",
            403,
            "more than a year ago",
            stage="stage-2",
            with_role="iro_team_manager",
            agreed=True,
            summary="agreed",
            held_on="2001-01-01",
        )
        await officer.ok(
            escalation_id,
            "record_consultation",
            stage="stage-2",
            with_role="iro_team_manager",
            agreed=True,
            summary=marker("summary"),
            held_on=date.today().isoformat(),
        )
        assert (await officer.read(escalation_id))["escalation"]["stage"] == "stage-2"

        page = (await officer.client.get(f"/escalations/{escalation_id}")).text
        shown_escaped(
            page,
            "summary",
            "text",
            "views",
            "reason",
            "answer",
            "action_plan",
            "escalate_reason",
            "timescale_reason",
        )

        # Bypass to stage 4 (a meeting): with the prior discussion the protocol asks for.
        await officer.refused(escalation_id, "bypass", 403, "", to_stage="stage-1", reason="back")
        await officer.ok(
            escalation_id,
            "bypass",
            to_stage="stage-4",
            reason=marker("bypass_reason"),
            discussed_with="siu_service_lead",
        )
        deputy = await api(web, "wigan/wig-deputy-director-csc")
        try:
            await deputy.refused(
                escalation_id,
                "record_meeting",
                403,
                "more than a year ago",
                held_on="2001-01-01",
                attendees=["x"],
                outcome="met",
            )
            await deputy.ok(
                escalation_id,
                "record_meeting",
                held_on=date.today().isoformat(),
                attendees=[marker("attendee")],
                outcome=marker("outcome"),
            )
        finally:
            await deputy.client.aclose()
        # Stage 5 is for exceptional circumstances only: the officer must say so.
        await officer.refused(escalation_id, "escalate", 403, "exceptional", reason="no answer")
        await officer.ok(escalation_id, "escalate", reason=marker("exceptional_reason"), exceptional=True)
        assert (await officer.read(escalation_id))["escalation"]["stage"] == "stage-5"

        # CAFCASS ends it; after that every action is refused as ended.
        await officer.refused(
            escalation_id,
            "refer_to_cafcass",
            403,
            "Before referring to CAFCASS, consult",
            reason="now",
            consulted=["iro_team_manager"],
        )
        await officer.ok(
            escalation_id,
            "refer_to_cafcass",
            reason=marker("cafcass_reason"),
            consulted=["iro_team_manager", "siu_service_lead", "strategic_lead_safeguarding"],
        )
        await officer.refused(escalation_id, "add_note", 403, "has ended", text="after the end")
        await officer.refused(escalation_id, "withdraw", 403, "has ended", reason="after the end")
        page = (await officer.client.get(f"/escalations/{escalation_id}")).text
        shown_escaped(page, "bypass_reason", "outcome", "exceptional_reason", "cafcass_reason")
    finally:
        for a in (officer, manager, outsider, iro_tm):
            await a.client.aclose()


async def test_partner_agencies_cover_and_joint_judging(web: Application) -> None:
    """Wigan's partner-agencies track: the partner's manager named at raise, their answer recorded on their
    behalf, exclusive escalation, a covering officer, and joint judges who must both accept."""
    officer = await api(web, "wigan/wig-iro-a")
    iro_tm = await api(web, "wigan/wig-iro-team-manager")
    manager = await api(web, "wigan/wig-team-manager-a")
    lead = await api(web, "wigan/wig-strategic-lead-safeguarding")
    try:
        contact = {
            "role": "partner_agency_manager",
            "name": "Robin <i>Partner</i>",
            "email": "robin.partner@partner.example.org",
        }
        bad = await officer.client.post(
            "/api/escalations",
            json=concern(
                track="partner-agencies", external_contacts=[{**contact, "email": "not an address"}]
            ),
            headers=officer.headers,
        )
        assert bad.status_code == 422, bad.text
        assert not INTERNAL.search(bad.text)
        no_contact = await officer.client.post(
            "/api/escalations", json=concern(track="partner-agencies"), headers=officer.headers
        )
        assert no_contact.status_code in (403, 422) and "partner" in no_contact.text.lower(), no_contact.text
        escalation_id = await officer.raise_(**concern(track="partner-agencies", external_contacts=[contact]))

        # The partner answered by e-mail: only the officer records it, for a role the stage goes to.
        await manager.refused(escalation_id, "respond", 404, "no escalation", answer="x")  # no business in it
        await officer.refused(
            escalation_id, "respond", 403, "", answer="x", on_behalf_of="director_of_childrens_services"
        )
        await officer.ok(
            escalation_id, "respond", answer=marker("partner_answer"), on_behalf_of="partner_agency_manager"
        )
        # Partner Stage 2 is escalated into by the IRO Team Manager alone.
        await officer.refused(escalation_id, "escalate", 403, "IRO Team Manager", reason="not addressed")
        await iro_tm.ok(escalation_id, "escalate", reason=marker("tm_reason"))

        # A covering officer, by the IRO Team Manager; the old officer keeps nothing to do.
        await iro_tm.refused(
            escalation_id, "replace_officer", 422, "", new_officer={"id": "", "role": "iro"}, reason="leave"
        )
        await manager.refused(
            escalation_id,
            "replace_officer",
            404,
            "",
            new_officer={"id": "wig-corporate-iro-a", "role": "corporate_iro"},
            reason="leave",
        )
        await iro_tm.ok(
            escalation_id,
            "replace_officer",
            new_officer={"id": "wig-corporate-iro-a", "role": "corporate_iro"},
            reason=marker("cover_reason"),
        )
        covering = await api(web, "wigan/wig-corporate-iro-a")
        try:
            await lead.ok(escalation_id, "respond", answer=marker("lead_answer"))
            # Joint judging: both must accept; the first acceptance is recorded and shown.
            await covering.ok(escalation_id, "accept", note=marker("accept_note"))
            page = (await covering.client.get(f"/escalations/{escalation_id}")).text
            assert "accepts; still to decide" in page, page[-3000:]
            shown_escaped(page, "partner_answer", "tm_reason", "cover_reason", "lead_answer", "accept_note")
            done = await iro_tm.ok(escalation_id, "accept")
            assert done["status"] == "resolved", done
            await covering.refused(escalation_id, "add_note", 403, "has ended", text="late")
        finally:
            await covering.client.aclose()
    finally:
        for a in (officer, iro_tm, manager, lead):
            await a.client.aclose()


async def test_record_a_step_and_withdraw(web: Application) -> None:
    """Waltham Forest (FWi) IRO alerts: a required step at the team manager's stage, recorded with who
    was told and how; a future date refused; then the officer withdraws and the escalation has ended."""
    officer = await api(web, "waltham-forest-fwi/wff-iro-a")
    manager = await api(web, "waltham-forest-fwi/wff-team-manager-a")
    try:
        escalation_id = await officer.raise_(
            **concern(
                category="Significant drift in permanence planning",
                start_at_stage="team-manager",
                bypass_reason="Urgent: no plan for months.",
                emergency=True,
            )
        )
        duties = (await officer.read(escalation_id))["escalation"]["duties"]
        assert [d["key"] for d in duties] == ["child-told"], duties
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        await officer.refused(
            escalation_id,
            "record_step",
            403,
            "future",
            step="child-told",
            done_at=f"{tomorrow}T12:00:00+00:00",
            told=["child"],
            how="in_person",
        )
        await officer.refused(escalation_id, "record_step", 403, "", step="no-such-step")
        await officer.refused(
            escalation_id, "record_step", 422, "select how", step="child-told", told=["child"], how="by owl"
        )
        await manager.refused(
            escalation_id, "record_step", 403, "", step="child-told", told=["child"], how="phone"
        )
        await officer.ok(
            escalation_id,
            "record_step",
            step="child-told",
            told=["child"],
            how="in_person",
            note=marker("step_note"),
        )
        duties = (await officer.read(escalation_id))["escalation"]["duties"]
        assert duties[0]["done"] is not None
        page = (await officer.client.get(f"/escalations/{escalation_id}")).text
        assert "Duties" in page and "Done " in page
        shown_escaped(page, "step_note")
        await officer.ok(escalation_id, "withdraw", reason=marker("withdraw_reason"))
        await officer.refused(escalation_id, "add_note", 403, "has ended", text="after")
        await manager.refused(escalation_id, "respond", 403, "has ended", answer="after")
        shown_escaped((await officer.client.get(f"/escalations/{escalation_id}")).text, "withdraw_reason")
    finally:
        await officer.client.aclose()
        await manager.client.aclose()
