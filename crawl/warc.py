"""WARC files: written with warcio, rolled at a size, committed by rename, repaired after a crash.

A file is written as ``NAME.warc.gz.open`` and renamed to ``NAME.warc.gz`` when it is
closed. Each record is its own gzip member, so a file torn by a crash is repaired by
keeping every complete record and cutting the rest.
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

OPEN_SUFFIX = ".open"

# Hop-by-hop and transfer headers do not describe the stored (decoded) payload.
_RENAME = {
    "content-encoding": "X-Crawler-Content-Encoding",
    "transfer-encoding": "X-Crawler-Transfer-Encoding",
    "content-length": "X-Crawler-Content-Length",
}


@dataclass
class StoredRecord:
    warc_file: str  # file name, relative to the crawl's warc/ folder
    offset: int  # offset of the response record
    length: int  # compressed length of the response record


class RollingWarcWriter:
    """``on_close(name, path)`` runs after each file is committed locally (an object-store
    root uploads it then); ``taken`` names files already committed elsewhere, so that
    sequence numbers continue after them."""

    def __init__(self, directory: str, prefix: str, max_bytes: int, software: str = "webmill", on_close=None, taken: list[str] = ()):
        self.directory = directory
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.software = software
        self.on_close = on_close
        os.makedirs(directory, exist_ok=True)
        self._seq = self._next_seq(taken)
        self._f = None
        self._writer: WARCWriter | None = None
        self._name: str | None = None

    def _next_seq(self, taken) -> int:
        seqs = [
            int(n[len(self.prefix) + 1 :].split(".")[0])
            for n in [*os.listdir(self.directory), *taken]
            if n.startswith(self.prefix + "-") and ".warc.gz" in n
        ]
        return max(seqs, default=-1) + 1

    def _open(self) -> None:
        self._name = f"{self.prefix}-{self._seq:05d}.warc.gz"
        self._f = open(os.path.join(self.directory, self._name + OPEN_SUFFIX), "wb")
        self._writer = WARCWriter(self._f, gzip=True)
        info = self._writer.create_warcinfo_record(self._name, {"software": self.software, "format": "WARC File Format 1.1"})
        self._writer.write_record(info)
        self._seq += 1

    def write(
        self,
        url: str,
        *,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        body: bytes,
        request_headers: list[tuple[str, str]],
        method: str,
        ip: str | None,
        fetched_at: datetime,
        extra: dict[str, str] | None = None,
    ) -> StoredRecord:
        if self._writer is None:
            self._open()
        date = fetched_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        http = StatusAndHeaders(f"{status} {reason}".strip(), _stored_headers(headers, len(body)), protocol="HTTP/1.1")
        warc_headers = {"WARC-Date": date}
        if ip:
            warc_headers["WARC-IP-Address"] = ip
        warc_headers.update(extra or {})
        resp = self._writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers)
        path = _path_of(url)
        req_http = StatusAndHeaders(f"{method} {path} HTTP/1.1", request_headers, is_http_request=True)
        req = self._writer.create_warc_record(
            url,
            "request",
            payload=io.BytesIO(b""),
            http_headers=req_http,
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": resp.rec_headers.get_header("WARC-Record-ID")},
        )
        offset = self._f.tell()
        self._writer.write_record(resp)
        length = self._f.tell() - offset
        self._writer.write_record(req)
        self._f.flush()
        rec = StoredRecord(self._name, offset, length)
        if self._f.tell() >= self.max_bytes:
            self.close()
        return rec

    def close(self) -> None:
        if self._f is None:
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        final = os.path.join(self.directory, self._name)
        os.replace(final + OPEN_SUFFIX, final)
        name, self._f, self._writer, self._name = self._name, None, None, None
        if self.on_close:
            self.on_close(name, final)


def _stored_headers(headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    out = [(_RENAME.get(k.lower(), k), v) for k, v in headers]
    out.append(("Content-Length", str(length)))
    return out


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    s = urlsplit(url)
    return (s.path or "/") + (f"?{s.query}" if s.query else "")


def repair(path: str) -> tuple[int, int]:
    """Cut a torn ``.open`` WARC back to its last complete response (+request) pair and commit it.

    Returns (records kept, bytes cut).
    """
    size = os.path.getsize(path)
    good_end, kept = 0, 0
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        last_type = None
        try:
            for record in it:
                record.content_stream().read()
                it.read_to_end(record)
                end = it.get_record_offset() + it.get_record_length()
                last_type = record.rec_type
                if last_type == "request":
                    good_end = end  # a response is complete once its request record follows
                    kept += 2
                elif last_type != "response":
                    good_end = end
                    kept += 1
        except Exception:
            pass
    with open(path, "r+b") as f:
        f.truncate(good_end)
    final = path[: -len(OPEN_SUFFIX)] if path.endswith(OPEN_SUFFIX) else path
    if good_end == 0:
        os.remove(path)
    else:
        os.replace(path, final)
    return kept, size - good_end


def iter_responses(path_or_file) -> Iterator[tuple[object, bytes, int, int]]:
    """(record, body, offset, length) for each response record of a WARC file (a path or an open file)."""
    with open(path_or_file, "rb") if isinstance(path_or_file, str) else path_or_file as f:
        it = ArchiveIterator(f)
        for record in it:
            if record.rec_type != "response":
                continue
            body = record.content_stream().read()
            it.read_to_end(record)
            yield record, body, it.get_record_offset(), it.get_record_length()


def new_crawl_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
