"""Joint judging: a stage judged by several roles together (``Stage.joint_judges``).

Every joint judge must accept before the stage resolves (or its action plan is agreed, or confirmed done);
each acceptance but the last is recorded and waits for the others; any joint judge who is not satisfied may
escalate. A new answer asks them all again. Escalating into a stage whose ``escalated_by_exclusive`` is set
belongs to the roles in its ``escalated_by`` alone (see ``_guard_escalate``).
"""

from __future__ import annotations

from schemas.escalation import Accept, Actor, EscalationState, EventKind, JudgeVerdict
from workflows.rules._core import Refused, _Change, _names, _plays, _suffix, current_stage


def _satisfied(s: EscalationState) -> list[str]:
    stage = current_stage(s).key
    return [v.role for v in s.verdicts if v.stage == stage]


def _role_judged(s: EscalationState, actor: Actor) -> str | None:
    """The joint judge ``actor`` plays that has not accepted yet (None: none)."""
    done = _satisfied(s)
    return next((j for j in current_stage(s).joint_judges if j not in done and _plays(s, actor, j)), None)


def guard_joint_accept(s: EscalationState, actor: Actor) -> None:
    judges = current_stage(s).joint_judges
    if not judges:
        return
    if not any(_plays(s, actor, j) for j in judges):
        raise Refused(f"this stage is judged jointly by {_names(s, judges)}: only they may accept")
    if _role_judged(s, actor) is None:
        waiting = [j for j in judges if j not in _satisfied(s)]
        raise Refused(f"you have already accepted; waiting for {_names(s, waiting)}")


def accept_waits(c: _Change, a: Accept) -> bool:
    """Record a joint judge's acceptance; True while other joint judges are still to accept."""
    s = c.s
    stage = current_stage(s)
    if not stage.joint_judges:
        return False
    role = _role_judged(s, a.actor)
    assert role is not None  # the guard checked it
    waiting = [j for j in stage.joint_judges if j not in _satisfied(s) and j != role]
    if not waiting:
        s.verdicts = [v for v in s.verdicts if v.stage != stage.key]  # all satisfied: the next ask is new
        return False
    s.verdicts = [*s.verdicts, JudgeVerdict(stage=stage.key, role=role, by=a.actor, at=c.now)]
    c.event(
        EventKind.JUDGE_SATISFIED,
        f"The {s.protocol.role_name(role)} accepts; still to decide: {_names(s, waiting)}." + _suffix(a.note),
        actor=a.actor,
        to=waiting,
        cc=[r for r in stage.joint_judges if r not in waiting],
        data={"role": role, "waiting": waiting},
    )
    c.outcome = f"accepted by {role}; waiting for {', '.join(waiting)}"
    return True


def ask_again(c: _Change) -> None:
    """A new answer: every joint judge decides on it afresh."""
    stage = current_stage(c.s).key
    if any(v.stage == stage for v in c.s.verdicts):
        c.s.verdicts = [v for v in c.s.verdicts if v.stage != stage]
