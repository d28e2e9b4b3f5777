"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 (a free port), capturing every message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.temporal_servers import free_port, require_or_skip


@dataclass
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class Capture:
    """aiosmtpd handler keeping every accepted message; ``refuse`` holds addresses to answer 451 for."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        message = message_from_bytes(content, policy=default_policy)
        with self._lock:
            self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def start_capture(handler: Capture, **kwargs: Any) -> Controller:
    try:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
    except Exception as exc:
        require_or_skip(f"the aiosmtpd test SMTP server could not start: {exc!r}")
    return controller


@pytest.fixture
def smtp_server() -> Iterator[tuple[Capture, int]]:
    handler = Capture()
    controller = start_capture(handler)
    try:
        yield handler, controller.port
    finally:
        controller.stop()
