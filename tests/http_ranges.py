"""HTTP byte ranges for the test servers (``hub_server``, ``datasets/physionet_server``): ``Range: bytes=a-`` and
``bytes=a-b`` as the clients (huggingface_hub, wfdb) send them."""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler

__all__ = ["requested_range"]

_RANGE = re.compile(r"^bytes=(?P<first>\d+)-(?P<last>\d*)$")


def requested_range(handler: BaseHTTPRequestHandler, size: int) -> tuple[int, int, int] | None:
    """``(first, last, status)`` of the bytes to send of a ``size``-byte file: the whole file with 200, or the
    asked-for range with 206. A range past the end gets its ``416`` (``Content-Range: bytes */size``) sent here,
    and None back: the request is answered."""
    wanted = handler.headers.get("Range")
    match = _RANGE.match(wanted.strip()) if wanted else None
    if match is None:
        return 0, size - 1, 200
    first = int(match["first"])
    last = min(int(match["last"]), size - 1) if match["last"] else size - 1
    if first >= size or first > last:
        handler.send_response(416)
        handler.send_header("Content-Range", f"bytes */{size}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return None
    return first, last, 206
