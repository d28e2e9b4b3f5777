"""Connecting to Temporal: every client of this project uses the pydantic data converter."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


def temporal_address(given: str | None = None) -> str:
    """``given``, else ``TEMPORAL_ADDRESS``, else the local default."""
    return given or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS)


def temporal_namespace(given: str | None = None) -> str:
    """``given``, else ``TEMPORAL_NAMESPACE``, else ``default``."""
    return given or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE)


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to ``address`` (or ``TEMPORAL_ADDRESS``) in ``namespace`` (or ``TEMPORAL_NAMESPACE``)."""
    return await Client.connect(
        temporal_address(address), namespace=temporal_namespace(namespace), data_converter=DATA_CONVERTER
    )
