"""The bare Temporal workflow ``benchmarks/lifecycle.py`` measures the product against, and its worker.

Same shape as the standard lifecycle: started, then three updates, seven no-op activities in all (two at
the start, two per update but one for the last), run by the same data converter (pydantic, encrypted) and
the same sandbox and activity thread pool as the escalation worker, so only the product's own work
differs. In a module of its own so that the workflow sandbox can import it.

    python -m benchmarks.bare --address HOST:PORT --task-queue QUEUE   # the worker, until SIGTERM
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

WORKFLOW_NAME = "BareLifecycle"
UPDATES = 3
READY_LINE = "worker polling task queue"


@activity.defn(name="bare_noop")
def noop(step: int) -> int:
    """Does nothing: the cost measured is Temporal's (scheduling, history, payloads)."""
    return step


@workflow.defn(name=WORKFLOW_NAME)
class BareLifecycle:
    def __init__(self) -> None:
        self.updates = 0
        self.running = 0

    @workflow.run
    async def run(self, label: str) -> int:
        await self._work(2)
        await workflow.wait_condition(lambda: self.updates >= UPDATES and self.running == 0)
        return self.updates

    async def _work(self, activities: int) -> None:
        self.running += 1
        for step in range(activities):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        self.running -= 1

    @workflow.update
    async def act(self, text: str) -> int:
        self.updates += 1
        await self._work(2 if self.updates < UPDATES else 1)
        return self.updates


async def serve(address: str, task_queue: str) -> int:
    from starter.connection import DATA_CONVERTER  # not at module level: kept out of the sandbox

    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BareLifecycle],
        activities=[noop],
        activity_executor=ThreadPoolExecutor(max_workers=8),
    )
    from benchmarks.serving import serve_until_stopped

    return await serve_until_stopped(worker, f"{READY_LINE} {task_queue!r}")


def main() -> None:
    from starter.clean_exit import run_then_exit

    parser = argparse.ArgumentParser(description="the bare lifecycle's worker")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    run_then_exit(lambda: serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
