"""An iCal server on loopback for the calendar sync tests: each path answers as a test tells it.

`with CalendarServer() as ical:` serves on 127.0.0.1 (a free port) from a thread per request;
`ical.serve("/airbnb.ics", body=..., etag='"v1"')` sets what a path answers: a body (with its
ETag and Last-Modified, and a 304 to a matching If-None-Match), a status, a redirect, a delay, a
body of `size` bytes streamed until the client stops reading (with or without a Content-Length),
or no answer at all (`hang`: the connection stays open and silent). `ical.requests` is what it
was asked (path and headers), so a test sees a conditional GET or a redirect that was not
followed. Plain http.server: nothing in it knows Nexus.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 64 * 1024


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/calendar; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None
    delay: float = 0.0
    size: int | None = None  # stream this many bytes of filler instead of body
    declare_size: bool = False  # with size: send its Content-Length first
    hang: bool = False  # accept the request and never answer


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class CalendarServer:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[Seen] = []
        self.released = threading.Event()  # ends every hanging answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection closes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                answer = server.answers.get(self.path.split("?")[0], Answer(status=404))
                if answer.hang:
                    server.released.wait(60)
                    return
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.respond(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a size limit does

            def respond(self, answer: Answer) -> None:
                if answer.etag and self.headers.get("If-None-Match") == answer.etag:
                    self.send_response(304)
                    self.send_header("ETag", answer.etag)
                    self.end_headers()
                    return
                self.send_response(answer.status)
                if answer.location:
                    self.send_header("Location", answer.location)
                self.send_header("Content-Type", answer.content_type)
                if answer.etag:
                    self.send_header("ETag", answer.etag)
                if answer.last_modified:
                    self.send_header("Last-Modified", answer.last_modified)
                if answer.size is None:
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                    return
                if answer.declare_size:
                    self.send_header("Content-Length", str(answer.size))
                self.end_headers()
                filler = b"X" * CHUNK
                sent = 0
                while sent < answer.size:
                    self.wfile.write(filler[: answer.size - sent])
                    sent += CHUNK

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, body: bytes = b"", **answer: Any) -> str:
        """Answer `path` so from now on; returns its URL."""
        self.answers[path] = Answer(body=body, **answer)
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> CalendarServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
