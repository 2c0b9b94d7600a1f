"""A small HTTP server on 127.0.0.1 whose answers a test decides: the stand-in for a test
instance's service, for a health-checked VM, for a load balancer's backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[str], tuple[int, str | bytes]]  # a GET's path -> (status, body)


def serve(answer: Answer) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1 (its server_address[1]) that answers each GET with
    `answer(path)`, served by a thread of its own; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(self.path)
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass  # no request lines in the tests' output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@contextmanager
def serving(answer: Answer) -> Iterator[int]:
    """serve(answer) for the length of the block, which gets its port."""
    server = serve(answer)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
