"""The worker's runner answers the SDK's serialization-context questions itself only where the answer cannot
change a payload: the product's converter takes no context; one that does keeps the sandbox's answers."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.converter import (
    DataConverter,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from starter.connection import DATA_CONVERTER
from starter.context_free_runner import ContextFreeRunner, takes_no_context
from worker import workflow_runner


class _ContextCodec(WithSerializationContext):
    """A codec that would encrypt per workflow (a key derived from the workflow id, say)."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    def with_context(self, context: SerializationContext) -> Any:
        return _ContextCodec(context)

    async def encode(self, payloads: Any) -> Any:
        return list(payloads)

    async def decode(self, payloads: Any) -> Any:
        return list(payloads)


def test_the_products_converter_takes_no_context() -> None:
    assert takes_no_context(DATA_CONVERTER)
    sandbox = SandboxedWorkflowRunner()
    assert isinstance(ContextFreeRunner.wrap(sandbox, DATA_CONVERTER), ContextFreeRunner)


def test_a_converter_that_takes_context_keeps_the_sandboxs_answers() -> None:
    contextual = dataclasses.replace(DATA_CONVERTER, payload_codec=_ContextCodec())  # type: ignore[arg-type]
    assert not takes_no_context(contextual)
    sandbox = SandboxedWorkflowRunner()
    assert ContextFreeRunner.wrap(sandbox, contextual) is sandbox
    # The worker's runner (inside the activation-order wrapper) follows the converter it is given.
    assert isinstance(workflow_runner(DATA_CONVERTER)._inner, ContextFreeRunner)  # type: ignore[attr-defined]
    assert isinstance(workflow_runner(contextual)._inner, SandboxedWorkflowRunner)  # type: ignore[attr-defined]


def test_a_plain_data_converter_takes_no_context() -> None:
    assert takes_no_context(DataConverter())
