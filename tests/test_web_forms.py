"""The pages' forms for protocol language v2 (HTTP through httpx on the ASGI app, the real application
layer, a dev server and a worker): a consultation given at raise for a gated start stage, handing the
escalation to a covering officer, and escalating into an exceptional stage. Errors name the form's fields
by their labels and keep what was typed."""

from __future__ import annotations

import html
from datetime import date

import pytest

from app.service import Application
from tests.test_web import browser, csrf_of, raise_form, sign_in, web

__all__ = ["web"]

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_consultation_at_raise_handover_and_exceptional(web: Application) -> None:
    async with browser(web) as officer, browser(web) as iro_tm:
        csrf = await sign_in(officer, "wigan/wig-iro-a")
        page = (await officer.get("/raise")).text
        for shown in (
            "The child&#39;s status",
            "Who you consulted before the stage the concern starts at",
            "A shorter time to answer, in working days",
        ):
            assert shown in page, shown
        form = raise_form(
            csrf,
            start_at_stage="stage-2",
            bypass_reason="The team manager has not answered <i>twice</i>.",
            discussed_with="siu_service_lead",
        )
        missing = await officer.post("/raise", data=form)
        assert missing.status_code == 400, missing.text[-2000:]
        assert "needs an agreement first: select who you consulted before the stage" in missing.text
        assert html.escape("The team manager has not answered <i>twice</i>.", quote=False) in missing.text
        partly = await officer.post("/raise", data={**form, "consulted_with": "iro_team_manager"})
        assert "Enter date of the consultation" in partly.text and "Enter what was discussed" in partly.text
        consulted = {
            **form,
            "consulted_with": "iro_team_manager",
            "consulted_on": date.today().isoformat(),
            "consultation": "Agreed to go to the Service Lead.",
            "consultation_agreed": "yes",
        }
        check = await officer.post("/raise", data=consulted)
        assert check.status_code == 200 and "Check your answers" in check.text, check.text[-2000:]
        assert "Agreed to go to the Service Lead." in check.text
        raised = await officer.post("/raise", data={**consulted, "step": "confirm"})
        assert raised.status_code == 303, raised.text[-2000:]
        escalation_id = raised.headers["location"].removeprefix("/escalations/")
        shown = (await officer.get(raised.headers["location"])).text
        assert "2 of 5: Stage 2 - Locality Service Lead" in shown

        t_csrf = await sign_in(iro_tm, "wigan/wig-iro-team-manager")
        page = (await iro_tm.get(f"/escalations/{escalation_id}")).text
        assert f'action="/escalations/{escalation_id}/replace_officer"' in page
        bad = await iro_tm.post(
            f"/escalations/{escalation_id}/replace_officer",
            data={"csrf_token": t_csrf, "new_officer_role": "corporate_iro", "reason": "Leave <b>now</b>"},
        )
        assert bad.status_code == 400 and "Enter covering officer&#39;s staff reference" in bad.text
        assert "Leave &lt;b&gt;now&lt;/b&gt;" in bad.text
        handed = await iro_tm.post(
            f"/escalations/{escalation_id}/replace_officer",
            data={
                "csrf_token": t_csrf,
                "new_officer_id": "wig-corporate-iro-a",
                "new_officer_role": "corporate_iro",
                "reason": "Alex is on leave.",
            },
        )
        assert handed.status_code == 303, handed.text[-2000:]

    async with browser(web) as officer, browser(web) as deputy:
        csrf = await sign_in(officer, "wigan/wig-iro-a")
        form = raise_form(
            csrf,
            start_at_stage="stage-4",
            bypass_reason="No answer for months.",
            discussed_with="siu_service_lead",
        )
        raised = await officer.post("/raise", data={**form, "step": "confirm"})
        assert raised.status_code == 303, raised.text[-2000:]
        escalation_id = raised.headers["location"].removeprefix("/escalations/")
        d_csrf = await sign_in(deputy, "wigan/wig-deputy-director-csc")
        met = await deputy.post(
            f"/escalations/{escalation_id}/record_meeting",
            data={
                "csrf_token": d_csrf,
                "held_on": date.today().isoformat(),
                "attendees": "Deputy Director\nStrategic Lead",
                "outcome": "No agreement.",
            },
        )
        assert met.status_code == 303, met.text[-2000:]
        page = (await officer.get(raised.headers["location"])).text
        assert "The circumstances are exceptional" in page and "only for exceptional circumstances" in page
        refused = await officer.post(
            f"/escalations/{escalation_id}/escalate",
            data={"csrf_token": csrf_of(page), "reason": "No answer."},
        )
        assert refused.status_code == 400 and "exceptional" in refused.text
        done = await officer.post(
            f"/escalations/{escalation_id}/escalate",
            data={"csrf_token": csrf_of(page), "reason": "No answer at all.", "exceptional": "yes"},
        )
        assert done.status_code == 303, done.text[-2000:]
