"""A short Temporal-using command must exit 0 every time (see ``starter/clean_exit.py``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

REPO_ROOT = Path(__file__).resolve().parent.parent

SMOKE_RUNS = 30
SMOKE_PARALLEL = 2
SMOKE_TIMEOUT_S = 120.0


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # A crash at teardown then leaves a Python-level trace on stderr, which the failure message shows.
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# --- run_then_exit itself, in a subprocess --------------------------------------------------------

_SCRIPT = """
import asyncio, sys
from starter.clean_exit import run_then_exit

async def main():
    await asyncio.sleep(0)
    print("stdout-before-exit", end="")          # unterminated and piped: only a flush gets it out
    print("stderr-before-exit", end="", file=sys.stderr)
{body}

run_then_exit(main)
"""


def _run_script(body: str) -> subprocess.CompletedProcess[str]:
    script = _SCRIPT.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("return 3", 3, id="returns-3"),
        pytest.param("return None", 0, id="returns-None"),
        pytest.param("return 0", 0, id="returns-0"),
        pytest.param("raise KeyboardInterrupt", 130, id="keyboard-interrupt"),
        pytest.param("raise SystemExit(4)", 4, id="system-exit"),
    ],
)
def test_run_then_exit_code(body: str, expected: int) -> None:
    proc = _run_script(body)
    assert proc.returncode == expected, proc.stderr
    assert proc.stdout == "stdout-before-exit"
    assert proc.stderr.startswith("stderr-before-exit")


def test_run_then_exit_exception_prints_traceback_and_exits_1() -> None:
    proc = _run_script("raise ValueError('boom from main')")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ValueError: boom from main" in proc.stderr
    assert proc.stdout == "stdout-before-exit"


def test_run_then_exit_flushes_logging() -> None:
    proc = _run_script(
        """
        import logging
        handler = logging.StreamHandler(sys.stderr)
        handler.terminator = ""
        logging.getLogger("t").addHandler(handler)
        logging.getLogger("t").warning("logged-before-exit")
        return 0
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "logged-before-exit" in proc.stderr


# --- the real thing: `worker.py --smoke` against a dev server, many times ---------------------------


@pytest.mark.slow
async def test_worker_smoke_exits_zero_every_time(dev_server_env: WorkflowEnvironment) -> None:
    """`python worker.py --smoke --address ADDR` connects, runs one short escalation, exits 0: 30 of 30."""
    worker_py = REPO_ROOT / "worker.py"
    assert worker_py.is_file(), f"{worker_py} is missing (it provides the `--smoke` command under test)"
    addr = dev_server_env.client.service_client.config.target_host
    cmd = [sys.executable, "worker.py", "--smoke", "--address", addr]
    env = _child_env()
    gate = asyncio.Semaphore(SMOKE_PARALLEL)

    async def one(run: int) -> tuple[int, int | None, str]:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=REPO_ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), SMOKE_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                _, err = await proc.communicate()
                return run, None, f"timed out after {SMOKE_TIMEOUT_S:.0f}s\n" + err.decode(errors="replace")
            return run, proc.returncode, err.decode(errors="replace")

    results = await asyncio.gather(*(one(i) for i in range(1, SMOKE_RUNS + 1)))
    failures = [r for r in results if r[1] != 0]
    report = "\n".join(
        f"--- run {run}: exit code {code} ---\n{stderr[-4000:].rstrip()}" for run, code, stderr in failures
    )
    assert not failures, f"{len(failures)} of {SMOKE_RUNS} runs of {' '.join(cmd)} did not exit 0:\n{report}"
