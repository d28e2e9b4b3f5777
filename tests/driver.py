"""Drive the escalation rules in-process, the way the workflow shell does, for fast unit tests.

Schedules are computed by the real working-day calendar (the function behind the clock activity), and
timers fire in the order ``rules.next_wakeup`` gives, exactly as the workflow's loop does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from activities.working_days import plan_schedule
from protocols import available_protocols, load_protocol
from schemas.effects import Effect, Notify, PlanSchedule, Record
from schemas.escalation import (
    Action,
    Actor,
    Bypass,
    Concern,
    EscalationView,
    EventKind,
    ExternalContact,
    RaiseConcern,
    RecordConsultation,
    escalation_id_for,
)
from schemas.protocol import Protocol, Track
from workflows import rules


def all_tracks() -> list[tuple[str, str]]:
    """Every ``(authority, track)`` pair of the protocols on disk, for parametrizing."""
    return [(key, t.key) for key in available_protocols() for t in load_protocol(key).tracks]


def officer_for(
    track: Track, *, cafcass_allowed: bool | None = None, protocol: Protocol | None = None
) -> Actor:
    roles = list(track.officer_roles)
    if cafcass_allowed is not None and protocol is not None:
        roles = [r for r in roles if (r in protocol.cafcass.officer_roles) == cafcass_allowed]
    return Actor(id="officer-1", role=roles[0])


def make_raise(
    authority: str,
    track: str | None = None,
    *,
    officer: Actor | None = None,
    service_area: str | None = None,
    start_at_stage: str | None = None,
    start_bypass: Bypass | None = None,
    consultations: list[RecordConsultation] | None = None,
    child_ref: str = "C0001",
    protocol: Protocol | None = None,
) -> RaiseConcern:
    protocol = protocol or load_protocol(authority)
    t = protocol.track(track) if track else protocol.tracks[0]
    return RaiseConcern(
        escalation_id=escalation_id_for(protocol.key, child_ref, 1),
        protocol=protocol,
        track=t.key,
        category=t.categories[0],
        service_area=service_area,
        child_ref=child_ref,
        officer=officer or officer_for(t),
        concern=Concern(
            summary="The care plan has not been updated since the review.",
            impact_on_child="Placement stability is at risk.",
            requested_action="Update the care plan and share it with the IRO.",
        ),
        start_at_stage=start_at_stage,
        start_bypass=start_bypass,
        consultations=consultations or [],
        external_contacts=external_contacts_for(protocol, t),
    )


def external_contacts_for(protocol: Protocol, track: Track) -> list[ExternalContact]:
    """A made-up holder for each external role the track's stages address (a partner agency's manager)."""
    used = {r for s in track.stages for r in [*s.to, *s.cc, *s.told_in_advance]}
    return [
        ExternalContact(
            role=role, name="Robin Partner", email=f"{role.replace('_', '.')}@partner.example.org"
        )
        for role in protocol.external_roles
        if role in used
    ]


class Driver:
    """One escalation run by the pure rules, with a clock the test moves forward."""

    def __init__(self, raise_: RaiseConcern, now: datetime, *, honour: bool = True) -> None:
        """``honour``: run as escalations started with the shell's ``HONOURED`` patch (False: before it)."""
        self.now = now
        self.honour = honour
        self.effects: list[Effect] = []
        self._absorb(rules.start(raise_, now, honour=honour))

    # -- what the shell does --

    def _absorb(self, decision: rules.Decision) -> None:
        self.state = decision.state
        self.last_outcome = decision.outcome or getattr(self, "last_outcome", "")
        for effect in decision.effects:
            self.effects.append(effect)
            if isinstance(effect, PlanSchedule):
                schedule = plan_schedule(effect.request)
                self._absorb(rules.on_scheduled(self.state, effect, schedule, self.now))

    def act(self, action: Action) -> str:
        decision = rules.handle(self.state, action, self.now, honour=self.honour)
        self._absorb(decision)
        return decision.outcome

    def advance(self, delta: timedelta, *, max_timers: int | None = None) -> None:
        self.advance_to(self.now + delta, max_timers=max_timers)

    def advance_to(self, when: datetime, *, max_timers: int | None = None) -> None:
        """Fire every timer due up to ``when``, in order, then stop the clock at ``when``.

        ``max_timers``: fail (``RuntimeError``) rather than fire more timers than that on the way, so that
        a timer which never stops falling due shows up as a failure instead of a test that never ends.
        """
        fired = 0
        while True:
            wake = rules.next_wakeup(self.state)
            if wake is None or wake > when:
                break
            if max_timers is not None and fired >= max_timers:
                raise RuntimeError(
                    f"more than {max_timers} timers fell due before {when.isoformat()}; the next is at "
                    f"{wake.isoformat()} with the escalation {self.state.status.value}"
                )
            fired += 1
            self.now = max(self.now, wake)
            self._absorb(rules.on_timer(self.state, self.now, honour=self.honour))
        self.now = when

    # -- what tests look at --

    @property
    def view(self) -> EscalationView:
        return rules.view(self.state, self.now)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.state.timeline]

    def records(self) -> list[Record]:
        return [e for e in self.effects if isinstance(e, Record)]

    def notices(self, kind: EventKind | None = None) -> list[Notify]:
        return [e for e in self.effects if isinstance(e, Notify) and (kind is None or e.kind == kind)]

    def recipient(self) -> Actor:
        to, _ = rules.addressees(self.state)
        return Actor(id="manager-1", role=to[0])

    def run_out_the_clock(self, limit: timedelta = timedelta(days=120)) -> None:
        """Let every deadline pass, recording gated consultations as they fall due."""
        end = self.now + limit
        while not self.state.status.is_closed and self.now < end:
            wake = rules.next_wakeup(self.state)
            if wake is None:
                break
            self.advance_to(wake)
