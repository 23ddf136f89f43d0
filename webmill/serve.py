"""Serve a folder of web pages on 127.0.0.1 (demo, benchmarks, tests)."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # no per-request lines on stderr
        pass

    def list_directory(self, path):  # a static site has no generated index pages
        self.send_error(404, "Not Found")
        return None


class SiteServer:
    """A threaded static server on an ephemeral loopback port.

    ``with SiteServer(folder) as site: site.url("index.html")``
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        handler: type[http.server.BaseHTTPRequestHandler] = QuietHandler,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.directory = Path(directory)
        handler_cls = functools.partial(handler, directory=str(self.directory))
        self.httpd = http.server.ThreadingHTTPServer((host, port), handler_cls)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def url(self, path: str = "") -> str:
        return self.base + path.lstrip("/")

    def start(self) -> "SiteServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="webmill-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SiteServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def find_corpora() -> Path | None:
    """``../shared/corpora`` beside the repository (or $WEBMILL_CORPORA), if present."""
    env = os.environ.get("WEBMILL_CORPORA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in start.parents if start.is_file() else [start, *start.parents]:
            cand = parent / "shared" / "corpora"
            if cand.is_dir():
                return cand
    return None
