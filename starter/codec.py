"""Encrypting every payload Temporal stores: AES-256-GCM with keys from the environment.

Keys come from ``ESCALATION_PAYLOAD_KEYS``: comma-separated ``key-id:base64-key`` entries, each key 32
random bytes (``openssl rand -base64 32``). The first entry encrypts; every entry decrypts, so a key is
rotated by putting a new one first and keeping the old ones until nothing encrypted with them is still
needed. Without the variable, a development key file ``<ESCALATION_DATA_DIR>/payload-keys`` (same
format, mode 0600) is used if it exists; ``escalate up`` creates it on first use. With neither, the
first use raises ``PayloadKeyError`` with a one-line message naming the variable.

An encrypted payload has metadata ``encoding: binary/encrypted`` and ``encryption-key-id: <id>``; its data
is a 12-byte nonce followed by the AES-GCM ciphertext of the whole original payload (its metadata too),
with the key id as associated data, so neither the ciphertext nor the key id can be altered unnoticed.
A payload without that encoding (histories recorded before encryption) is passed through untouched.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = [
    "ENCODING",
    "KEYS_VARIABLE",
    "KEY_ID_METADATA",
    "EncryptionCodec",
    "Keyring",
    "PayloadKeyError",
    "dev_key_file",
    "ensure_dev_key",
    "keyring_from_environment",
    "new_key",
]

KEYS_VARIABLE = "ESCALATION_PAYLOAD_KEYS"
DEV_KEY_FILE_NAME = "payload-keys"
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOW = f"{KEYS_VARIABLE}=key-id:base64-key[,older-id:base64-key...] (each key: `openssl rand -base64 32`)"


class PayloadKeyError(ValueError):
    """Keys missing or malformed, or a payload that cannot be decrypted. The message is one line."""


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys: ``active`` encrypts, every key decrypts."""

    keys: dict[str, bytes] = field(repr=False)  # never in a log line or a traceback
    active: str
    source: str = KEYS_VARIABLE
    """Where the keys came from, for messages (never the keys themselves)."""

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise PayloadKeyError(f"{self.source}: the active key {self.active!r} is not among the keys")
        for key_id, key in self.keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise PayloadKeyError(f"{self.source}: key id {key_id!r} must be letters, digits, . _ -")
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(
                    f"{self.source}: key {key_id!r} is {len(key)} bytes; each key must be {KEY_BYTES} "
                    "random bytes in base64 (`openssl rand -base64 32`)"
                )

    @classmethod
    def parse(cls, text: str, source: str = KEYS_VARIABLE) -> Keyring:
        """``id:base64,id:base64,...``; the first entry is the active key."""
        keys: dict[str, bytes] = {}
        entries = [entry.strip() for entry in text.replace("\n", ",").split(",") if entry.strip()]
        if not entries:
            raise PayloadKeyError(f"{source} holds no key; expected {_HOW}")
        for number, entry in enumerate(entries, start=1):
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise PayloadKeyError(f"{source}: entry {number} is not key-id:base64-key; expected {_HOW}")
            if key_id in keys:
                raise PayloadKeyError(f"{source}: key id {key_id!r} appears twice; give each key its own id")
            try:
                keys[key_id] = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(
                    f"{source}: key {key_id!r} is not valid base64; expected {_HOW}"
                ) from None
        return cls(keys=keys, active=entries[0].partition(":")[0].strip(), source=source)

    def encrypt(self, payload: Payload) -> Payload:
        """The payload, encrypted with the active key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        key_id = self.active.encode()
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one not encrypted by this codec is returned as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        key = self.keys.get(key_id)
        if key is None:
            known = ", ".join(sorted(self.keys))
            raise PayloadKeyError(
                f"payload encrypted with key {key_id!r}, which is not in {self.source} (it has: {known}); "
                "add that key (after the active one) to decrypt it"
            )
        data = payload.data
        try:
            plain = AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except (InvalidTag, ValueError):
            raise PayloadKeyError(
                f"payload encrypted with key {key_id!r} failed authentication: it was altered, or "
                f"{self.source} holds a different key under that id"
            ) from None
        original = Payload()
        original.ParseFromString(plain)
        return original


def new_key() -> str:
    """A fresh key, base64 (32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def dev_key_file() -> Path:
    """``<ESCALATION_DATA_DIR or .data>/payload-keys``: the development key file."""
    return Path(os.environ.get("ESCALATION_DATA_DIR") or ".data") / DEV_KEY_FILE_NAME


def _read_dev_key_file(path: Path) -> Keyring:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PayloadKeyError(f"{path} is readable by others (mode {mode:04o}); run `chmod 600 {path}`")
    return Keyring.parse(path.read_text(encoding="utf-8"), source=str(path))


def keyring_from_environment() -> Keyring:
    """``ESCALATION_PAYLOAD_KEYS``, else the development key file, else ``PayloadKeyError``."""
    text = os.environ.get("ESCALATION_PAYLOAD_KEYS", "").strip()
    if text:
        return Keyring.parse(text)
    path = dev_key_file()
    if path.is_file():
        return _read_dev_key_file(path)
    raise PayloadKeyError(
        f"no payload encryption key: set {_HOW}, or run `escalate up` once to create a development key "
        f"in {path}"
    )


def ensure_dev_key() -> tuple[Path | None, bool]:
    """For ``escalate up``: ``(None, False)`` when ``ESCALATION_PAYLOAD_KEYS`` is set; else the development
    key file and whether it was created now (0600, one new key)."""
    if os.environ.get("ESCALATION_PAYLOAD_KEYS", "").strip():
        return None, False
    path = dev_key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _read_dev_key_file(path)  # refuse now, clearly, rather than at the first payload
        return path, False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"dev-{secrets.token_hex(4)}:{new_key()}\n")
    return path, True


class EncryptionCodec(PayloadCodec):
    """The payload codec of every client and worker of this project.

    Given no keyring, it reads one from the environment at first use (``keyring_from_environment``), so
    that importing the data converter never fails; ``keyring`` forces that read, for an early refusal.
    """

    def __init__(self, keyring: Keyring | None = None) -> None:
        self._keyring = keyring
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            with self._lock:
                if self._keyring is None:
                    self._keyring = keyring_from_environment()
        return self._keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        keyring = self.keyring
        return [keyring.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if all(p.metadata.get("encoding") != ENCODING for p in payloads):
            return list(payloads)  # nothing of ours: no key needed (old histories replay without one)
        keyring = self.keyring
        return [keyring.decrypt(p) for p in payloads]
