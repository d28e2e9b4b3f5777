"""The application layer every front door calls: connect, authorise, raise, act, read and list.

A front door (the web pages, the JSON API; next the command line and the e-mail ingester) authenticates a
person, then calls ``Application`` with a ``Caller``; it holds no rule of its own. Here:

* **who sees what** (``app.access``): an escalation the person has no business in is ``NotFound``, the
  same as one that does not exist;
* **who may do what**: the workflow's ``available_actions`` query for each role the directory gives the
  person for the escalation's team (``app.access.candidate_actors``); an action it does not offer is still
  sent, in the person's most fitting role, so that the refusal is the rules' own reason (a refused update
  leaves the history unchanged);
* **bounded input**: the actions' pydantic models (``app.inputs``);
* **raising**: ``starter.escalations.prepare`` and ``raise_once`` (idempotent on the form's request id);
* **lists** (``app.lists``): the record store (``app.listing``) or the visibility read model
  (``starter.read_model``), then each escalation the person may see;
* **audit** (``app.audit``): every sign-in, raise, action and read of an escalation, with its outcome.
"""

from __future__ import annotations

from app.core import ApplicationCore, Caller, Reading, TimescaleRefused, waiting_on
from app.listing import Item, Listing
from app.lists import Lists
from app.raising import Raising


class Application(Raising, Lists):
    """The whole application layer: ``ApplicationCore`` (reading, acting, audit), ``Raising``, ``Lists``."""


__all__ = [
    "Application",
    "ApplicationCore",
    "Caller",
    "Item",
    "Listing",
    "Reading",
    "TimescaleRefused",
    "waiting_on",
]
