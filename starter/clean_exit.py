"""Run an async entry point, then leave the process with ``os._exit``.

temporalio 1.30-1.35 on Python 3.11 aborts or segfaults at interpreter exit in roughly one run in five,
after all the work is done: the Rust core (and its Tokio threads) is torn down while the interpreter is
finalising (a known upstream bug). A command whose job succeeded would then report a crash. Skipping
interpreter finalisation with ``os._exit`` avoids the faulty teardown; before that, everything that
would otherwise be lost (buffered stdout/stderr, logging handlers) is flushed here, so a caller gets the
real exit code and all of the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import NoReturn

__all__ = ["flush_all", "run_then_exit"]


def flush_all() -> None:
    """Flush logging handlers and the standard streams; never raises."""
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


def _exit_code(value: object) -> int:
    """Map a return value or ``SystemExit.code`` to a process exit code, as Python itself does."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def run_then_exit(main: Callable[[], Awaitable[int | None]]) -> NoReturn:
    """Run ``main()`` with ``asyncio.run`` and end the process with its exit code via ``os._exit``.

    ``None`` means 0; an int is the exit code; ``KeyboardInterrupt`` gives 130; ``SystemExit`` keeps its
    code; any other exception prints its traceback and gives 1.
    """

    async def _runner() -> int | None:
        return await main()

    code: int
    try:
        code = _exit_code(asyncio.run(_runner()))
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    flush_all()
    os._exit(code)
