"""CPU per notification: ``.venv/bin/python benchmarks/notify_cpu.py [--notifications N] [--postgres]``.

Sends N notifications (Wigan's "sent to stage", three recipients each: the team manager, the raising
officer and the IRO team manager) through ``SmtpNotifier`` to a real SMTP server (aiosmtpd on 127.0.0.1, a
free port) with the record store on SQLite (a temporary file), on a throwaway PostgreSQL cluster with
``--postgres``, or on ``--database URL``; migrated and with the sample directories. Prints the CPU time of
the sending thread per notification (the SMTP server's own thread is not counted) and the wall time.
``--profile`` also prints where the CPU went. A figure, not a test: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.mail import SmtpNotifier
from activities.settings import SmtpSettings
from schemas.effects import NotificationInput
from schemas.escalation import Actor, EventKind
from schemas.protocol import RAISING_OFFICER
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import Driver, make_raise
from tests.postgres_cluster import throwaway_postgres
from tests.smtp_server import Capture, start_capture
from workflows.escalation import _notification

FRIDAY = datetime(2026, 12, 18, 10, 0, tzinfo=ZoneInfo("Europe/London"))
RECIPIENTS = 3


def notification(i: int) -> NotificationInput:
    """A distinct stage-sent notice (its own idempotency key, so its own Message-IDs)."""
    officer = Actor(id="wig-iro-a", role="iro")
    raise_ = make_raise("wigan", "iro", officer=officer, child_ref="C123").model_copy(
        update={"team": "team-a"}
    )
    driver = Driver(raise_, FRIDAY)
    [notice] = driver.notices(EventKind.SENT_TO_STAGE)
    n = _notification(driver.state, notice, "run-bench")
    return n.model_copy(
        update={
            "idempotency_key": f"{n.idempotency_key}/bench-{i}",
            "cc_roles": [RAISING_OFFICER, "iro_team_manager"],
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=200, help="how many to send (default 200)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    where.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--profile", action="store_true", help="print the top functions by CPU")
    args = parser.parse_args(argv)
    if args.notifications < 1:
        parser.error("--notifications must be at least 1")

    template = notification(0)
    notices = [
        template.model_copy(update={"idempotency_key": f"{template.idempotency_key}-{i}"})
        for i in range(args.notifications)
    ]
    capture = Capture()
    controller = start_capture(capture)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.postgres:
            url = stack.enter_context(throwaway_postgres())
        with migrated_engine(url, directories=DIRECTORIES) as engine:
            smtp = SmtpSettings(
                host="127.0.0.1",
                port=controller.port,
                tls="none",
                mail_from="escalations@wigan.example.org",
                reply_local="escalations",
                reply_domain="replies.example.org",
            )
            notifier = SmtpNotifier(engine, smtp)
            notifier.send(notices[0])  # warm up: templates compiled, connections open
            profile = cProfile.Profile() if args.profile else None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            if profile:
                profile.enable()
            for n in notices[1:]:
                notifier.send(n)
            if profile:
                profile.disable()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    controller.stop()
    count = args.notifications - 1
    delivered = len(capture.deliveries)
    if delivered != args.notifications * RECIPIENTS:
        print(
            f"expected {args.notifications * RECIPIENTS} messages, the server got {delivered}",
            file=sys.stderr,
        )
        return 1
    print(f"{count} notifications x {RECIPIENTS} recipients on {url.split(':')[0]}")
    print(f"CPU per notification:  {cpu / count * 1000:8.2f} ms")
    print(f"wall per notification: {wall / count * 1000:8.2f} ms")
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
