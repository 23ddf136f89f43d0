"""Hand-made WARC files for the clean stage's bad-input tests."""

from __future__ import annotations

import gzip
import io
import uuid

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

PROSE = ("The quick brown fox jumps over the lazy dog. " * 3 + "\n") * 3


def _real_paragraphs() -> list[str]:
    """Real English prose: the documentation that ships inside Python (pydoc_data)."""
    from pydoc_data.topics import topics

    paras = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = " ".join(para.split())
            if len(para) > 200 and para.endswith(".") and "{" not in para and ">>>" not in para:
                paras.append(para)
    return paras


PARAGRAPHS = _real_paragraphs()


def prose_page(title: str, paragraphs: int = 6) -> bytes:
    start = (sum(map(ord, title)) * 7) % (len(PARAGRAPHS) - paragraphs)
    body = "".join(f"<p>{p}</p>\n" for p in PARAGRAPHS[start : start + paragraphs])
    return f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>".encode()


def write_warc(path, pages: list[tuple[str, bytes, str]], raw_http: dict[int, bytes] | None = None) -> None:
    """pages: (url, body, content-type); raw_http: index → a whole HTTP block written as is."""
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for i, (url, body, ctype) in enumerate(pages):
            if raw_http and i in raw_http:
                block = raw_http[i]
                head = (
                    f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\n"
                    f"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\n"
                    f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n"
                )
                f.write(gzip.compress(head.encode() + block + b"\r\n\r\n"))
                continue
            else:
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
                rec = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            w.write_record(rec)
