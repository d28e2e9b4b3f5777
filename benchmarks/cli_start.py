"""How fast ``escalate`` starts: median wall times, and where the status path's imports go.

    .venv/bin/python benchmarks/cli_start.py [--runs 10] [--top 12]
    .venv/bin/python benchmarks/cli_start.py --address 127.0.0.1:7233 --status-id ID   # and a real status

Prints the median of ``--runs`` runs (each its own process) of ``python -c pass``, ``escalate --help`` and
``escalate status --help``, then ``python -X importtime`` of the modules ``escalate status`` imports beyond
its parser (its command, the connection, the audit database's migration check): the total and the costliest
packages (their own time, summed). No server is needed for these. With ``--address`` and ``--status-id``
(and who acts, ``ESCALATE_AS_ID``, and the payload keys in the environment, as for any ``escalate`` call)
it also times ``escalate status ID`` against that server, and takes the import costs from that real call.
The load average is printed before and after: on a shared machine, compare figures taken at like loads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from benchmarks.options import whole_number

PYTHON = sys.executable
ESCALATE = str(Path(PYTHON).with_name("escalate"))
STATUS_MODULES = ("starter.cli.parser", "starter.cli.reading", "starter.cli.service", "activities.db.migrate")
"""What ``escalate status`` imports: the parser, then, when it runs, its command module (which brings the
application layer's core and the directory), the connection, and the migration check of the audit log."""


def median_time(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall seconds of ``runs`` runs of ``cmd``; a run that fails stops the benchmark."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return statistics.median(times)


def import_costs(cmd: list[str], env: dict[str, str]) -> tuple[float, Counter[str]]:
    """``-X importtime`` of ``cmd`` (a Python command line): total seconds, and each top-level package's
    own import time summed (microseconds)."""
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    by_package: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        by_package[name.strip().split(".")[0]] += int(own)
    return sum(by_package.values()) / 1e6, by_package


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=whole_number(1, 1000), default=10, help="runs of each (default 10)")
    parser.add_argument("--top", type=whole_number(1), default=12, help="packages listed (default 12)")
    parser.add_argument("--address", help="a Temporal server to time a real `escalate status` against")
    parser.add_argument("--status-id", help="the escalation `escalate status` reads (with --address)")
    args = parser.parse_args()
    if bool(args.address) != bool(args.status_id):
        parser.error("--address and --status-id go together")
    env = dict(os.environ)
    print(f"{args.runs} runs each, {load()}")
    bare = median_time([PYTHON, "-c", "pass"], args.runs, env)
    print(f"python -c pass                {bare:6.3f} s")
    for label, cmd in (
        ("escalate --help", [ESCALATE, "--help"]),
        ("escalate status --help", [ESCALATE, "status", "--help"]),
    ):
        took = median_time(cmd, args.runs, env)
        print(f"{label:29} {took:6.3f} s  ({took - bare:+.3f} s beyond python)")
    imports = [PYTHON, "-X", "importtime", "-c", "import " + ", ".join(STATUS_MODULES)]
    if args.address:
        env["TEMPORAL_ADDRESS"] = args.address
        status = [ESCALATE, "status", args.status_id]
        took = median_time(status, args.runs, env)
        print(f"{'escalate status ID':29} {took:6.3f} s  ({took - bare:+.3f} s beyond python)")
        imports = [PYTHON, "-X", "importtime", "-m", "starter.cli", "status", args.status_id]
    total, by_package = import_costs(imports, env)
    print(f"imports of the status path: {total:.3f} s (one run); costliest packages, their own time:")
    for name, micros in by_package.most_common(args.top):
        print(f"  {name:27} {micros / 1e6:6.3f} s")
    print(f"done, {load()}")


if __name__ == "__main__":
    main()
