"""Connecting to Temporal: every client of this project uses the pydantic data converter, with every
payload encrypted by ``starter.codec.EncryptionCodec`` (keys from ``ESCALATION_PAYLOAD_KEYS``)."""

from __future__ import annotations

import dataclasses
import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from starter.codec import EncryptionCodec

CODEC = EncryptionCodec()
DATA_CONVERTER = dataclasses.replace(pydantic_data_converter, payload_codec=CODEC)
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


def temporal_address(given: str | None = None) -> str:
    """``given``, else ``TEMPORAL_ADDRESS``, else the local default."""
    return given or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS)


def temporal_namespace(given: str | None = None) -> str:
    """``given``, else ``TEMPORAL_NAMESPACE``, else ``default``."""
    return given or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE)


async def connect(address: str | None = None, namespace: str | None = None, *, lazy: bool = False) -> Client:
    """Connect to ``address`` (or ``TEMPORAL_ADDRESS``) in ``namespace`` (or ``TEMPORAL_NAMESPACE``).

    Raises ``starter.codec.PayloadKeyError`` (one line, naming ``ESCALATION_PAYLOAD_KEYS``) before
    connecting when no usable payload key is configured.
    """
    CODEC.keyring  # noqa: B018 - read the keys now: refuse before anything is sent
    return await Client.connect(
        temporal_address(address),
        namespace=temporal_namespace(namespace),
        data_converter=DATA_CONVERTER,
        lazy=lazy,
    )
