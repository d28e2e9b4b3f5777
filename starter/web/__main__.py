"""``python -m starter.web``: serve the web app on its own (the Compose ``web`` service; ``escalate up``
serves it in-process instead).

Connects to Temporal (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``; payloads encrypted with
``ESCALATION_PAYLOAD_KEYS``), writes its audit log to the record store (``ESCALATION_DATABASE_URL``, which
must already be at the newest revision on PostgreSQL), and reads its own settings from ``ESCALATE_*``
(``starter/web/settings.py``). SIGINT or SIGTERM stops it cleanly with exit 0; exit 2 for a wrong setting,
3 when Temporal cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

from starter.clean_exit import run_then_exit

EXIT_BAD_SETTING = 2
EXIT_UNAVAILABLE = 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m starter.web", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    return p


async def main() -> int:
    args = parser().parse_args()
    if not 1 <= args.port <= 65535:
        parser().error("--port must be 1 to 65535")
    import uvicorn

    from app.service import Application
    from starter.web import assets
    from starter.web.app import create_app
    from starter.web.settings import WebSettingsError, load

    try:
        settings = load()
        assets.stylesheet()
    except (WebSettingsError, assets.AssetsMissing) as exc:
        print(f"web: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    try:
        application = await Application.start(lists_from_records=True)  # the worker's database
    except Exception as exc:  # connecting: name what failed, without a traceback
        print(f"web: cannot start: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # this module's handlers stay in charge
            yield

    config = uvicorn.Config(
        create_app(application, settings), host=args.host, port=args.port, log_level="warning", lifespan="off"
    )
    server = Server(config)
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def stop() -> None:
        server.should_exit = True

    for sig in STOP_SIGNALS:  # handlers first, then the ready line
        loop.add_signal_handler(sig, stop)
    try:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if serving.done():
            await serving
            print(f"web: could not listen on {args.host}:{args.port}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"web app at http://{args.host}:{args.port}", flush=True)
        await serving
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
    print("web app stopped", flush=True)
    return 0


if __name__ == "__main__":
    run_then_exit(main)
