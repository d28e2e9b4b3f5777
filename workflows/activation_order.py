"""Replaying escalations whose history split an update from an activity result (a worker-side runner).

The SDK (temporalio 1.35, core's "v1" history chunker) hands a workflow one activation holding both an
update and an activity result (or timer) that arrived in the same workflow task, and runs the update first.
A warm worker that was given the whole history again (after a Temporal server restart) can instead have
run the activity result in one activation and the update in a second one of the same task, so the history
holds the escalation's own commands *before* the update's acceptance. Replaying that history later (on
another worker, or after the cache is cleared) regroups the two and fails with ``[TMPRL1100] Update
machine does not handle this event``; the escalation's ``state`` query then fails for ever. Saved
examples: ``tests/histories/evidence-*.json``.

Two halves of the fix:

* Escalations started since ``workflows.escalation.BOUNDED`` refuse an update (``Busy``) in a workflow
  task in which they have already acted, so their histories never hold that order; nothing here touches
  them (they are recognised by that patch's marker).
* For escalations started before, the order a task was first run in cannot be read from the activation.
  The SDK's order is right for most, so it is tried first; when replay of a run fails with a
  nondeterminism error at an event just after such a task, this runner remembers that task and, on the
  next attempt (Temporal retries the workflow task), runs it split: the activity result first, then the
  update. Each such task costs one failed workflow task per worker process, once.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import RemoveFromCache, WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import (
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)

from workflows.escalation import BOUNDED, LOCAL_CLOCK

_BOUNDED_PATCHES = {BOUNDED, LOCAL_CLOCK}
"""Patches of escalations that refuse an update mixed with an activity result (``Busy``): LOCAL_CLOCK
stands for BOUNDED in escalations started since."""

_EVENT_ID = re.compile(r"HistoryEvent\(id: (\d+)")
_RESULTS = ("resolve_activity", "fire_timer")

_split_tasks: dict[str, set[int]] = {}
"""Per run id, the workflow tasks (by history length) to replay split. Kept for the worker's life."""
_lock = threading.Lock()


def tasks_to_split(run_id: str) -> set[int]:
    """The tasks of ``run_id`` this process has learned to replay split (for tests and diagnostics)."""
    with _lock:
        return set(_split_tasks.get(run_id, set()))


def activate_split(instance: WorkflowInstance, act: WorkflowActivation) -> WorkflowActivationCompletion:
    """Run ``act`` as two activations of one workflow task: everything but its updates, then its updates.

    This is the order a warm worker used when it was handed the whole history again; the commands of both
    are returned together, as one task's.
    """
    first, second = WorkflowActivation(), WorkflowActivation()
    first.CopyFrom(act)
    second.CopyFrom(act)
    del first.jobs[:]
    del second.jobs[:]
    for job in act.jobs:
        (second if job.HasField("do_update") else first).jobs.append(job)
    done = instance.activate(first)
    if not done.HasField("successful"):
        return done
    then = instance.activate(second)
    if not then.HasField("successful"):
        return then
    done.successful.commands.extend(then.successful.commands)
    flags = set(done.successful.used_internal_flags) | set(then.successful.used_internal_flags)
    del done.successful.used_internal_flags[:]
    done.successful.used_internal_flags.extend(sorted(flags))
    return done


class ActivationOrderRunner(WorkflowRunner):
    """Wraps another runner (the sandbox) so that pre-fix histories with split tasks replay."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self._inner = inner

    def prepare_workflow(self, defn: object) -> None:
        self._inner.prepare_workflow(defn)  # type: ignore[arg-type]

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Instance(self._inner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: object) -> None:
        self._inner.set_worker_level_failure_exception_types(types)  # type: ignore[arg-type]


class _Instance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner
        self._bounded: bool | None = None
        self._mixed: list[int] = []  # history lengths of replayed tasks that held an update and a result

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        if self._bounded is None:
            self._bounded = any(
                job.HasField("notify_has_patch") and job.notify_has_patch.patch_id in _BOUNDED_PATCHES
                for job in act.jobs
            )
        self._learn(act)
        kinds = [job.WhichOneof("variant") for job in act.jobs]
        mixed = act.is_replaying and "do_update" in kinds and any(k in _RESULTS for k in kinds)
        if not mixed or self._bounded:
            return self._inner.activate(act)
        self._mixed.append(act.history_length)
        if act.history_length not in tasks_to_split(act.run_id):
            return self._inner.activate(act)
        return activate_split(self._inner, act)

    def _learn(self, act: WorkflowActivation) -> None:
        """After a nondeterminism error, remember the task that caused it, to split it next time."""
        for job in act.jobs:
            if not job.HasField("remove_from_cache"):
                continue
            evict = job.remove_from_cache
            if evict.reason != RemoveFromCache.EvictionReason.NONDETERMINISM or not self._mixed:
                continue
            found = _EVENT_ID.search(evict.message)
            failed_at = int(found.group(1)) if found else None
            candidates = [n for n in self._mixed if failed_at is None or n < failed_at]
            if candidates:
                with _lock:
                    _split_tasks.setdefault(act.run_id, set()).add(max(candidates))

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()
