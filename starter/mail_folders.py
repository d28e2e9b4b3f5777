"""Where the embedded stack keeps mail, apart from the catcher itself (``starter.mail_catcher`` re-exports
both), so that naming a folder (``escalate mail --help``) does not import the SMTP server."""

from __future__ import annotations

from pathlib import Path

MAIL_DIR = Path(".data/mail")
"""Where ``escalate up`` keeps caught mail (and ``escalate mail`` reads it)."""
INBOX_DIR = Path(".data/inbox")
"""The Maildir of replies to reply addresses, read by ``escalate up``'s reply ingester."""
