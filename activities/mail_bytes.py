"""A notification's message as the bytes sent over SMTP, written directly instead of by ``EmailMessage``.

Python's ``email`` package parses every header into a tree when it is set and folds it again when the
message is written; for a two-part message that is most of the CPU a notification costs. ``MessageWriter``
writes the same bytes that ``EmailMessage`` with ``MESSAGE_POLICY`` writes for the message
``SmtpNotifier`` builds (``plain_message``): the headers every recipient shares are folded once per
notification by the ``email`` package itself, each distinct subject once, and the rest (``Reply-To``,
``Message-ID``, the MIME structure and the two bodies) is written here, which is exact for what this
project puts there: a dot-atom reply address, a hex Message-ID, and text whose lines fit in 998 bytes
(sent ``7bit``, or ``8bit`` when not ASCII). A body with a longer line (which the ``email`` package would
send quoted-printable or base64) makes ``message`` return None, and the caller builds that message with
``plain_message`` instead. ``tests/test_mail_bytes.py`` checks the two byte for byte.
"""

from __future__ import annotations

import functools
import random
import re
import sys
from email import policy
from email.headerregistry import Address, BaseHeader
from email.message import EmailMessage

__all__ = ["MESSAGE_POLICY", "HeaderValue", "MessageWriter", "plain_message", "shared_header"]

MESSAGE_POLICY = policy.SMTP.clone(max_line_length=998)
"""CRLF lines; headers folded only past RFC 5322's 998-character limit. Python's folding at 78 can put a
space on both sides of an encoded word (the em dash in subjects), which mail readers show as two spaces."""

_CRLF = b"\r\n"
_MAX_LINE = 998
_BOUNDARY_DIGITS = f"%0{len(repr(sys.maxsize - 1))}d"
"""How ``email.generator`` numbers a boundary (``===============<digits>==``)."""


HeaderValue = str | tuple[tuple[str, str], ...]
"""A header's text, or an address list as (display name, address) pairs."""


@functools.lru_cache(maxsize=1024)
def shared_header(name: str, value: HeaderValue) -> tuple[BaseHeader, bytes]:
    """The header as the ``email`` package parses it, and its line as it folds it for ``MESSAGE_POLICY``.

    Kept for the next notification: most repeat the sender, recipients and thread of the last ones.
    Raises ``ValueError`` or ``IndexError`` for what the ``email`` package cannot take.
    """
    given = value if isinstance(value, str) else [Address(display_name=d, addr_spec=a) for d, a in value]
    header = MESSAGE_POLICY.header_factory(name, given)
    return header, MESSAGE_POLICY.fold_binary(name, header)


def plain_message(
    *, subject: str, reply: str, message_id: str, shared: list[BaseHeader], text: str, html: str
) -> EmailMessage:
    """The message built with the ``email`` package: the reference for ``MessageWriter`` and its
    fallback. Raises ``ValueError`` or ``IndexError`` for a subject or reply address it cannot take."""
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["Subject"] = subject
    msg["Reply-To"] = reply
    msg["Message-ID"] = message_id
    for header in shared:  # already parsed: stored as they are
        msg[header.name] = header
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def _body(text: str) -> tuple[bytes, bytes] | None:
    """The transfer encoding and the CRLF body the ``email`` package gives ``text``, when it sends it as
    it is (every line at most 998 bytes); None when it would encode it."""
    lines = text.encode("utf-8").splitlines()
    if lines and max(len(line) for line in lines) > _MAX_LINE:
        return None
    body = _CRLF.join(lines) + _CRLF
    return (b"7bit" if body.isascii() else b"8bit"), body


class MessageWriter:
    """Writes one notification's messages, with the headers they share (``shared_header``'s)."""

    def __init__(self, shared: list[tuple[BaseHeader, bytes]]) -> None:
        self.shared = [header for header, _ in shared]
        self._shared = b"".join(line for _, line in shared)
        self._subjects: dict[str, bytes] = {}

    def _subject(self, subject: str) -> bytes:
        """The folded Subject line (encoded words for what is not ASCII), folded once per distinct text."""
        line = self._subjects.get(subject)
        if line is None:
            _, header = MESSAGE_POLICY.header_store_parse("Subject", subject)  # as ``msg["Subject"] =``
            line = self._subjects[subject] = MESSAGE_POLICY.fold_binary("Subject", header)
        return line

    def message(self, *, subject: str, reply: str, message_id: str, text: str, html: str) -> bytes | None:
        """The message's bytes, or None when a body needs encoding (build it with ``plain_message``).

        ``reply`` is a dot-atom address and ``message_id`` ``<hex@domain>``: both are written as given.
        Raises ``ValueError`` or ``IndexError`` for a subject the ``email`` package cannot take.
        """
        plain, rich = _body(text), _body(html)
        if plain is None or rich is None:
            return None
        parts = [
            b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: '
            + plain[0]
            + b"\r\n\r\n"
            + plain[1],
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
            + rich[0]
            + b"\r\nMIME-Version: 1.0\r\n\r\n"
            + rich[1],
        ]
        boundary = _boundary(parts)
        head = (
            self._subject(subject)
            + f"Reply-To: {reply}\r\nMessage-ID: {message_id}\r\n".encode("ascii")
            + self._shared
            + b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="'
            + boundary
            + b'"\r\n\r\n'
        )
        delimiter = b"\r\n--" + boundary
        return b"".join(
            [head, b"--", boundary, _CRLF, parts[0], delimiter, _CRLF, parts[1], delimiter, b"--\r\n"]
        )


def _boundary(parts: list[bytes]) -> bytes:
    """A boundary as ``email.generator`` makes one: random, and not a line of the parts."""
    boundary = "=" * 15 + _BOUNDARY_DIGITS % random.randrange(sys.maxsize) + "=="
    encoded = boundary.encode("ascii")
    text = _CRLF.join(parts)
    if b"--" + encoded not in text:
        return encoded
    # Only where the text holds something like it: the generator's own search, and its suffixes.
    b = boundary
    counter = 0
    while re.search(("^--" + re.escape(b) + "(--)?$").encode("ascii"), text, re.MULTILINE):
        b = f"{boundary}.{counter}"
        counter += 1
    return b.encode("ascii")
