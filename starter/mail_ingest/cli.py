"""``escalate mail ingest``: read replies from a Maildir (polling) or standard input and act on them.

    escalate mail ingest --maildir DIR [--once] [--every SECONDS]
    escalate mail ingest --stdin
    escalate mail ingest --imap HOST[:PORT] --imap-user USER [--imap-tls ssl|starttls|none]
                         [--imap-folder INBOX] [--once] [--every SECONDS]     # ESCALATION_IMAP_PASSWORD

Connection and settings as the other commands and the worker: ``TEMPORAL_ADDRESS``/``--address``,
``ESCALATION_DATABASE_URL`` (the record store, where reply tokens are), ``ESCALATION_SMTP_*`` (the
confirmations), ``ESCALATION_REPLY_LOCAL``/``_DOMAIN`` (the reply address), ``ESCALATION_DIRECTORY_DIR``.
Exit codes: 0 done; 2 bad options; 75 (``EX_TEMPFAIL``) a message kept to be retried (``--stdin``, or
``--once`` with messages left in ``new/``); 130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from starter.clean_exit import run_then_exit
from starter.mail_ingest.imap import ImapInbox
from starter.mail_ingest.ingest import EX_TEMPFAIL, Maildir, ingest_stdin

PROG = "escalate mail ingest"
CONNECT_RETRY_S = (1.0, 30.0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Act on e-mail replies to the escalations' mail.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--maildir", type=Path, help="a Maildir to poll (its new/ is read; processed go to cur/)"
    )
    where.add_argument(
        "--stdin", action="store_true", help="one message on standard input (a mail server's pipe)"
    )
    where.add_argument("--imap", metavar="HOST[:PORT]", help="an IMAP mailbox to poll (unseen messages)")
    p.add_argument("--imap-user", help="with --imap: the mailbox's user (password: ESCALATION_IMAP_PASSWORD)")
    p.add_argument("--imap-tls", choices=["ssl", "starttls", "none"], default="ssl", help="default ssl (993)")
    p.add_argument("--imap-folder", default="INBOX", help="with --imap: the folder read (default INBOX)")
    p.add_argument(
        "--once", action="store_true", help="with --maildir or --imap: process what is there, then exit"
    )
    p.add_argument(
        "--every",
        type=_seconds,
        default=2.0,
        help="with --maildir or --imap: seconds between polls (default 2)",
    )
    p.add_argument(
        "--alive-file",
        type=Path,
        metavar="PATH",
        help="with --maildir or --imap: touched after every poll, for a health check to read its age",
    )
    p.add_argument("--address", help="Temporal server (default TEMPORAL_ADDRESS or 127.0.0.1:7233)")
    p.add_argument("--namespace", help="Temporal namespace (default TEMPORAL_NAMESPACE or default)")
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--every {text!r} is not a number of seconds (0.1 to 3600)"
        ) from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"--every {value:g} is out of range: give 0.1 to 3600 seconds")
    return value


def _say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


async def _processor(args: argparse.Namespace, stop: asyncio.Event | None) -> object | None:
    """The reply processor, connected; with ``stop`` (polling) it waits for Temporal and the database to
    come up, without it (``--stdin``) the first failure is returned as None."""
    from activities.db.base import make_engine
    from activities.settings import Settings
    from app.identity import People
    from app.service import Application
    from starter.connection import connect
    from starter.mail_ingest.replies import ReplyProcessor

    settings = Settings()
    pause, longest = CONNECT_RETRY_S
    while True:
        try:
            client = await connect(args.address, args.namespace)
            people = People.load()
            app = await Application.start(client=client, people=people, database_url=settings.database_url)
            engine = make_engine(settings.database_url)
            source = "stdin" if args.stdin else "maildir" if args.maildir else "imap"
            return ReplyProcessor(engine, app, people, settings.smtp, source=source)
        except Exception as exc:  # Temporal or the database not up yet
            if stop is None:
                _say(f"cannot connect now, the message is kept for retry: {type(exc).__name__}: {exc}")
                return None
            _say(f"cannot connect yet ({type(exc).__name__}: {exc}); trying again in {pause:g} s")
            try:
                await asyncio.wait_for(stop.wait(), pause)
                return None
            except TimeoutError:
                pause = min(pause * 2, longest)


async def main(args: argparse.Namespace) -> int:
    from starter.mail_ingest.replies import ReplyProcessor

    if args.stdin:
        processor = await _processor(args, None)
        if not isinstance(processor, ReplyProcessor):
            return EX_TEMPFAIL
        return await ingest_stdin(processor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    source: Maildir | ImapInbox = Maildir(args.maildir) if args.maildir else _imap(args)
    processor = await _processor(args, stop)
    if not isinstance(processor, ReplyProcessor):
        return 130
    if args.once:
        return EX_TEMPFAIL if await source.run_once(processor) else 0
    where = f"{args.maildir}/new" if args.maildir else f"IMAP {args.imap} {args.imap_folder}"
    _say(f"reading replies from {where} every {args.every:g} s; Ctrl-C to stop")
    await source.poll(processor, stop, args.every, alive=args.alive_file)
    return 0


def _imap(args: argparse.Namespace) -> ImapInbox:
    host, _, port = str(args.imap).rpartition(":") if ":" in args.imap else (args.imap, "", "")
    default = {"ssl": 993, "starttls": 143, "none": 143}[args.imap_tls]
    return ImapInbox(
        host=host,
        port=int(port) if port else default,
        user=args.imap_user,
        password=os.environ["ESCALATION_IMAP_PASSWORD"],
        folder=args.imap_folder,
        tls=args.imap_tls,
    )


def cli(argv: Sequence[str]) -> NoReturn:
    p = parser()
    args = p.parse_args(list(argv))
    if args.once and args.stdin:
        p.error("--once goes with --maildir or --imap")
    if args.imap:
        if not args.imap_user:
            p.error("--imap needs --imap-user (and the password in ESCALATION_IMAP_PASSWORD)")
        if not os.environ.get("ESCALATION_IMAP_PASSWORD"):
            p.error("--imap needs the mailbox's password in ESCALATION_IMAP_PASSWORD")
        port = args.imap.rpartition(":")[2] if ":" in args.imap else "143"
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            p.error(f"--imap {args.imap!r}: give HOST or HOST:PORT with a port 1 to 65535")
    run_then_exit(lambda: main(args))
