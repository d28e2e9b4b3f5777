"""Fault soak: escalations driven through many actions while the worker, Temporal, PostgreSQL and SMTP fail.

    .venv/bin/python benchmarks/fault_soak.py --escalations 6 --actions 20 --seed 7 --minutes 10

Starts its own components (``tests/faults``: a Temporal dev server on a database file, the worker as a
separate process, PostgreSQL, an SMTP catcher), keeps starting batches of ``--escalations`` escalations of
``--actions`` actions each until ``--minutes`` have passed (at least one batch), injecting a random fault
(worker SIGKILL, Temporal SIGTERM or SIGKILL and restart, PostgreSQL or SMTP stopped a while) every few
actions. Then it waits for everything to settle, checks it as the CI test does, prints a summary and exits
0 if nothing was violated, 1 if something was, 2 if a component could not start. Needs Debian's
``postgresql``; ``ESCALATION_PAYLOAD_KEYS`` is made up for the run when unset.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the tests package

from benchmarks.options import minutes, seconds, whole_number
from starter.clean_exit import run_then_exit
from starter.codec import new_key
from tests.faults.components import ComponentUnavailable
from tests.faults.scenario import Config, run_scenario


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=whole_number(0), default=6, help="escalations per batch")
    parser.add_argument("--actions", type=whole_number(0), default=20, help="actions per escalation")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--minutes", type=minutes(0, 24 * 60), default=5.0, help="keep driving new batches this long"
    )
    parser.add_argument(
        "--outage-seconds",
        type=seconds(1, 600),
        default=20.0,
        help="PostgreSQL and SMTP stay down between 1 s and this long (longer: longer retry backoffs)",
    )
    parser.add_argument("--keep", type=Path, help="keep logs and databases in this folder")
    args = parser.parse_args(argv)
    if args.escalations < 1:
        parser.error("--escalations: give at least 1")
    os.environ.setdefault("ESCALATION_PAYLOAD_KEYS", f"soak:{new_key()}")
    config = Config(
        escalations=args.escalations,
        actions=args.actions,
        seed=args.seed,
        minutes=args.minutes,
        outage_s=(1.0, args.outage_seconds),
        folder=args.keep,
        say=lambda line: print(line, flush=True),
    )
    print(
        f"fault soak: {args.escalations} escalations x {args.actions} actions per batch, seed {args.seed}, "
        f"{args.minutes:g} minutes",
        flush=True,
    )
    try:
        report = await run_scenario(config)
    except ComponentUnavailable as exc:
        print(f"fault soak: cannot run: {exc}", file=sys.stderr, flush=True)
        return 2
    print(report.summary(), flush=True)
    return 1 if report.violations() else 0


if __name__ == "__main__":
    run_then_exit(main)
