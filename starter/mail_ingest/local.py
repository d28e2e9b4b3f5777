"""The reply ingester inside ``escalate up``, and a way to reply to a caught message from the terminal.

``escalate up`` delivers mail to a reply address into the Maildir ``.data/inbox`` (``starter.mail_catcher``)
and runs ``start_ingester`` on it. ``python -m starter.mail_ingest.local N "text"`` replies to caught
message N (``escalate mail`` lists them) as its recipient would from a mail client: from the recipient's
address, to the message's Reply-To, In-Reply-To its Message-ID, with the original quoted below, sent to
the local catcher; a moment later ``escalate status`` shows what became of it.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client

from activities.mail import MESSAGE_POLICY
from activities.settings import Settings
from starter.mail_catcher import INBOX_DIR, MAIL_DIR, caught, plain_text, read_caught
from starter.mail_ingest.ingest import Maildir

__all__ = ["reply_to_caught", "start_ingester"]


def start_ingester(
    client: Client, engine: Engine, settings: Settings, stop: asyncio.Event, inbox: Path = INBOX_DIR
) -> asyncio.Task[None]:
    """Poll ``inbox`` for replies until ``stop``, acting through the application layer."""
    from app.audit import AuditLog
    from app.identity import People
    from app.service import Application
    from starter.mail_ingest.replies import ReplyProcessor

    people = People.load()
    app = Application(client=client, people=people, audit=AuditLog(engine))
    processor = ReplyProcessor(engine, app, people, settings.smtp, source="maildir")
    return asyncio.create_task(Maildir(inbox).poll(processor, stop, every=1.0), name="mail-ingest")


def reply_to_caught(
    number: int, text: str, folder: Path = MAIL_DIR, host: str = "127.0.0.1", port: int = 1025
) -> str:
    """Send a reply to caught message ``number`` (1 = oldest) with ``text``; its Message-ID."""
    files = caught(folder)
    if not 1 <= number <= len(files):
        raise SystemExit(
            f"no message {number} in {folder}: there are {len(files)} (escalate mail lists them)"
        )
    original = read_caught(files[number - 1])
    reply_address = str(original.get("Reply-To") or "")
    if "+" not in reply_address:
        raise SystemExit(f"message {number} has no reply address to answer")
    recipient = (original.get_all("X-Envelope-To") or [""])[0]
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = recipient
    message["To"] = reply_address
    message["Subject"] = f"RE: {original.get('Subject', '')}"
    message["Message-ID"] = make_msgid(domain="reply.localhost")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["In-Reply-To"] = str(original["Message-ID"])
    message["References"] = str(original["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in plain_text(original).splitlines())
    message.set_content(f"{text}\n\nOn {original.get('Date', '')}, Escalations wrote:\n{quoted}\n")
    with smtplib.SMTP(host, port, timeout=20) as smtp:
        smtp.send_message(message, from_addr=recipient, to_addrs=[reply_address])
    return str(message["Message-ID"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Reply to a message escalate up caught, as its recipient.")
    parser.add_argument("number", type=int, metavar="N", help="the caught message (escalate mail lists them)")
    parser.add_argument("text", help="the reply's text")
    parser.add_argument("--port", type=int, default=1025, help="the mail catcher's port (default 1025)")
    parser.add_argument("--folder", type=Path, default=MAIL_DIR, help=f"caught mail (default {MAIL_DIR})")
    args = parser.parse_args()
    message_id = reply_to_caught(args.number, args.text, args.folder, port=args.port)
    print(f"replied to message {args.number} as its recipient ({message_id})")


if __name__ == "__main__":
    main()
