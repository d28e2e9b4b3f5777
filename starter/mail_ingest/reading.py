"""Reading one inbound message (pure: no database, no Temporal): who sent it, which reply tokens and
Message-IDs it carries, whether it is an automatic reply or a bounce, the reply's own text and what it asks.

The reply's own text is the newest part of the message without quoted text and signatures, as
``mail-parser-reply`` finds them (Outlook desktop and mobile, Gmail, Apple Mail, "Sent from my iPhone" and
the like, in several languages); an HTML-only message is turned into text with ``html2text`` first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Literal

import html2text
from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

__all__ = ["Intent", "ParsedMail", "decide", "find_date", "parse", "tokens_in"]

ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "X-Envelope-To", "Envelope-To")
"""Where a plus-addressed reply token may be: the headers, and what mail servers add of the envelope."""
TEXT_MAX = 20_000
"""The application layer's bound on free text: a longer reply is cut there (the message itself is kept)."""

_PARSER = EmailReplyParser(languages=["en"])


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    from_address: str
    subject: str
    addresses: list[str]
    references: list[str]
    auto_reply: str | None
    """Why it is an automatic reply (RFC 3834 headers, an out-of-office subject or text), or None."""
    bounce: bool
    auth: dict[str, str]
    """``dkim``/``spf``/``dmarc`` -> result, from Authentication-Results (absent: not checked upstream)."""
    text: str
    """The reply's own text: no quoted text, no signature."""
    attachments: list[str] = field(default_factory=list)


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError):  # a header the email package cannot parse: read as nothing
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _all(message: EmailMessage, name: str) -> list[str]:
    try:
        return [str(v) for v in message.get_all(name) or []]
    except (ValueError, IndexError):
        return []


def parse(raw: bytes) -> ParsedMail:
    """Read ``raw`` (RFC 822 bytes); never raises for a malformed message (it reads as little as it can)."""
    message = message_from_bytes(raw, _class=EmailMessage, policy=default_policy)
    message_id = _header(message, "Message-ID")[:255] or f"<sha256-{hashlib.sha256(raw).hexdigest()}@inbound>"
    from_address = parseaddr(_header(message, "From"))[1].strip().lower()
    addresses = [a.strip() for _, a in getaddresses([v for h in ADDRESS_HEADERS for v in _all(message, h)])]
    references = re.findall(
        r"<[^<>\s]+>", " ".join(_all(message, "In-Reply-To") + _all(message, "References"))
    )
    bounce = _is_bounce(message, from_address)
    body, attachments = _body(message)
    text = reply_text(body)
    return ParsedMail(
        message_id=message_id,
        from_address=from_address,
        subject=_header(message, "Subject")[:500],
        addresses=[a for a in addresses if a],
        references=list(dict.fromkeys(references)),
        auto_reply=None if bounce else _auto_reply(message, text),
        bounce=bounce,
        auth=_authentication(_all(message, "Authentication-Results")),
        text=text[:TEXT_MAX],
        attachments=attachments,
    )


def tokens_in(addresses: list[str], reply_local: str, reply_domain: str) -> list[str]:
    """The tokens of ``<reply_local>+<token>@<reply_domain>`` among ``addresses``, in order, once each. The
    local part and domain match in any case; the token is kept as written (it is case-sensitive)."""
    pattern = re.compile(
        rf"^{re.escape(reply_local)}\+([A-Za-z0-9_-]{{1,200}})@{re.escape(reply_domain)}$", re.IGNORECASE
    )
    found = [m.group(1) for a in addresses if (m := pattern.match(a))]
    return list(dict.fromkeys(found))


# --- bounces and automatic replies -------------------------------------------------------------------------

_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|auto:|out of (the )?office|ooo\b|"
    r"away from (the )?office|on (annual )?leave|abwesenheitsnotiz|r[ée]ponse automatique)",
    re.IGNORECASE,
)
_AUTO_TEXT = re.compile(
    r"\b(i am|i'm|i will be)\s+(currently\s+)?(out of (the )?office|away from (the|my) (office|desk)|"
    r"on (annual |parental |maternity |sick )?leave|away until|not in the office)",
    re.IGNORECASE,
)
_RETURN = re.compile(r"\b(return|back (in|on)|limited access|until)\b", re.IGNORECASE)


def _is_bounce(message: EmailMessage, from_address: str) -> bool:
    """A delivery status notification (RFC 3464), or mail from a mailer daemon or with a null sender."""
    if message.get_content_type() == "multipart/report":
        return True
    if any(part.get_content_type() == "message/delivery-status" for part in message.walk()):
        return True
    return bool(_DAEMONS.match(from_address)) or _header(message, "Return-Path") == "<>"


def _auto_reply(message: EmailMessage, text: str) -> str | None:
    submitted = _header(message, "Auto-Submitted").lower()
    if submitted and submitted != "no":
        return f"an automatic reply (Auto-Submitted: {submitted})"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if _header(message, name):
            return f"an automatic reply ({name})"
    precedence = _header(message, "Precedence").lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return f"an automatic reply (Precedence: {precedence})"
    if _AUTO_SUBJECT.match(_header(message, "Subject")):
        return "an automatic reply (its subject says out of office or automatic reply)"
    head = text[:600]
    if _AUTO_TEXT.search(head) and _RETURN.search(head) and len(text) < 1200:
        return "an out-of-office reply"
    return None


def _authentication(values: list[str]) -> dict[str, str]:
    """The first result of each of dkim, spf and dmarc in the Authentication-Results headers (the header
    the receiving server adds is the topmost one)."""
    found: dict[str, str] = {}
    for value in values:
        for method, result in re.findall(r"\b(dkim|spf|dmarc)\s*=\s*([a-z]+)", value, re.IGNORECASE):
            found.setdefault(method.lower(), result.lower())
    return found


# --- the reply's text ---------------------------------------------------------------------------------------


def _body(message: EmailMessage) -> tuple[str, list[str]]:
    """The text body (the plain part, else the HTML part as text) and the attachments' file names."""
    attachments = []
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name or part.get_content_disposition() == "attachment":
            attachments.append(" ".join(str(name or "(unnamed)").split())[:255])
    if message.get_content_type() == "multipart/report":
        return "", attachments
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        if body is None:
            return "", attachments
        content = body.get_content()
    except (LookupError, ValueError, AttributeError):
        return "", attachments
    if not isinstance(content, str):
        return "", attachments
    if body.get_content_type() == "text/html":
        content = html_to_text(content)
    return content, attachments


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_links = True
    converter.ignore_emphasis = True
    return converter.handle(html)


_OUTLOOK_SEPARATOR = re.compile(
    r"^\s*_{8,}\s*$|^\s*-{3,}\s*Original Message\s*-{3,}", re.MULTILINE | re.IGNORECASE
)
_HTML_QUOTE_HEADER = re.compile(r"^\s*\**From:\**\s.*$", re.MULTILINE)


def reply_text(body: str) -> str:
    """The newest reply in ``body``: the library's latest reply, then what is left of an Outlook separator
    or an Outlook header block the library did not take (HTML made into text puts them on odd lines)."""
    body = body.replace("\r\n", "\n").replace("\x00", "\ufffd")
    try:
        replies = _PARSER.read(text=body).replies
        text = replies[0].body if replies else body
    except Exception:  # the library failing on odd input must not lose the message: use it whole
        text = body
    for pattern in (_OUTLOOK_SEPARATOR, _HTML_QUOTE_HEADER):
        match = pattern.search(text)
        if match:
            text = text[: match.start()]
    lines = [line.rstrip() for line in text.splitlines() if not line.lstrip().startswith(">")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- what the reply asks ---------------------------------------------------------------------------------

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        1,
    )
    for name in names
}
WEEKDAYS = {
    name: number
    for number, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
_DAY_FIRST = re.compile(
    rf"\b(?:(?P<wd>{_WEEKDAY})\.?,?\s+(?:the\s+)?)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{_MONTH})\.?"
    rf"(?:,?\s+(?P<y>\d{{4}}))?\b",
    re.IGNORECASE,
)
_MONTH_FIRST = re.compile(
    rf"\b(?:(?P<wd>{_WEEKDAY})\.?,?\s+)?(?P<m>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?\b",
    re.IGNORECASE,
)
_ISO = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_NUMERIC = re.compile(r"\b(?P<d>\d{1,2})/(?P<m>\d{1,2})(?:/(?P<y>\d{2}|\d{4}))?\b")
_EXTENSION = re.compile(
    r"\b((more|extra|further|additional) time|an extension|extend(ed|ing)? (the )?(deadline|date|time)|"
    r"extension (to|until|till)|need (until|till)|(until|till) .{0,40} to (respond|reply|answer))\b",
    re.IGNORECASE,
)
_ACKNOWLEDGEMENT = re.compile(
    r"^(\W*(ok(ay)?|thanks?( you)?|many thanks|noted|received|got it|will do|on it|acknowledged|"
    r"((i|we)('ll| will) |will )(look into (this|it)|get back to you|respond|reply|come back to you)"
    r"[^.!?\n]*)[\s.!,]*)+$",
    re.IGNORECASE,
)


class DateProblem(ValueError):
    """A date in the reply that cannot be taken as it is (a weekday that does not match it)."""


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_date(text: str, today: date) -> date | None:
    """The first date in ``text`` (``Friday 4 December``, ``4th Dec 2026``, ``December 4``, ``04/12/2026``,
    ``2026-12-04``): without a year, the next such day from ``today``. Raises ``DateProblem`` when a weekday
    is given that the date does not fall on."""
    found: list[tuple[int, date, str | None]] = []
    for pattern in (_DAY_FIRST, _MONTH_FIRST, _ISO, _NUMERIC):
        for m in pattern.finditer(text):
            month_text = m.group("m")
            month = int(month_text) if month_text.isdigit() else MONTHS[month_text.lower().rstrip(".")]
            day = int(m.group("d"))
            year_text = m.group("y")
            weekday = m.groupdict().get("wd")
            if year_text:
                year = int(year_text) + (2000 if len(year_text) == 2 else 0)
                when = _make(year, month, day)
            else:
                when = _make(today.year, month, day)
                if when is not None and when < today:
                    when = _make(today.year + 1, month, day)
            if when is not None:
                found.append((m.start(), when, weekday))
    if not found:
        return None
    _, when, weekday = min(found, key=lambda f: f[0])
    if weekday and WEEKDAYS[weekday.lower().rstrip(".")] != when.weekday():
        raise DateProblem(f"{weekday.title()} is not {when:%-d %B %Y}")
    return when


@dataclass(frozen=True)
class Intent:
    kind: Literal["respond", "request_extension", "note", "empty"]
    why: str = ""
    until: date | None = None


def decide(text: str, today: date) -> Intent:
    """What a reply's own text asks: an answer, more time to a date, or a note when it is unclear."""
    words = re.findall(r"\w+", text)
    if not words:
        return Intent("empty", "the reply has no text of its own (only quoted text, a signature or nothing)")
    if _EXTENSION.search(text):
        try:
            until = find_date(text, today)
        except DateProblem as exc:
            return Intent("note", f"it asks for more time, but the date is unclear ({exc})")
        if until is None:
            return Intent("note", "it asks for more time but gives no date")
        if until <= today:
            return Intent(
                "note", f"it asks for more time until {until:%-d %B %Y}, which is not in the future"
            )
        if until > today + timedelta(days=366):
            return Intent("note", f"it asks for more time until {until:%-d %B %Y}, more than a year away")
        return Intent("request_extension", "it asks for more time", until)
    if _ACKNOWLEDGEMENT.match(text) or len(words) < 4:
        return Intent("note", "it does not read as an answer (an acknowledgement or too short to be one)")
    return Intent("respond", "it reads as an answer")
