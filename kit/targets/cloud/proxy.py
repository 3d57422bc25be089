"""HTTP/1.1 on asyncio streams, only what the front server needs: read a client's request,
write a response, and a keep-alive connection pool to one backend.

Why our own and not a library: no reverse proxy is installed, and the first version of the
front, on aiohttp (server + pooled client), burnt 870-970 us of CPU per proxied request in
front of MLflow's scoring server on this 2-core machine; on this module the same front burns
370-460 us, prediction log included (measured; a backend that answers in ~5 ms leaves the
front's caches cold for every request, so the length of the per-request code path is what
counts, and on 2 cores every microsecond the front burns is taken from the scoring server).

Supported: keep-alive and pipelining, Content-Length and chunked bodies both ways,
`Expect: 100-continue`, HTTP/1.0 clients. Refused with a 4xx and a closed connection:
malformed heads, oversized heads (431) and bodies (413), both Content-Length and
Transfer-Encoding (a request-smuggling shape), transfer codings other than chunked (501).
"""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus

MAX_HEAD = 64 * 1024  # request/response line + headers (also the StreamReader limit)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class BackendError(Exception):
    """The backend could not be reached, broke the connection (`status` 502) or did not answer
    in time (504); `retryable` if no byte of an answer arrived on a reused connection (safe to
    send again: predictions have no side effects)."""

    def __init__(self, message: str, retryable: bool = False, status: int = 502):
        super().__init__(message)
        self.retryable, self.status = retryable, status


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "http10")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, keep_alive: bool,
                 http10: bool = False):
        self.method, self.path, self.query, self.headers = method, path, query, headers
        self.body, self.keep_alive, self.http10 = body, keep_alive, http10


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            raise BadRequest(400, f"malformed header line {line[:60]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        if key in headers and key == "content-length" and headers[key] != text:
            raise BadRequest(400, "conflicting Content-Length headers")
        headers[key] = f"{headers[key]}, {text}" if key in headers and key != "content-length" else text
    return headers


def _content_length(headers: dict[str, str]) -> int | None:
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise BadRequest(400, "both Content-Length and Transfer-Encoding")
        if headers["transfer-encoding"].lower() != "chunked":
            raise BadRequest(501, f"Transfer-Encoding {headers['transfer-encoding']!r} is not supported; use chunked")
        return None
    text = headers.get("content-length", "0")
    if not text.isdigit():
        raise BadRequest(400, f"bad Content-Length {text[:30]!r}")
    return int(text)


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    parts, size = [], 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            length = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if length == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, ignored
                pass
            return b"".join(parts)
        size += length
        if size > limit:
            raise BadRequest(413, f"body larger than {limit} bytes")
        parts.append(await reader.readexactly(length))
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "bad chunk end")


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int) -> Request | None:
    """The next request on a connection; None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial.strip():
            return None
        raise BadRequest(400, "the connection closed in the middle of a request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"request head larger than {MAX_HEAD} bytes") from None
    lines = head.split(b"\r\n")
    while lines and not lines[0]:  # tolerate stray CRLFs between requests (RFC 9112 2.2)
        lines.pop(0)
    parts = lines[0].split(b" ") if lines else []
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts[0].decode("latin-1"), parts[1].decode("latin-1"), parts[2]
    headers = _headers(lines[1:])
    length = _content_length(headers)
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
    if length is not None and length > max_body:
        raise BadRequest(413, f"body of {length} bytes is larger than the limit, {max_body} bytes")
    if headers.get("expect", "").lower() == "100-continue" and length != 0:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        if length is None:
            body = await _read_chunked(reader, max_body)
        else:
            body = await reader.readexactly(length) if length else b""
    except asyncio.LimitOverrunError:
        raise BadRequest(400, "malformed chunked body") from None
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "the connection closed in the middle of the body") from None
    path, _, query = target.partition("?")
    return Request(method, path, query, headers, body, keep_alive, http10=version == b"HTTP/1.0")


def response(status: int, body: bytes, headers: list[tuple[str, str]], close: bool = False,
             http10_keep_alive: bool = False) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if close:
        lines.append("Connection: close")
    elif http10_keep_alive:  # an HTTP/1.0 client (e.g. `ab -k`) keeps the connection only if told
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Pool:
    """Keep-alive connections to one backend (opened on demand, reused last-in first-out)."""

    def __init__(self, host: str, port: int, max_idle: int = 64):
        self.host, self.port, self.max_idle = host, port, max_idle
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.closed = False

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                      timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body). Raises BackendError; retries once when that is safe."""
        try:
            return await self._attempt(method, path, headers, body, timeout)
        except BackendError as error:
            if not error.retryable:
                raise
            return await self._attempt(method, path, headers, body, timeout, fresh=True)

    async def _attempt(self, method, path, headers, body, timeout, fresh=False):
        reader = writer = None
        while self.idle and not fresh:
            reader, writer, _ = self.idle.pop()
            if not (reader.at_eof() or writer.is_closing()):
                break
            writer.close()
            reader = writer = None
        reused = reader is not None
        try:
            async with asyncio.timeout(timeout):
                if not reused:
                    reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
                head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
                head += [f"{name}: {value}" for name, value in headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                status, answer_headers, answer, keep = await _read_response(reader)
        except TimeoutError:
            _close(writer)
            raise BackendError(f"no answer within {timeout:g} s", status=504) from None
        except _NothingReceived as error:
            _close(writer)
            raise BackendError(str(error), retryable=reused) from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, BadRequest) as error:
            _close(writer)
            raise BackendError(f"{type(error).__name__}: {error}") from None
        if keep and not self.closed and len(self.idle) < self.max_idle:
            self.idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status, answer_headers, answer

    def sweep(self, max_idle_seconds: float) -> None:
        """Close connections idle for longer than `max_idle_seconds` (before the backend does)."""
        now = time.monotonic()
        keep = []
        for reader, writer, since in self.idle:
            if now - since > max_idle_seconds or reader.at_eof():
                writer.close()
            else:
                keep.append((reader, writer, since))
        self.idle = keep

    def close(self) -> None:
        self.closed = True
        for _, writer, _ in self.idle:
            writer.close()
        self.idle = []


class _NothingReceived(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            partial = getattr(error, "partial", b"")
            if not partial:
                raise _NothingReceived(f"the backend closed the connection ({type(error).__name__})") from None
            raise
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])
        if status >= 200:
            break  # 1xx interim answers are skipped
    headers = _headers(lines[1:])
    keep = "close" not in headers.get("connection", "").lower() and parts[0] == b"HTTP/1.1"
    if status in (204, 304):
        return status, headers, b"", keep
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, await _read_chunked(reader, 1 << 31), keep
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"])), keep
    return status, headers, await reader.read(), False  # delimited by the connection's end


def _close(writer) -> None:
    if writer is not None:
        writer.close()
