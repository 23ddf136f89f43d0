"""A static site server with extra routes that misbehave on purpose.

Routes under ``/_fault/``:
  status/<code>            that status, small HTML body
  flaky/<n>/<key>          500 for the first n requests of <key>, then a page
  delay/<seconds>          a page after sleeping
  stall                    headers, then nothing (client must time out)
  drop                     promises 100 kB, sends 1 kB, closes the connection
  big/<bytes>              an HTML body of that size
  redirect-loop/<i>        redirects to redirect-loop/<i+1> forever
  calendar/<y>/<m>         a calendar page linking to next and previous months
  enc/<charset>            a page encoded in that charset, declared in the header
  gzip                     a gzip-encoded page
  links                    a page linking to private/loopback/file URLs
  headers/<name>/<value>   a page with that response header
  link-to?u=<url>          a page linking to that URL
"""

from __future__ import annotations

import gzip
import threading
import time
import urllib.parse

from webmill.serve import QuietHandler, SiteServer

_flaky_counts: dict[str, int] = {}
_lock = threading.Lock()

PAGE = "<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>"


class FaultHandler(QuietHandler):
    requested: list[str] = []  # every path asked for, across servers (tests read it)

    def do_GET(self):
        FaultHandler.requested.append(self.path)
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/_fault/"):
            return super().do_GET()
        parts = path[len("/_fault/") :].split("/")
        kind, args = parts[0], parts[1:]
        handler = getattr(self, "fault_" + kind.replace("-", "_"), None)
        if handler is None:
            return self.send_error(404)
        try:
            handler(*args)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _page(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _html(self, title: str, body: str = "A page for testing.") -> bytes:
        return PAGE.format(title=title, body=body).encode()

    def fault_status(self, code):
        self._page(int(code), self._html(f"status {code}"))

    def fault_flaky(self, n, key):
        with _lock:
            seen = _flaky_counts.get(key, 0)
            _flaky_counts[key] = seen + 1
        if seen < int(n):
            self._page(500, self._html("server error"))
        else:
            self._page(200, self._html(f"flaky {key} recovered", "It works after retries. " * 20))

    def fault_delay(self, secs):
        time.sleep(float(secs))
        self._page(200, self._html("slow page"))

    def fault_stall(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.flush()
        time.sleep(30)

    def fault_drop(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"<html><body>" + b"x" * 1000)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def fault_big(self, size):
        size = int(size)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"<p>" + b"big " * 16383 + b"</p>"
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            self.wfile.write(piece)
            sent += len(piece)

    def fault_redirect_loop(self, i="0"):
        self.send_response(302)
        self.send_header("Location", f"/_fault/redirect-loop/{int(i) + 1}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def fault_calendar(self, year="2020", month="1"):
        y, m = int(year), int(month)
        nxt = (y + (m == 12), m % 12 + 1)
        prv = (y - (m == 1), (m - 2) % 12 + 1)
        body = f"<a href='/_fault/calendar/{nxt[0]}/{nxt[1]}'>next</a> <a href='/_fault/calendar/{prv[0]}/{prv[1]}'>prev</a>"
        self._page(200, self._html(f"calendar {y}-{m}", body))

    def fault_enc(self, charset):
        text = {
            "windows-1252": "Café crème, naïve façade — “quoted” déjà vu. " * 20,
            "shift_jis": "日本語のページです。これはテストの文章です。" * 20,
        }.get(charset.lower(), "plain text " * 20)
        body = PAGE.format(title=charset, body=text).encode(charset)
        self._page(200, body, ctype=f"text/html; charset={charset}")

    def fault_gzip(self):
        body = gzip.compress(self._html("gzip page", "This body travelled gzip-encoded. " * 30))
        self._page(200, body, headers={"Content-Encoding": "gzip"})

    def fault_links(self):
        body = (
            "<a href='http://10.0.0.1/secret'>private</a> <a href='file:///etc/passwd'>file</a> "
            "<a href='http://169.254.169.254/latest/meta-data/'>metadata</a> <a href='/index.html'>home</a>"
        )
        self._page(200, self._html("links out", body))

    def fault_link_to(self, *rest):
        target = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("u", ["/"])[0]
        self._page(200, self._html("a link out", f"<a href='{target}'>elsewhere</a> " + "Words to keep. " * 30))

    def fault_headers(self, name, value):
        self._page(200, self._html(f"header {name}", "Some text. " * 30), headers={name: urllib.parse.unquote(value)})


def fault_server(directory) -> SiteServer:
    return SiteServer(directory, handler=FaultHandler)
