"""Where inbound messages come from: a Maildir polled for new messages, or one message on standard input.

Maildir: each file in ``new/`` is processed in name order; once its outcome is recorded (or it was
recorded before: a duplicate delivery) it is moved to ``cur/`` with the ``S`` (seen) flag, so the mailbox
keeps every message. A message that cannot be processed now (``Retry``: Temporal, the database or the mail
server unavailable) stays in ``new/`` and the batch stops there, to be tried again at the next poll; so does
one whose processing failed unexpectedly (it is said on standard error), so nothing is lost.

Standard input (a mail server's pipe, e.g. Postfix ``pipe`` or an aliases ``|command``): exit 0 once the
outcome is recorded, ``EX_TEMPFAIL`` (75) when it must be retried: the mail server keeps the message and
delivers it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from starter.mail_ingest.replies import Outcome, ReplyProcessor, Retry

__all__ = ["EX_TEMPFAIL", "MESSAGE_MAX", "Maildir", "ingest_stdin"]

EX_TEMPFAIL = 75
"""sysexits.h: a temporary failure; mail servers deliver the message again later."""
MESSAGE_MAX = 32 * 1024 * 1024
"""The largest message read (the catcher's limit): a larger one is refused by its size, and kept."""

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(f"mail ingest: {message}", flush=True)


def describe(outcome: Outcome, name: str) -> str:
    where = f" ({outcome.escalation_id})" if outcome.escalation_id else ""
    told = "; the person was told" if outcome.told else ""
    return f"{name}: {outcome.kind}{where}: {outcome.reason}{told}"


@dataclass
class Maildir:
    """A Maildir (``new/``, ``cur/``, ``tmp/``), created if missing."""

    root: Path

    def __post_init__(self) -> None:
        for sub in ("new", "cur", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[Path]:
        return sorted(p for p in (self.root / "new").iterdir() if p.is_file() and not p.name.startswith("."))

    def done(self, path: Path) -> None:
        """Move a processed message to ``cur/`` marked seen (atomic rename, same file system)."""
        os.replace(path, self.root / "cur" / f"{path.name.split(':', 1)[0]}:2,S")

    def deliver(self, content: bytes, name: str) -> Path:
        """Write a message as a mail server does: into ``tmp/``, then renamed into ``new/``."""
        tmp = self.root / "tmp" / name
        tmp.write_bytes(content)
        final = self.root / "new" / name
        os.replace(tmp, final)
        return final

    async def run_once(self, processor: ReplyProcessor, say: Say = _say) -> int:
        """Process what waits in ``new/``; the number left there (to be retried)."""
        waiting = self.waiting()
        for i, path in enumerate(waiting):
            try:
                raw = _read(path)
                outcome = await processor.process(raw)
            except Retry as exc:
                say(f"{path.name}: kept for retry: {exc}")
                return len(waiting) - i
            except Exception:  # a bug must not lose the message: it stays in new/ and is said
                print(
                    f"mail ingest: {path.name}: failed, kept in new/:\n{traceback.format_exc()}",
                    file=sys.stderr,
                )
                return len(waiting) - i
            say(describe(outcome, path.name))
            self.done(path)
        return 0

    async def poll(
        self,
        processor: ReplyProcessor,
        stop: asyncio.Event,
        every: float = 2.0,
        say: Say = _say,
        alive: Path | None = None,
    ) -> None:
        """``run_once`` every ``every`` seconds (longer, up to a minute, while messages wait for retry)."""
        await poll_until(lambda: self.run_once(processor, say), stop, every, 60.0, alive)


async def poll_until(
    run_once: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    every: float,
    longest: float,
    alive: Path | None,
) -> None:
    """Run ``run_once`` until ``stop``: every ``every`` seconds, or doubling up to ``longest`` while it leaves
    messages to retry; after each round, touch ``alive`` (for a health check: the loop still goes round)."""
    wait = every
    while not stop.is_set():
        left = await run_once()
        if alive is not None:
            alive.touch()
        wait = min(wait * 2, longest) if left else every
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MESSAGE_MAX:
        raise Retry(f"the message is {size} bytes, more than {MESSAGE_MAX}: read it by hand")
    return path.read_bytes()


async def ingest_stdin(processor: ReplyProcessor, stream: BinaryIO | None = None, say: Say = _say) -> int:
    """One message from standard input: 0 once recorded, ``EX_TEMPFAIL`` to have it delivered again."""
    source = stream if stream is not None else sys.stdin.buffer
    raw = source.read(MESSAGE_MAX + 1)
    if len(raw) > MESSAGE_MAX:
        say(f"the message is more than {MESSAGE_MAX} bytes: refused for now")
        return EX_TEMPFAIL
    try:
        outcome = await processor.process(raw)
    except Retry as exc:
        say(f"kept for retry: {exc}")
        return EX_TEMPFAIL
    say(describe(outcome, "standard input"))
    return 0
