"""A local stand-in for PhysioNet's file server (``https://physionet.org/files/``), speaking HTTP as wfdb uses it.

Used by tests/datasets/test_download.py and test_datasets_cli.py. A ``ThreadingHTTPServer`` binds 127.0.0.1 only
(an ephemeral port) and serves the files of a folder laid out as PhysioNet publishes them,
``<root>/<project>/<version>/...`` (with ``SHA256SUMS.txt``), under ``/files/``: :attr:`PhysioNetServer.index_url`
is what ``--index-url`` takes. HTTP/1.1 with keep-alive, like physionet.org.

Every file answer honours ``HEAD`` (``200`` with ``Content-Length``: wfdb's remote size) and ``Range: bytes=a-`` /
``bytes=a-b`` (``206`` with ``Content-Range``; ``416`` with ``bytes */size`` past the end); a missing file is
``404``. Faults for tests, each keyed by the path below ``/files/`` (``"ludb/1.0.1/data/1.dat"``):

- ``drop_once[path] = n``: the next ``GET`` of that file sends ``n`` bytes of the body, then cuts the connection;
- ``drop_always[path] = n``: every ``GET`` of that file does so;
- ``tamper``: files served with flipped bytes (same length and headers);
- ``status[path] = code``: files answered with that HTTP status and no body.

Every request is logged in :attr:`PhysioNetServer.requests`. :func:`publish_project` lays files out as a project
version with its ``SHA256SUMS.txt``; :func:`ludb_files` takes some records of a real LUDB copy, with a ``ludb.csv``
of just those records, so the result is both a PhysioNet project and a small LUDB.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from http_ranges import requested_range

__all__ = ["LoggedRequest", "PhysioNetServer", "ludb_files", "publish_project", "tampered"]

_PREFIX = "/files/"
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server answered: method, path below ``/files/`` and the ``Range`` header (if any)."""

    method: str
    path: str
    range: str | None


def tampered(data: bytes) -> bytes:
    """``data`` with two bytes flipped (middle and last): same length, other SHA-256."""
    corrupted = bytearray(data)
    for index in {len(data) // 2, len(data) - 1}:
        corrupted[index] ^= 0xFF
    return bytes(corrupted)


def publish_project(root: Path, project: str, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (path -> bytes) as ``root/<project>/...`` with a ``SHA256SUMS.txt`` listing each one, as
    PhysioNet does (``<sha256> <path>``, sorted); returns the project folder."""
    folder = root / project
    for relative, data in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(files[name]).hexdigest()} {name}\n" for name in sorted(files))
    (folder / "SHA256SUMS.txt").write_text(sums, encoding="utf-8")
    return folder


def ludb_files(source: Path, records: Sequence[str]) -> dict[str, bytes]:
    """The published files of some LUDB records (``data/<n>.*``), the top-level files, and a ``ludb.csv`` holding
    only those records' rows (the other top-level files are the published bytes)."""
    import pandas as pd

    files = {name: (source / name).read_bytes() for name in ("ANNOTATORS", "LICENSE.txt", "README", "RECORDS")}
    table = pd.read_csv(source / "ludb.csv", dtype=str, keep_default_na=False)
    files["ludb.csv"] = table[table["ID"].str.strip().isin(records)].to_csv(index=False).encode()
    for record in records:
        for path in sorted((source / "data").glob(f"{record}.*")):
            files[f"data/{path.name}"] = path.read_bytes()
    return files


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as wfdb's requests session expects of physionet.org
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall per file)

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    def _handle(self, head: bool) -> None:
        state = self.server.state
        raw = unquote(urlsplit(self.path).path)
        path = raw[len(_PREFIX) :] if raw.startswith(_PREFIX) else raw
        state.log(LoggedRequest(self.command, path, self.headers.get("Range")))
        try:
            if not raw.startswith(_PREFIX) or ".." in path.split("/"):
                return self._status(404)
            code = state.status.get(path)
            if code is not None:
                return self._status(code)
            file = state.root / path
            if not file.is_file():
                return self._status(404)
            data = file.read_bytes()
            if path in state.tamper:
                data = tampered(data)
            return self._send(path, data, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return None

    def _status(self, code: int) -> None:
        body = f"<html><body>{code}</body></html>".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send(self, path: str, data: bytes, head: bool) -> None:
        size = len(data)
        answer = requested_range(self, size)
        if answer is None:  # past the end: its 416 is sent
            return
        first, last, status = answer
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head:
            return
        cut = self.server.state.cut_for(path)
        body = data[first : last + 1]
        if cut is not None and cut < len(body):
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # a connection dropped mid-file
            self.close_connection = True
            return
        for start in range(0, len(body), _CHUNK):
            self.wfile.write(body[start : start + _CHUNK])


@dataclass
class _State:
    root: Path
    drop_once: dict[str, int] = field(default_factory=dict)
    drop_always: dict[str, int] = field(default_factory=dict)
    tamper: set[str] = field(default_factory=set)
    status: dict[str, int] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, request: LoggedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def cut_for(self, path: str) -> int | None:
        with self.lock:
            once = self.drop_once.pop(path, None)
        return once if once is not None else self.drop_always.get(path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.state.lock:
            self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self.state.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open (keep-alive) connection, so a stopped server answers nothing more."""
        with self.state.lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up are not errors here
        pass


class PhysioNetServer:
    """PhysioNet's ``/files/`` index for the projects under ``root``. A context manager, or :meth:`start` /
    :meth:`stop`; the fault settings (``drop_once``, ``drop_always``, ``tamper``, ``status``) may change while
    it runs."""

    def __init__(self, root: str | Path) -> None:
        self._state = _State(Path(root))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def drop_once(self) -> dict[str, int]:
        return self._state.drop_once

    @property
    def drop_always(self) -> dict[str, int]:
        return self._state.drop_always

    @property
    def tamper(self) -> set[str]:
        return self._state.tamper

    @property
    def status(self) -> dict[str, int]:
        return self._state.status

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request answered so far, in order (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._state.lock:
            self._state.requests.clear()

    @property
    def index_url(self) -> str:
        """The ``https://physionet.org/files/`` of this server (with the trailing slash)."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{_PREFIX}"

    def start(self) -> PhysioNetServer:
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> PhysioNetServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
