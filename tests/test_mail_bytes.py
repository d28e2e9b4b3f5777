"""``MessageWriter`` writes, byte for byte, what ``EmailMessage`` writes for the same notification message."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader
from email.utils import format_datetime

import pytest

from activities.mail_bytes import MESSAGE_POLICY, HeaderValue, MessageWriter, plain_message, shared_header

make = MESSAGE_POLICY.header_factory
REPLY = "escalations+MI98TmelOJFtGwbv-Fr7_xck@replies.example.org"
MESSAGE_ID = "<3c5471fb10434330eb5e41a22bb9c45ee7405156@replies.example.org>"


Headers = list[tuple[str, HeaderValue]]


def shared(to: list[Address], cc: list[Address], mail_from: str = "escalations@example.org") -> Headers:
    """The headers a notification's messages share, as ``SmtpNotifier`` gives them."""

    def pairs(addresses: list[Address]) -> HeaderValue:
        return tuple((a.display_name, a.addr_spec) for a in addresses)

    headers: Headers = [("From", mail_from), ("To", pairs(to))]
    if cc:
        headers.append(("Cc", pairs(cc)))
    thread = "<wigan-C123-0001@replies.example.org>"
    headers += [
        ("References", thread),
        ("In-Reply-To", thread),
        ("Date", format_datetime(datetime(2026, 12, 18, 10, 0, tzinfo=UTC))),
        ("Auto-Submitted", "auto-generated"),
        ("X-Escalation-Id", "wigan-C123-0001"),
        ("X-Escalation-Event", "sent_to_stage"),
    ]
    return headers


def fresh(headers: Headers) -> list[BaseHeader]:
    """The same headers made by the ``email`` package anew (no cache)."""
    return [
        make(name, value if isinstance(value, str) else [Address(d, addr_spec=a) for d, a in value])
        for name, value in headers
    ]


def writer_for(headers: Headers) -> MessageWriter:
    return MessageWriter([shared_header(name, value) for name, value in headers])


PEOPLE = [
    Address("Emery Madeup", addr_spec="emery.madeup@example.org"),
    Address("Zoë O'Brien-Ławska", addr_spec="zoe@example.org"),
    Address("Smith, J. (Team Manager)", addr_spec="j.smith@example.org"),
]
HTML = '<!DOCTYPE html>\n<html lang="en-GB">\n<body><p>Dear Emery &amp; Zoë,</p></body>\n</html>\n'
SUBJECTS = [
    "[wigan-C123-0001] Stage 1: concern raised with you — answer by Monday 21 December 2026",
    "[wigan-C123-0001] Stage 1: plain ASCII",
    "[wigan-C123-0001] looks encoded =?utf-8?q?x?= but is not",
    "[wigan-C123-0001] " + "very long subject " * 27,
]
TEXTS = [
    "Dear Emery,\n\nA concern was raised.\n",
    "Dear Zoë,\n\nAn answer — with an em dash, curly ‘quotes’ and 😀.\n",
    "",
    "\n",
    "From the start a line begins with From\n.\nA dot line.\r\nCR LF inside\rand a lone CR\n",
    "x" * 998 + "\n",
    "é" * 499 + "\n",
    "form feed\x0cand line separator\u2028stay in one line\n",
]


def both(subject: str, text: str, html: str, headers: Headers, seed: int = 7) -> tuple[bytes | None, bytes]:
    """The writer's bytes and the ``email`` package's, with the same random boundary."""
    writer = writer_for(headers)
    random.seed(seed)
    fast = writer.message(subject=subject, reply=REPLY, message_id=MESSAGE_ID, text=text, html=html)
    random.seed(seed)
    msg = plain_message(
        subject=subject, reply=REPLY, message_id=MESSAGE_ID, shared=fresh(headers), text=text, html=html
    )
    return fast, msg.as_bytes()


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("text", TEXTS)
def test_the_writer_writes_what_the_email_package_writes(subject: str, text: str) -> None:
    for headers in (shared(PEOPLE[:1], PEOPLE[1:]), shared(PEOPLE, []), shared(PEOPLE[2:], PEOPLE[:1])):
        fast, slow = both(subject, text, HTML, headers)
        assert fast is not None
        assert fast == slow


def test_a_sender_with_a_display_name_and_every_subject_of_one_notification_folded_alike() -> None:
    headers = shared(
        PEOPLE[:2], PEOPLE[2:], mail_from="Wigan Council — escalations <escalations@example.org>"
    )
    writer = writer_for(headers)
    for subject in SUBJECTS * 2:  # each distinct subject folded once, then reused
        random.seed(3)
        fast = writer.message(subject=subject, reply=REPLY, message_id=MESSAGE_ID, text=TEXTS[1], html=HTML)
        random.seed(3)
        slow = plain_message(
            subject=subject,
            reply=REPLY,
            message_id=MESSAGE_ID,
            shared=fresh(headers),
            text=TEXTS[1],
            html=HTML,
        )
        assert fast == slow.as_bytes()


@pytest.mark.parametrize("long_line", ["x" * 999, "é" * 500])
@pytest.mark.parametrize("where", ["text", "html"])
def test_a_body_line_past_998_bytes_is_left_to_the_email_package(long_line: str, where: str) -> None:
    text, html = (long_line + "\n", HTML) if where == "text" else (TEXTS[0], HTML + long_line)
    writer = writer_for(shared(PEOPLE[:1], []))
    assert (
        writer.message(subject=SUBJECTS[0], reply=REPLY, message_id=MESSAGE_ID, text=text, html=html) is None
    )


def test_a_body_holding_the_boundary_gets_the_boundary_the_email_package_would_choose() -> None:
    random.seed(11)
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
    headers = shared(PEOPLE[:1], [])
    for text in (
        f"--{boundary}\n",
        f"a\n--{boundary}--\nb\n",
        f"--{boundary}x\n",
        f"--{boundary}\n--{boundary}.0\n",
    ):
        for plain, html in ((text, HTML), (TEXTS[0], HTML + text)):
            fast, slow = both(SUBJECTS[0], plain, html, headers, seed=11)
            assert fast == slow


def test_a_subject_the_email_package_refuses_is_refused_alike() -> None:
    writer = writer_for(shared(PEOPLE[:1], []))
    with pytest.raises(ValueError):
        plain_message(subject="a\nb", reply=REPLY, message_id=MESSAGE_ID, shared=[], text="", html="")
    with pytest.raises(ValueError):
        writer.message(subject="a\nb", reply=REPLY, message_id=MESSAGE_ID, text="", html="")
