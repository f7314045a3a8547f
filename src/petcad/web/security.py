"""Serving only what was configured, and limits on what requests may cost.

* :func:`safe_file`: a file below a configured root, or None. Relative paths only; no ``..``
  component, backslash, NUL or drive; after resolving symbolic links the file must still lie
  below the (resolved) root, so a link pointing out of the root is refused too. The URL
  decoding (``%2e%2e`` -> ``..``, ``%2f`` -> ``/``) happens before this check.
* :class:`RateLimiter`: at most ``max_requests`` per ``per_seconds`` per client (sliding window).
* :func:`read_json_limited`: a JSON body of at most ``limit`` bytes, whatever Content-Length says.
* :func:`is_loopback`: whether a bind address only listens on this machine.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import deque
from pathlib import Path, PurePosixPath


class RequestError(Exception):
    """An HTTP error with a status code and a short message (no paths, no identifiers)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


def safe_file(root: Path, rel: str) -> Path | None:
    """The regular file ``root/rel`` if it lies below ``root`` after resolving links; else None."""
    if not rel or "\\" in rel or "\0" in rel or ":" in rel:
        return None
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("..", "") for part in rel.split("/")) or p.parts[:1] == ("~",):
        return None
    base = Path(root).resolve()
    try:
        target = (base / Path(*p.parts)).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class RateLimiter:
    """Sliding-window limit per client key; thread-safe."""

    def __init__(self, max_requests: int, per_seconds: float, clock=time.monotonic):
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs max_requests >= 1 and per_seconds > 0")
        self.max_requests = int(max_requests)
        self.per_seconds = float(per_seconds)
        self._clock = clock
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one request of ``key``; RequestError 429 when over the limit."""
        now = self._clock()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] >= self.per_seconds:
                q.popleft()
            if len(q) >= self.max_requests:
                raise RequestError(429, f"too many requests: at most {self.max_requests} per {self.per_seconds:g} s")
            q.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]


async def read_json_limited(request, limit: int) -> dict:
    """The request's JSON object body, refusing more than ``limit`` bytes (413) or bad JSON (400)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestError(413, f"request body over {limit} bytes")
        except ValueError:
            raise RequestError(400, "bad Content-Length") from None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise RequestError(413, f"request body over {limit} bytes")
    try:
        obj = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestError(400, "the body is not JSON") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "the body must be a JSON object")
    return obj


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for anything else (0.0.0.0 included)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
