"""Running a benchmark's worker process: handlers first, then the ready line, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from temporalio.worker import Worker


async def serve_until_stopped(worker: Worker, ready_line: str) -> int:
    """Run ``worker``; print ``ready_line`` once it polls and the stop handlers are in place; exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(ready_line, flush=True)
        await stop.wait()
    return 0
