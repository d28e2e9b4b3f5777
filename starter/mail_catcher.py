"""A local SMTP catcher for running on embedded defaults: every message lands in ``<folder>/*.eml``.

``python -m starter.mail_catcher --port 1025 --folder .data/mail`` runs it alone; ``starter.local`` starts it
beside the worker so that notifications can be read (any mail client opens ``.eml`` files). Given an
``inbox``, a message to a reply address (``<reply_local>+<token>@<reply_domain>``) is also delivered into
that Maildir, where ``escalate up``'s reply ingester reads it (``starter.mail_ingest``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from starter.mail_folders import INBOX_DIR as INBOX_DIR  # re-exported
from starter.mail_folders import MAIL_DIR as MAIL_DIR


class SaveToFolder:
    """aiosmtpd handler: write each accepted message, with its envelope recipients, to a file."""

    def __init__(
        self, folder: Path, inbox: Path | None = None, reply_to: tuple[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)
        self.inbox = inbox
        self.reply_to = reply_to or ("escalations", "localhost")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{next(self._counter):05d}.eml"
        header = "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos).encode()
        path.write_bytes(header + content)
        local, domain = (part.lower() for part in self.reply_to)
        if self.inbox is not None and any(
            r.lower().startswith(f"{local}+") and r.lower().endswith(f"@{domain}") for r in envelope.rcpt_tos
        ):
            for sub in ("tmp", "new", "cur"):
                (self.inbox / sub).mkdir(parents=True, exist_ok=True)
            tmp = self.inbox / "tmp" / path.name
            tmp.write_bytes(header + content)
            os.replace(tmp, self.inbox / "new" / path.name)
        subject = message_from_bytes(content, policy=default_policy).get("Subject", "")
        print(f"mail: {', '.join(envelope.rcpt_tos)}: {subject}", flush=True)
        return "250 Message accepted for delivery"


def caught(folder: Path) -> list[Path]:
    """The caught messages, oldest first (file names start with the time they arrived)."""
    return sorted(folder.glob("*.eml"))


def read_caught(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=default_policy)


def summary_line(number: int, message: EmailMessage) -> str:
    """``N  date  to  subject``: one line for a listing."""
    to = message.get_all("X-Envelope-To") or [str(message.get("To", ""))]
    return f"{number:>4}  {message.get('Date', '')}  {', '.join(to)}  {message.get('Subject', '')}"


def plain_text(message: EmailMessage) -> str:
    """The headers a reader needs and the plain-text body."""
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else "(no plain-text part)"
    headers = [
        f"{name}: {message[name]}"
        for name in ("Date", "From", "To", "Cc", "Reply-To", "Subject")
        if message[name]
    ]
    return "\n".join(headers) + "\n\n" + str(text)


def start_catcher(
    folder: Path,
    host: str = "127.0.0.1",
    port: int = 1025,
    inbox: Path | None = None,
    reply_to: tuple[str, str] | None = None,
) -> Controller:
    controller = Controller(SaveToFolder(folder, inbox, reply_to), hostname=host, port=port)
    controller.start()
    return controller


async def _serve(folder: Path, host: str, port: int) -> None:
    controller = start_catcher(folder, host, port)
    print(f"catching mail on {host}:{port} into {folder}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=MAIL_DIR)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.folder, args.host, args.port))


if __name__ == "__main__":
    main()
