"""A workflow runner that spares the sandbox a question per payload when the answer cannot matter.

For every payload it encodes or decodes, the SDK's worker asks the workflow instance which serialization
context applies (and which external-storage context), so that a converter or codec that takes a context
gets the right one. The sandbox answers by compiling and running a snippet of code inside itself each time:
about a sixth of the worker's CPU in a busy lifecycle. When the data converter takes no context (none of its
parts changes under ``with_context``) and stores nothing externally, every answer leads to the same
converter, so this runner answers at once: no context, and an empty store context.
"""

from __future__ import annotations

from typing import Any

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    StorageDriverStoreContext,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner


def takes_no_context(converter: DataConverter) -> bool:
    """Whether ``converter`` is the same whatever serialization context it is given, and stores nothing
    outside the history."""
    probes = [
        WorkflowSerializationContext(namespace="probe", workflow_id="probe"),
        ActivitySerializationContext(
            namespace="probe",
            activity_id="1",
            activity_type="probe",
            activity_task_queue="probe",
            workflow_id="probe",
            workflow_type="probe",
            is_local=False,
        ),
    ]
    return converter.external_storage is None and all(converter.with_context(p) is converter for p in probes)


class ContextFreeRunner(WorkflowRunner):
    """Wraps a runner (the sandbox); its instances answer the context questions without entering it.

    Only for a data converter that ``takes_no_context``: ``wrap`` returns the inner runner otherwise."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self._inner = inner

    @staticmethod
    def wrap(inner: WorkflowRunner, converter: DataConverter) -> WorkflowRunner:
        return ContextFreeRunner(inner) if takes_no_context(converter) else inner

    def prepare_workflow(self, defn: Any) -> None:
        self._inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Instance(self._inner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Any) -> None:
        self._inner.set_worker_level_failure_exception_types(types)


class _Instance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> None:
        return None  # the context-free converter, which every context would have given anyway

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()
