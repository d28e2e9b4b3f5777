"""A good practice note: its workflow input and result (``workflows.good_practice``).

The note's id holds no personal data: the authority and digits derived from the request id. What it is
recorded and sent as (its recipients, its case note type) is decided from the protocol before it starts
(``workflows.rules.good_practice.note_for``), so the workflow only carries it out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.bounds import Key, OptionalText, Ref, ShortText, TeamRef, Text
from schemas.escalation import Actor

GOOD_PRACTICE = "good-practice"
"""The note's track and stage in the record store, and the word in its id."""
NOTE_ID = r"^[a-z0-9-]+-good-practice-\d{10}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GoodPracticeRequest(_Model):
    """What a person asks: a note of ``about``'s good practice (a practitioner's, or an officer's)."""

    authority: Key
    by: Actor = Field(description="Who notes it, in the role they write in.")
    about: Actor = Field(description="Whose good practice it is: their staff reference and role.")
    team: TeamRef | None = Field(default=None, description="The practitioner's team (their managers').")
    child_ref: Ref | None = Field(default=None, description="The child whose file it goes on.")
    category: ShortText | None = Field(default=None, description="One of the protocol's categories.")
    what: Text = Field(description="The good practice.")
    impact: OptionalText = Field(default="", description="How it made a difference to the child and family.")


class GoodPracticeNote(_Model):
    """``GoodPracticeWorkflow``'s input: the request as the protocol decided it is recorded and sent."""

    note_id: str = Field(pattern=NOTE_ID)
    request: GoodPracticeRequest
    about_officer: bool = Field(description="Staff noting an officer's good practice (not on a file).")
    label: str
    cc: list[str] = Field(default_factory=list, description="Roles copied in, besides the one noted.")
    case_note_type: str | None = Field(
        default=None, description="The type of its case note on the child's file; None: not on a file."
    )


class GoodPracticeResult(_Model):
    note_id: str
    recorded: int = Field(description="Records and messages that were new (not done by an earlier try).")
