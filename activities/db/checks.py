"""What every write to the record store's database goes through: NUL characters replaced, rows checked.

**NUL characters** (``\\x00``) cannot be stored: PostgreSQL refuses them in ``text`` and ``jsonb`` (psycopg2
raises a plain ``ValueError`` before the statement is sent), and SMTP forbids them in a message. Rather than
fail the escalation over one stray byte, every text the activities write is cleaned first: each NUL becomes
U+FFFD (the replacement character), which keeps the text's length and shows where something was.
``without_nul`` cleans an activity's whole input (every string, dictionary keys included); ``check_row``
cleans a row's columns again before it is written.

**Rows** are checked against their table before they are written, so that what the database would refuse
(or SQLite would silently keep: it enforces no lengths) is refused with a message naming the table and the
column, as the caller's non-retryable error type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import String

from activities.db.base import Base

NUL = "\x00"
REPLACEMENT = "\ufffd"
"""What a NUL character becomes in stored text."""

_M = TypeVar("_M", bound=BaseModel)


def clean_text(value: str) -> str:
    return value.replace(NUL, REPLACEMENT) if NUL in value else value


def clean_value(value: Any) -> Any:
    """``value`` with every NUL in its strings (and dictionary keys) replaced, recursively."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_value(v) for v in value)
    return value


def without_nul(model: _M) -> _M:
    """``model`` itself when it holds no NUL character, else a copy with every NUL replaced."""
    if "\\u0000" not in model.model_dump_json():
        return model
    return type(model).model_validate(clean_value(model.model_dump(mode="python")))


def check_row(row: Base, name: str, error: type[ValueError]) -> None:
    """Clean ``row``'s text of NUL characters, then refuse (raising ``error``, naming the column) a missing
    required value, an empty required text, a text longer than its column or a naive time."""
    table = Base.metadata.tables[row.__tablename__]
    for column in table.columns:
        value = getattr(row, column.key, None)
        where = f"{name}: {table.name}.{column.key}"
        if value is None:
            has_default = column.default is not None or column.server_default is not None
            if not column.nullable and not has_default and not (column.primary_key and column.autoincrement):
                raise error(f"{where} is required but missing")
            continue
        if isinstance(value, str):
            value = clean_text(value)
            setattr(row, column.key, value)
            length = column.type.length if isinstance(column.type, String) else None
            if length is not None and len(value) > length:
                raise error(f"{where} is {len(value)} characters long; at most {length} fit")
            if not value.strip() and not column.nullable and column.server_default is None:
                raise error(f"{where} is required but empty")
        elif isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise error(f"{where} is a naive time {value.isoformat()}; give a timezone")
        elif isinstance(value, dict | list):
            setattr(row, column.key, clean_value(value))
