"""Run the reference app on a real socket: in a daemon thread (embedded) or in the foreground (serve)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from .app import ReferenceConfig, ReferenceService, create_app
from .store import RequestLog, RequestRecord, TaskStore

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 2.0


class _ThreadedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever owns the main thread."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29 names the hook this way
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ReferenceServer:
    """The reference SDDC Manager tasks service listening on ``host``:``port`` (0 picks a free port)."""

    def __init__(self, config: ReferenceConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                 request_log_file: str | None = None) -> None:
        self.config = config or ReferenceConfig()
        self.host = host
        self._requested_port = port
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._log = RequestLog(path=request_log_file)
        self._app = create_app(self.config, request_log=self._log)
        self._service: ReferenceService = self._app.state.service
        self._uvicorn: _ThreadedUvicorn | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def store(self) -> TaskStore:
        return self._service.store

    @property
    def request_log(self) -> list[RequestRecord]:
        return self._log.records

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the reference server is not started")
        scheme = "https" if self._ssl[0] else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> ReferenceServer:
        if self._thread is not None:
            raise RuntimeError("the reference server is already started")
        certfile, keyfile = self._ssl
        config = uvicorn.Config(
            self._app, host=self.host, port=self._requested_port, log_level="warning",
            access_log=False, lifespan="off", ssl_certfile=certfile, ssl_keyfile=keyfile,
            # Lets stop() finish promptly even while a slow-responses DELETE is in flight.
            timeout_graceful_shutdown=1,
        )
        self._uvicorn = _ThreadedUvicorn(config)
        self._thread = threading.Thread(target=self._run, args=(self._uvicorn,), name="sddc-reference-server",
                                        daemon=True)
        self._thread.start()
        self._wait_until_listening(self._uvicorn, self._thread)
        return self

    @staticmethod
    def _run(server: uvicorn.Server) -> None:
        # uvicorn reports a failed bind with sys.exit(); in a thread that only ends the thread, which
        # _wait_until_listening turns into a RuntimeError, so keep it from surfacing as a stray traceback.
        with contextlib.suppress(SystemExit):
            server.run()

    def _wait_until_listening(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                self._thread = None
                raise RuntimeError(
                    f"the reference server failed to start on {self.host}:{self._requested_port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the reference server did not start listening within 10 s")
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        server, thread = self._uvicorn, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def state_document(self) -> dict[str, Any]:
        """What a client needs to run against this server: URL, credentials and task ids by status."""
        return {
            "base_url": self.base_url,
            "username": self.config.username,
            "password": self.config.password,
            "tasks": self.store.ids_by_status(),
        }

    def create_tasks(self, status: str, count: int = 1) -> list[str]:
        return self.store.create_many(status, count)


def _write_private_json(path: str, document: dict[str, Any]) -> None:
    # The state file holds the password: create it owner-only, and tighten an existing file too.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")


def serve_forever(config: ReferenceConfig, *, host: str, port: int, state_file: str | None,
                  request_log_file: str | None, ssl_certfile: str | None = None,
                  ssl_keyfile: str | None = None, on_ready: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully and return."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    server = ReferenceServer(config, host=host, port=port, ssl_certfile=ssl_certfile,
                             ssl_keyfile=ssl_keyfile, request_log_file=request_log_file)
    try:
        server.start()
        if state_file is not None:
            _write_private_json(state_file, server.state_document())
        on_ready(server.base_url)
        # A timed wait keeps the main thread responsive to signals.
        while not stop_requested.wait(0.5):
            pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
