"""HTTP/1.1 for the front: uvicorn's httptools protocol (llhttp parses; we own no parser), with
two additions users see:

- requests the parser refuses (malformed, both Content-Length and Transfer-Encoding, bad
  chunking, ...) get a JSON body naming the problem, like every other 4xx the front sends,
  instead of uvicorn's plain text; the connection is closed, the server keeps serving;
- a request line + headers larger than MAX_HEAD get 431 (llhttp has no size limit of its own).
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 64 * 1024  # request line + headers, bytes


class HeadTooLarge(Exception):
    pass


def json_error_bytes(status: int, message: str) -> bytes:
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("latin-1") + body


class FrontProtocol(HttpToolsProtocol):
    """`on_refused(status)` (a class attribute set by the front) counts refusals in /metrics."""

    on_refused = staticmethod(lambda status: None)

    def connection_made(self, transport) -> None:
        # The answer leaves in two writes (head, then body); with Nagle on, the body waits for
        # the client's delayed ACK of the head: ~40 ms on every request. The front hands uvicorn
        # its own socket, on which nothing else turns Nagle off.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._head_too_large = False

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            self._head_too_large = True
            raise HeadTooLarge()  # the parser stops and reports a parse error: send_400_response

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if getattr(self, "_head_too_large", False):
            status, message = 431, f"request line and headers larger than {MAX_HEAD} bytes"
        else:
            status = 400
            message = ("malformed HTTP request (bad request line, header, chunked body, or both Content-Length "
                       "and Transfer-Encoding)")
        self.on_refused(status)
        self.transport.write(json_error_bytes(status, message))
        self.transport.close()
