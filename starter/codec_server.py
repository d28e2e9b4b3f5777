"""The codec server: lets the Temporal UI show decrypted payloads, over HTTP, to those holding the token.

``python -m starter.codec_server [--host 127.0.0.1] [--port 8234] [--origin URL ...] [--namespace NS]``
serves Temporal's remote codec protocol with the project's payload keys (``starter.codec``):

* ``POST .../decode`` and ``POST .../encode`` take and return ``{"payloads": [...]}`` (Temporal's
  ``Payloads`` message as protobuf JSON: metadata values and data in base64). Only the last path segment
  picks the operation, so it can be mounted under any prefix. ``X-Namespace`` names the namespace; a
  request for another namespace than the one served gets 403.
* Every POST needs the token from ``ESCALATION_CODEC_TOKEN``: as ``Authorization: Bearer <token>``, or
  as the path segment before the operation (``/<token>/decode``), for browsers that cannot add a header:
  the Temporal UI sends ``Authorization`` only with its own sign-in's token. Without it: 401.
* CORS for the UI's origins (``--origin``, else ``ESCALATION_CODEC_ORIGINS``, comma-separated, else the
  local UI http://127.0.0.1:8233 and http://localhost:8233); the preflight ``OPTIONS`` needs no token.
* Bad JSON: 400; a payload that cannot be decrypted (unknown key, altered): 422; each with
  ``{"error": "..."}``.

``start_codec_server(...)`` runs the same server in a thread of the calling process (``escalate up``).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from starter.clean_exit import flush_all
from starter.codec import Keyring, PayloadKeyError, keyring_from_environment
from starter.connection import temporal_namespace

__all__ = ["DEFAULT_ORIGINS", "DEFAULT_PORT", "CodecServer", "start_codec_server"]

DEFAULT_PORT = 8234
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")
MAX_BODY_BYTES = 16 * 1024 * 1024
OPERATIONS = ("decode", "encode")
PROG = "codec server"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


@dataclass(frozen=True)
class _Config:
    token: str
    origins: frozenset[str]
    namespace: str
    keyring: Keyring
    log: bool


class _Handler(BaseHTTPRequestHandler):
    config: _Config  # set on the subclass made for each server

    def version_string(self) -> str:
        return "escalation-codec"

    # --- HTTP methods ---------------------------------------------------------------------------------

    def do_OPTIONS(self) -> None:  # the name http.server calls
        if self._operation() is None:
            self._reply(404, {"error": "not found: POST to .../decode or .../encode"})
        elif not self._origin_allowed():
            self._reply(
                403, {"error": "origin not allowed; add it with --origin or ESCALATION_CODEC_ORIGINS"}
            )
        else:
            self._reply(204, None)

    def do_POST(self) -> None:
        operation = self._operation()
        if operation is None:
            self._reply(404, {"error": "not found: POST to .../decode or .../encode"})
            return
        if not self._authorised():
            self._reply(401, {"error": "missing or wrong token: send Authorization: Bearer <token>"})
            return
        namespace = self.headers.get("X-Namespace")
        if namespace and namespace != self.config.namespace:
            self._reply(403, {"error": f"this codec server serves namespace {self.config.namespace!r} only"})
            return
        payloads = self._read_payloads()
        if payloads is None:
            return
        keyring = self.config.keyring
        try:
            if operation == "decode":
                result = [keyring.decrypt(p) for p in payloads.payloads]
            else:
                result = [keyring.encrypt(p) for p in payloads.payloads]
        except PayloadKeyError as exc:
            self._reply(422, {"error": str(exc)})
            return
        body = json_format.MessageToJson(
            Payloads(payloads=result), indent=None, always_print_fields_with_no_presence=True
        )
        self._reply(200, body)

    # --- helpers --------------------------------------------------------------------------------------

    def _segments(self) -> list[str]:
        return [s for s in self.path.split("?", 1)[0].split("/") if s]

    def _operation(self) -> str | None:
        segments = self._segments()
        return segments[-1] if segments and segments[-1] in OPERATIONS else None

    def _authorised(self) -> bool:
        token = self.config.token.encode()
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token):
            return True
        segments = self._segments()
        return len(segments) >= 2 and hmac.compare_digest(segments[-2].encode(), token)

    def _origin_allowed(self) -> bool:
        return self.headers.get("Origin") in self.config.origins

    def _read_payloads(self) -> Payloads | None:
        """The request's ``Payloads``; ``None`` once an error has been sent."""
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._reply(411, {"error": "Content-Length required"})
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self._reply(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        try:
            return _parse_payloads(self.rfile.read(length))
        except (ValueError, json_format.ParseError) as exc:  # UnicodeDecodeError is a ValueError
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._reply(400, {"error": f'body is not {{"payloads": [...]}} in protobuf JSON: {detail}'})
            return None

    def _reply(self, status: int, body: dict[str, str] | str | None) -> None:
        data = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin and self._origin_allowed():
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Vary", "Origin")
        self.send_header("Cache-Control", "no-store")  # decrypted case data must not be cached
        self.send_header("X-Content-Type-Options", "nosniff")
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.config.log:  # the operation only: the path may hold the token
            operation = self._operation() or "-"
            sys.stderr.write(f"{PROG}: {self.command} {operation} {code}\n")

    def log_message(self, format: str, *args: object) -> None:
        if self.config.log:
            sys.stderr.write(f"{PROG}: {format % args}\n")


def _parse_payloads(raw: bytes) -> Payloads:
    """Strictly: a JSON object with a list of payloads, whose bytes fields are base64 (protobuf's own
    parser accepts a top-level list and skips characters that are not base64)."""
    document = json.loads(raw.decode("utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("payloads", []), list):
        raise ValueError('expected an object {"payloads": [...]}')
    for number, payload in enumerate(document.get("payloads", []), start=1):
        if not isinstance(payload, dict):
            raise ValueError(f"payload {number} is not an object")
        metadata = payload.get("metadata", {})
        values = [payload.get("data", ""), *(metadata.values() if isinstance(metadata, dict) else [])]
        if not all(isinstance(v, str) and _BASE64.fullmatch(v) for v in values):
            raise ValueError(f"payload {number}: data and metadata values must be base64 strings")
    return json_format.ParseDict(document, Payloads())


class CodecServer:
    """A running codec server (its own thread); ``stop()`` ends it."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="codec-server", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def start_codec_server(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    token: str,
    origins: Iterable[str] = DEFAULT_ORIGINS,
    namespace: str | None = None,
    keyring: Keyring | None = None,
    log: bool = False,
) -> CodecServer:
    """Serve the codec on ``host:port`` (0: any free port) in a thread; keys from the environment unless
    ``keyring`` is given. Raises ``PayloadKeyError`` without keys, ``ValueError`` without a token."""
    if not token:
        raise ValueError("the codec server needs a token (ESCALATION_CODEC_TOKEN)")
    config = _Config(
        token=token,
        origins=frozenset(o.rstrip("/") for o in origins),
        namespace=temporal_namespace(namespace),
        keyring=keyring or keyring_from_environment(),
        log=log,
    )
    handler = type("CodecHandler", (_Handler,), {"config": config})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    return CodecServer(httpd)


def _origins_from_environment() -> list[str]:
    text = os.environ.get("ESCALATION_CODEC_ORIGINS", "")
    return [o.strip() for o in text.split(",") if o.strip()] or list(DEFAULT_ORIGINS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m starter.codec_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--origin",
        action="append",
        help="a Temporal UI origin allowed by CORS, e.g. https://temporal.example.org (repeatable; "
        "default ESCALATION_CODEC_ORIGINS or the local UI)",
    )
    parser.add_argument("--namespace", help="the namespace served (default TEMPORAL_NAMESPACE or default)")
    args = parser.parse_args(argv)
    token = os.environ.get("ESCALATION_CODEC_TOKEN", "")
    if not token:
        print(
            f"{PROG}: set ESCALATION_CODEC_TOKEN to the token clients must send (`openssl rand -hex 32`)",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        server = start_codec_server(
            args.host,
            args.port,
            token=token,
            origins=args.origin or _origins_from_environment(),
            namespace=args.namespace,
            log=True,
        )
    except PayloadKeyError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{PROG} at {server.url} (POST /decode, /encode); Ctrl-C to stop", flush=True)
    stop.wait()
    server.stop()
    print(f"{PROG} stopped", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    flush_all()
    os._exit(code)
