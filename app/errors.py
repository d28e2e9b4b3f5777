"""What the application layer refuses, in words a front door shows as they are.

Every front door maps these the same way: ``NotFound`` (the web's 404, for an escalation that does not
exist and for one the person has no business in, alike), ``Refused`` (the rules' reason; 403/409),
``BadInput`` (what to fix, per field label; 400/422), ``Unavailable`` (Temporal or the worker; 503).
Nothing internal (a stack trace, an RPC status, a model's field name) is ever in their messages.
"""

from __future__ import annotations

from collections.abc import Mapping


class AppError(Exception):
    """Base of the application layer's refusals; ``message`` is for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AppError):
    """No such escalation, or none this person may see: the same words for both."""

    def __init__(self, escalation_id: str) -> None:
        super().__init__(f"There is no escalation {escalation_id} that you can see.")
        self.escalation_id = escalation_id


class Refused(AppError):
    """The protocol's rules (or the directory) do not allow it: ``message`` is their reason."""


class NotSignedIn(AppError):
    """No person, or a person the directory no longer knows."""


class BadInput(AppError):
    """The input is wrong; ``fields`` maps each field's name to what is wrong with it, in words."""

    def __init__(self, fields: Mapping[str, str], message: str = "") -> None:
        self.fields = dict(fields)
        super().__init__(message or "; ".join(self.fields.values()))


class Unavailable(AppError):
    """Temporal or the worker did not answer; try again shortly."""
