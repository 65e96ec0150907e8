"""A local stand-in for the Hugging Face Hub and Zenodo, speaking their file protocols over real HTTP.

Used by tests/test_hub.py and benchmarks/bench_download.py. Two ``ThreadingHTTPServer`` instances bind
127.0.0.1 only (ephemeral ports):

- the **hub** (``endpoint``, what ``HF_ENDPOINT`` points at) answers ``HEAD``/``GET
  /{repo_id}/resolve/{revision}/{filename}`` the way huggingface_hub expects for an LFS file: ``302`` to the CDN
  with ``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and an ``ETag``; ``404`` with
  ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound`` otherwise. It also serves
  Zenodo-style URLs: ``/records/{record}/files/{name}?download=1`` redirects to
  ``/api/records/{record}/files/{name}/content``, which serves the bytes.
- the **CDN** (another origin, like the Hub's real CDN) serves ``/lfs/{sha256}``.

Every file answer honours ``Range: bytes=a-`` / ``bytes=a-b`` (``206`` with ``Content-Range``, ``416`` past
the end). Faults for tests: ``tamper`` (flip bytes, same length and headers), ``drop_once`` (cut the connection
after N bytes of the next full GET of a file), ``delay`` (pause after the first chunk of every body). Every
request is logged in ``requests``.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from http_ranges import requested_range

__all__ = ["FakeHub", "LoggedRequest"]

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_ZENODO_PAGE = re.compile(r"^/records/(?P<record>\d+)/files/(?P<filename>[^/]+)$")
_ZENODO_CONTENT = re.compile(r"^/api/records/(?P<record>\d+)/files/(?P<filename>[^/]+)/content$")
_CDN = re.compile(r"^/lfs/(?P<sha>[0-9a-f]{64})$")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LoggedRequest:
    server: str
    method: str
    path: str
    range: str | None
    user_agent: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    def _handle(self, head: bool) -> None:
        hub = self.server.hub
        path = unquote(urlsplit(self.path).path)
        hub._log(
            LoggedRequest(
                self.server.role, self.command, path, self.headers.get("Range"), self.headers.get("User-Agent")
            )
        )
        try:
            if self.server.role == "cdn":
                match = _CDN.match(path)
                if match and match["sha"] in hub._blobs:
                    key, data = hub._blobs[match["sha"]]
                    return self._send_file(key, data, head, filename=key.rsplit("/", 1)[-1])
                return self._error(404, None, "Not found")
            if match := _RESOLVE.match(path):
                return self._resolve(match["repo"], match["revision"], match["filename"], head)
            if match := _ZENODO_PAGE.match(path):
                if (match["record"], match["filename"]) not in hub._zenodo:
                    return self._error(404, None, "file not found in record")
                self.send_response(302)
                self.send_header("Location", f"/api/records/{match['record']}/files/{match['filename']}/content")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if match := _ZENODO_CONTENT.match(path):
                data = hub._zenodo.get((match["record"], match["filename"]))
                if data is None:
                    return self._error(404, None, "file not found in record")
                return self._send_file(f"zenodo/{match['record']}/{match['filename']}", data, head, match["filename"])
            return self._error(404, None, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return None

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo = self.server.hub._repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        commit = repo["refs"].get(unquote(revision), revision)
        if commit not in repo["snapshots"]:
            return self._error(404, "RevisionNotFound", "Invalid rev id", commit=None)
        data = repo["snapshots"][commit].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", "Entry not found", commit=commit)
        sha = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
        git_sha = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
        self.send_response(302)
        self.send_header("Location", f"{self.server.hub.cdn_endpoint}/lfs/{sha}")
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{git_sha}"')
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None

    def _error(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        body = f'{{"error": "{message}"}}'.encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def _send_file(self, key: str, data: bytes, head: bool, filename: str) -> None:
        hub = self.server.hub
        if key in hub.tamper:
            data = _tampered(data)
        size = len(data)
        answer = requested_range(self, size)
        if answer is None:  # past the end: its 416 is sent
            return None
        first, last, status = answer
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head:
            return None
        cut = None
        if status == 200:
            with hub._state:
                cut = hub.drop_once.pop(key, None)
        position, sent_first = first, False
        while position <= last:
            end = min(position + _CHUNK, last + 1)
            if cut is not None and end > cut:
                self.wfile.write(data[position:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # a connection dropped mid-file
                self.close_connection = True
                return None
            self.wfile.write(data[position:end])
            position = end
            if not sent_first and hub.delay:
                self.wfile.flush()
                time.sleep(hub.delay)
            sent_first = True
        return None


def _tampered(data: bytes) -> bytes:
    corrupted = bytearray(data)
    for index in (len(data) // 2, len(data) - 1):
        corrupted[index] ^= 0xFF
    return bytes(corrupted)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: FakeHub, role: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self.role = role

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up are not errors here
        pass


class FakeHub:
    """The local Hub + CDN + Zenodo. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self._repos: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, tuple[str, bytes]] = {}
        self._zenodo: dict[tuple[str, str], bytes] = {}
        self._state = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self.tamper: set[str] = set()
        self.drop_once: dict[str, int] = {}
        self.delay = 0.0
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # content -------------------------------------------------------------------------------------------------
    def add_hub_file(self, repo_id: str, filename: str, data: bytes, commit: str | None = None) -> str:
        """Publish ``data`` as ``repo_id/filename`` on ``main``, as a new commit (or into ``commit``, kept as the
        head of ``main``); earlier commits stay reachable by their id. Returns the commit (40 hex)."""
        repo = self._repos.setdefault(repo_id, {"commit": None, "files": {}, "snapshots": {}, "refs": {}})
        files = dict(repo["snapshots"].get(commit or repo["commit"], {}))
        files[filename] = data
        commit = (
            commit
            or hashlib.sha1(repr(sorted(files)).encode() + data + str(len(repo["snapshots"])).encode()).hexdigest()
        )
        repo["snapshots"][commit] = files
        repo["commit"], repo["files"] = commit, files
        repo["refs"]["main"] = commit
        self._blobs[hashlib.sha256(data).hexdigest()] = (self.hub_key(repo_id, filename), data)
        return commit

    def add_ref(self, repo_id: str, name: str, commit: str) -> None:
        """Point a branch or tag ``name`` of ``repo_id`` at ``commit``."""
        self._repos[repo_id]["refs"][name] = commit

    def add_zenodo_file(self, record: str, filename: str, data: bytes) -> str:
        """Publish ``data`` in a Zenodo-style record; returns its download URL."""
        self._zenodo[(record, filename)] = data
        return self.zenodo_url(record, filename)

    @staticmethod
    def hub_key(repo_id: str, filename: str) -> str:
        """The key naming a hub file in ``tamper`` / ``drop_once``."""
        return f"hub/{repo_id}/{filename}"

    @staticmethod
    def zenodo_key(record: str, filename: str) -> str:
        """The key naming a Zenodo file in ``tamper`` / ``drop_once``."""
        return f"zenodo/{record}/{filename}"

    def zenodo_url(self, record: str, filename: str) -> str:
        return f"{self.endpoint}/records/{record}/files/{filename}?download=1"

    # lifecycle -----------------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> FakeHub:
        if not self._servers:
            self._servers = [_Server(self, "hub"), _Server(self, "cdn")]
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets: later connections are refused."""
        for server in self._servers:
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # inspection ----------------------------------------------------------------------------------------------
    def _log(self, entry: LoggedRequest) -> None:
        with self._state:
            self.requests.append(entry)

    def count(self, method: str | None = None, contains: str = "") -> int:
        """How many logged requests have ``method`` (any if None) and a path containing ``contains``."""
        with self._state:
            return sum(1 for r in self.requests if (method is None or r.method == method) and contains in r.path)
