"""Run the reference app on a real socket: in a daemon thread (embedded) or in the foreground (serve)."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType, TracebackType
from typing import Any, TextIO

import uvicorn

from .app import ReferenceConfig, ReferenceService, create_app
from .store import RequestLog, RequestRecord, TaskStore

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 2.0


class PortInUse(OSError):
    """The host:port the reference server was asked to listen on is taken by another socket."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is already in use")
        self.host = host
        self.port = port


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind ``host``:``port`` ourselves, so a taken port raises PortInUse instead of uvicorn
    logging an ERROR line and exiting its thread."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; no SO_REUSEPORT
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from exc
        raise
    return sock


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def non_loopback_warning(host: str, *, tls: bool) -> str:
    transport = "HTTPS" if tls else "plain HTTP (no TLS: passwords and tokens cross the network in clear text)"
    return (f"warning: the reference server listens on {host}, which other machines may reach, over "
            f"{transport}; its password grants the right to cancel tasks and read the request log. "
            "Bind 127.0.0.1 unless you mean to expose it.")


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
                 request_log_file: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or ReferenceConfig()
        self.host = host
        self._requested_port = port
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._log = RequestLog(path=request_log_file, maxlen=self.config.request_log_size)
        self._app = create_app(self.config, request_log=self._log, clock=clock)
        self._service: ReferenceService = self._app.state.service
        self._uvicorn: _ThreadedUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def store(self) -> TaskStore:
        return self._service.store

    @property
    def service(self) -> ReferenceService:
        return self._service

    @property
    def request_log(self) -> list[RequestRecord]:
        """The live list of the last ``config.request_log_size`` requests, oldest first."""
        return self._log.records

    def unpooled_task_ids(self) -> list[str]:
        """Ids of the tasks GET /v1/tasks lists but ``state_document`` leaves out (non-uuid-task-ids)."""
        return self.store.unpooled_ids()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the reference server is not started")
        scheme = "https" if self._ssl[0] else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.config.path_prefix}"

    def start(self) -> ReferenceServer:
        if self._thread is not None:
            raise RuntimeError("the reference server is already started")
        certfile, keyfile = self._ssl
        self._socket = _listening_socket(self.host, self._requested_port)
        config = uvicorn.Config(
            self._app, host=self.host, port=self._requested_port, log_level="warning",
            access_log=False, lifespan="off", ssl_certfile=certfile, ssl_keyfile=keyfile,
            # Lets stop() finish promptly even while a slow-responses DELETE is in flight.
            timeout_graceful_shutdown=1,
        )
        self._uvicorn = _ThreadedUvicorn(config)
        self._thread = threading.Thread(target=self._run, args=(self._uvicorn, self._socket),
                                        name="sddc-reference-server", daemon=True)
        self._thread.start()
        try:
            self._wait_until_listening(self._uvicorn, self._thread)
        except BaseException:
            self._close_socket()
            raise
        return self

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        # uvicorn reports a failed startup with sys.exit(); in a thread that only ends the thread, which
        # _wait_until_listening turns into a RuntimeError, so keep it from surfacing as a stray traceback.
        with contextlib.suppress(SystemExit):
            server.run(sockets=[sock])

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

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
        self._close_socket()

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
    """Write the state file (it holds the password) owner-only and atomically: a fresh 0600
    temporary file in the same directory, renamed over ``path``. The rename replaces whatever is
    at ``path``, a symlink included, and never writes through it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".sddc-state-", suffix=".tmp")  # O_EXCL, 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def serve_forever(config: ReferenceConfig, *, host: str, port: int, state_file: str | None,
                  request_log_file: str | None, ssl_certfile: str | None = None,
                  ssl_keyfile: str | None = None, on_ready: Callable[[str], None],
                  warnings: TextIO | None = None) -> None:
    """Serve in the foreground until SIGINT, SIGTERM or SIGHUP, then stop gracefully and return.

    Raises PortInUse when ``host``:``port`` is taken. Binding anything but a loopback address
    prints a warning to ``warnings`` (default: stderr) first.
    """
    if not is_loopback(host):
        print(non_loopback_warning(host, tls=bool(ssl_certfile)), file=warnings or sys.stderr, flush=True)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # SIGHUP too: a closed terminal must stop serve as gracefully as Ctrl-C does (its caller
        # removes a temporary state file that holds the password).
        hangup = getattr(signal, "SIGHUP", None)
        for signum in (signal.SIGINT, signal.SIGTERM, *([hangup] if hangup is not None else [])):
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
