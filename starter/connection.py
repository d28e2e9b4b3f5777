"""Connecting to Temporal: every client of this project uses the pydantic data converter."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to ``address`` (or ``TEMPORAL_ADDRESS``) in ``namespace`` (or ``TEMPORAL_NAMESPACE``)."""
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
        namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE),
        data_converter=DATA_CONVERTER,
    )
