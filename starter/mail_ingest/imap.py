"""An IMAP mailbox as a source of replies (``imap-tools``), polled.

Each unseen message of the folder is read without marking it (``BODY.PEEK[]``), processed, and once its
outcome is recorded flagged ``\\Seen``: the mailbox keeps every message. One that cannot be processed now
(``Retry``) stays unseen and the batch stops, to be tried again at the next poll. The password comes from
``ESCALATION_IMAP_PASSWORD`` only (never an option or a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ssl
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imap_tools import AND, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessageFlags

from starter.mail_ingest.ingest import MESSAGE_MAX, Say, _say, describe, poll_until
from starter.mail_ingest.replies import ReplyProcessor, Retry

__all__ = ["ImapInbox"]


@dataclass
class ImapInbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    tls: Literal["ssl", "starttls", "none"] = "ssl"
    timeout: float = 30.0

    def _login(self) -> BaseMailBox:
        box: BaseMailBox
        if self.tls == "ssl":
            box = MailBox(
                self.host, self.port, timeout=self.timeout, ssl_context=ssl.create_default_context()
            )
        elif self.tls == "starttls":
            box = MailBoxStartTls(
                self.host, self.port, timeout=self.timeout, ssl_context=ssl.create_default_context()
            )
        else:
            box = MailBoxUnencrypted(self.host, self.port, timeout=self.timeout)
        return box.login(self.user, self.password, initial_folder=self.folder)

    def _unseen(self, box: BaseMailBox) -> list[str]:
        return list(box.uids(AND(seen=False)))

    @staticmethod
    def _read(box: BaseMailBox, uid: str) -> bytes:
        typ, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
        if typ != "OK":
            raise Retry(f"the IMAP server would not give message {uid}: {typ}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                if len(item[1]) > MESSAGE_MAX:
                    raise Retry(f"message {uid} is more than {MESSAGE_MAX} bytes: read it by hand")
                return item[1]
        raise Retry(f"the IMAP server gave no content for message {uid}")

    async def run_once(self, processor: ReplyProcessor, say: Say = _say) -> int:
        """Process the unseen messages; the number left unseen (to be retried)."""
        try:
            box = await asyncio.to_thread(self._login)
        except (OSError, imaplib.IMAP4.error) as exc:
            say(f"the IMAP server {self.host}:{self.port} cannot be read now: {exc}")
            return 1
        try:
            waiting = await asyncio.to_thread(self._unseen, box)
            for i, uid in enumerate(waiting):
                try:
                    raw = await asyncio.to_thread(self._read, box, uid)
                    outcome = await processor.process(raw)
                except Retry as exc:
                    say(f"IMAP message {uid}: kept for retry: {exc}")
                    return len(waiting) - i
                except (OSError, imaplib.IMAP4.error) as exc:
                    say(f"IMAP message {uid}: kept for retry: the connection failed: {exc}")
                    return len(waiting) - i
                except Exception:  # a bug must not lose the message: it stays unseen and is said
                    print(
                        f"mail ingest: IMAP {uid}: failed, kept:\n{traceback.format_exc()}", file=sys.stderr
                    )
                    return len(waiting) - i
                say(describe(outcome, f"IMAP message {uid}"))
                await asyncio.to_thread(box.flag, uid, MailMessageFlags.SEEN, True)
            return 0
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(box.logout)

    async def poll(
        self,
        processor: ReplyProcessor,
        stop: asyncio.Event,
        every: float = 30.0,
        say: Say = _say,
        alive: Path | None = None,
    ) -> None:
        """``run_once`` every ``every`` seconds (longer, up to ten minutes, while messages wait for retry)."""
        await poll_until(lambda: self.run_once(processor, say), stop, every, 600.0, alive)
