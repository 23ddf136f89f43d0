"""Finding WARC inputs (a crawl in the root, or any paths / URIs) and reading their records."""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from typing import Iterator

import pyarrow.fs as pafs
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeadersParser

from webmill.errors import UserError, first_line
from webmill.names import check_name
from webmill.shards import CorpusRoot, layout
from webmill.shards.objectstore import describe, public_uri, s3_filesystem

_HTTP = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"])


@dataclass(frozen=True)
class WarcInput:
    fs: pafs.FileSystem
    path: str  # path inside fs
    name: str  # what documents record as their source (root-relative path or the URI)
    crawl_id: str | None
    size: int = 0  # bytes, as listed


def newest_crawl(root: CorpusRoot) -> str:
    crawls = [c for c in root.listdir(layout.CRAWL) if root.is_dir(layout.crawl_warcs(c))]
    if not crawls:
        raise UserError(f"corpus root {root.display()}: no crawls to clean (run `webmill crawl run` first, or pass --warc)")
    return sorted(crawls)[-1]


def crawl_inputs(root: CorpusRoot, crawl_id: str) -> list[WarcInput]:
    check_name(crawl_id, "crawl id")
    if not root.is_dir(layout.crawl_warcs(crawl_id)):
        raise UserError(f"crawl {crawl_id}: not found in {root.display(layout.CRAWL)}")
    infos = root.fs.get_file_info(pafs.FileSelector(root.path(layout.crawl_warcs(crawl_id))))
    return [
        WarcInput(root.fs, i.path, f"{layout.crawl_warcs(crawl_id)}/{i.base_name}", crawl_id, i.size or 0)
        for i in sorted(infos, key=lambda i: i.path)
        if i.is_file and i.base_name.endswith((".warc.gz", ".warc"))
    ]


def uri_inputs(specs: list[str]) -> list[WarcInput]:
    """Paths, globs and URIs (s3://bucket/cc/*.warc.gz) → inputs."""
    out = []
    for spec in specs:
        shown = public_uri(spec)
        try:
            if spec.lower().startswith("s3://"):
                fs, path = s3_filesystem(spec)
            elif "://" in spec:
                fs, path = pafs.FileSystem.from_uri(spec)
            else:
                fs, path = pafs.LocalFileSystem(), posixpath.abspath(spec)
        except Exception as e:
            raise UserError(f"--warc {shown}: cannot open ({first_line(e)})") from None
        spec = shown.split("?", 1)[0]
        try:
            matches = _matches(fs, path)
        except OSError as e:
            raise UserError(f"--warc {spec}: {describe(e)}") from None
        if not matches:
            raise UserError(f"--warc {spec}: no WARC files there")
        scheme = spec.split("://")[0] if "://" in spec else None
        out += [WarcInput(fs, m.path, f"{scheme}://{m.path}" if scheme else m.path, None, m.size or 0) for m in matches]
    return out


def _matches(fs, path: str) -> list:
    """FileInfos of the files a path, folder or glob names."""
    if any(c in path for c in "*?["):
        base = posixpath.dirname(path)
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        found = [i for i in infos if i.is_file and fnmatch.fnmatch(i.path, path)]
    else:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            found = [i for i in fs.get_file_info(pafs.FileSelector(path)) if i.is_file and i.path.endswith((".warc.gz", ".warc"))]
        else:
            found = [info] if info.type == pafs.FileType.File else []
    return sorted(found, key=lambda i: i.path)


class SourceError(OSError):
    """Reading the WARC file itself failed (the disk, the network, the object store): the
    unit is retried or fails, and is never committed as if the file ended there."""


class _Source:
    """A WARC file's byte stream, with read errors marked as SourceError."""

    def __init__(self, f, name: str):
        self.f, self.name = f, name

    def read(self, n: int = -1) -> bytes:
        try:
            return self.f.read(n)
        except Exception as e:
            raise SourceError(f"{self.name}: read failed ({first_line(e)})") from e


def unit_ranges(size: int, unit_bytes: int, gzipped: bool) -> list[tuple[int, int]]:
    """A file's units: byte ranges of ``unit_bytes``. A unit cleans the records that start in
    its range; only record-per-member gzip files can be entered mid-file, so a plain .warc
    is one unit."""
    if not gzipped or size <= unit_bytes:
        return [(0, max(size, 1))]
    return [(a, min(a + unit_bytes, size)) for a in range(0, size, unit_bytes)]


def _first_record_at(f, start: int, end: int, name: str) -> int | None:
    """Offset of the first WARC record (a gzip member that inflates to ``WARC/``) at or after
    ``start`` and before ``end``, or None."""
    import zlib

    pos = start
    while pos < end:
        f.seek(pos)
        try:
            window = f.read(min(1 << 20, end - pos + 64))
        except Exception as e:
            raise SourceError(f"{name}: read failed ({first_line(e)})") from e
        if not window:
            return None
        i = window.find(b"\x1f\x8b\x08")
        while i != -1:
            if pos + i >= end:
                return None
            try:
                head = zlib.decompressobj(31).decompress(window[i : i + 4096], 16)
            except zlib.error:
                head = b""
            if head.startswith(b"WARC/"):
                return pos + i
            i = window.find(b"\x1f\x8b\x08", i + 1)
        pos += max(1, len(window) - 2)  # a magic split by the window's edge is found in the next
    return None


# HTTP headers a record may carry on top of its payload cap
HEADER_ALLOWANCE = 64 << 10


def iter_records(inp: WarcInput, stats: dict, byte_range: tuple[int, int] | None = None, *, max_body: int = 5 << 20) -> Iterator[dict]:
    """HTML-bearing response records that start in ``byte_range`` (default: the whole file);
    bad records are counted in ``stats`` and skipped. No payload grows past ``max_body``
    bytes in memory, before or after its Content-Encoding is undone: a larger one is
    yielded as ``too_large`` (a gzip bomb in a record, or a record that is one). Errors
    reading the file itself raise SourceError: a torn file is data, a failed read is not."""
    try:
        size = inp.fs.get_file_info(inp.path).size
        f = inp.fs.open_input_file(inp.path)
    except Exception as e:
        raise SourceError(f"{inp.name}: cannot open ({first_line(e)})") from e
    lo, hi = byte_range or (0, size or 0)
    with f:
        base = lo if lo == 0 else _first_record_at(f, lo, hi, inp.name)
        if base is None:
            return
        f.seek(base)
        yield from _records(inp, _Source(f, inp.name), base, hi if byte_range else None, size, stats, max_body)


class PayloadTooLarge(Exception):
    pass


def read_record(inp: WarcInput, offset: int, *, max_body: int = 5 << 20) -> dict:
    """The record at ``offset``: its WARC headers, its HTTP headers and its payload with the
    Content-Encoding undone, cut at ``max_body`` bytes (``truncated`` says so). For lineage:
    a document's ``source`` names the file and offset."""
    try:
        f = inp.fs.open_input_file(inp.path)
    except Exception as e:
        raise SourceError(f"{inp.name}: cannot open ({first_line(e)})") from e
    with f:
        f.seek(offset)
        it = ArchiveIterator(_Source(f, inp.name), no_record_parse=True, arc2warc=True, block_size=4096)
        try:
            record = next(it)
            block = record.content_stream().read(max_body + HEADER_ALLOWANCE + 1)
        except StopIteration:
            raise SourceError(f"{inp.name}: no WARC record at offset {offset}") from None
        except SourceError:
            raise
        except Exception as e:
            raise SourceError(f"{inp.name}: no readable WARC record at offset {offset} ({type(e).__name__})") from None
    # each header block ends with its blank line, as in the file
    out = {"warc_headers": record.rec_headers.to_str() + "\r\n", "http_headers": "", "payload": block, "truncated": False}
    if record.rec_type in ("response", "revisit") and b"\r\n\r\n" in block[:HEADER_ALLOWANCE]:
        head_end = block.index(b"\r\n\r\n") + 4
        try:
            http = _HTTP.parse(_Lines(block[:head_end]))
        except Exception:
            return out
        out["http_headers"] = http.to_str() + "\r\n"
        try:
            out["payload"] = inflate(block[head_end:], http.get_header("Content-Encoding") or "", max_body)
        except PayloadTooLarge:
            out["payload"], out["truncated"] = block[head_end : head_end + max_body], True
    if len(out["payload"]) > max_body:
        out["payload"], out["truncated"] = out["payload"][:max_body], True
    return out


def source_input(root: CorpusRoot, warc: str) -> WarcInput:
    """The WARC file a document's ``source.warc`` names: a path inside the root, or a URI as given."""
    if "://" in warc:
        return uri_inputs([warc])[0]
    return WarcInput(root.fs, root.path(*warc.split("/")), warc, None)


def inflate(body: bytes, encoding: str, cap: int) -> bytes:
    """Undo a gzip or deflate Content-Encoding, never producing more than ``cap`` bytes
    (PayloadTooLarge past it); a body that does not inflate is returned as it is."""
    import zlib

    enc = encoding.strip().lower()
    if enc in ("gzip", "x-gzip"):
        wbits = 31
    elif enc == "deflate":
        wbits = 15 if body[:1] == b"\x78" else -15  # zlib-wrapped, or raw as some servers send
    else:
        return body
    try:
        d = zlib.decompressobj(wbits)
        out = d.decompress(body, cap + 1)
    except zlib.error:
        return body
    if len(out) > cap or d.unconsumed_tail:
        raise PayloadTooLarge(len(out))
    return out


def _records(inp: WarcInput, raw, base: int, stop: int | None, size: int | None, stats: dict, max_body: int) -> Iterator[dict]:
    max_block = max_body + HEADER_ALLOWANCE
    end = base
    reaches_eof = stop is None or size is None or stop >= size
    # records are gzip members: warcio reads them, inflating one block of the file at a time; a small
    # block bounds what one fill can inflate to (deflate reaches about 1000:1: 4 KiB → 4 MiB)
    it = ArchiveIterator(raw, no_record_parse=True, arc2warc=True, block_size=4096)
    while True:
        try:
            record = next(it)
        except StopIteration:
            if reaches_eof and size is not None and base < end < size:
                stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1  # a torn last record
            return
        except SourceError:
            raise
        except Exception as e:  # a torn gzip member, a bad header block: the file ends here
            stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1
            stats.setdefault("warc_errors", []).append(f"{inp.name}: {type(e).__name__}")
            return
        # (warcio's get_record_offset() would consume the record: the previous end is its start)
        if stop is not None and end >= stop:
            return  # the next unit's first record
        stats["records"] = stats.get("records", 0) + 1
        if record.rec_type != "response":
            it.read_to_end(record)
            end = base + it.get_record_offset() + it.get_record_length()
            continue
        try:
            block = record.content_stream().read(max_block + 1)
            it.read_to_end(record)  # the rest of an oversized record is read through, never held
        except SourceError:
            raise
        except Exception:
            stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1
            return
        offset, length = base + it.get_record_offset(), it.get_record_length()
        end = offset + length
        h = record.rec_headers
        url = h.get_header("WARC-Target-URI")
        source = {"warc": inp.name, "offset": offset, "length": length}
        if len(block) > max_block:
            yield {"bad": "too_large", "url": url, "source": source}
            continue
        if len(block) < int(h.get_header("Content-Length") or 0):
            stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1  # the torn last record
            return
        try:
            head_end = block.index(b"\r\n\r\n") + 4
            http = _HTTP.parse(_Lines(block[:head_end]))
            status = int(http.get_statuscode())
        except Exception:
            yield {"bad": "bad_http_headers", "url": url, "source": source}
            continue
        stats["responses"] = stats.get("responses", 0) + 1
        ctype = http.get_header("Content-Type") or ""
        if status != 200 or not ("html" in ctype.lower() or not ctype):
            stats["not_html"] = stats.get("not_html", 0) + 1
            continue
        try:
            body = inflate(block[head_end:], http.get_header("Content-Encoding") or "", max_body)
        except PayloadTooLarge:
            yield {"bad": "too_large", "url": url, "source": source}
            continue
        yield {
            "url": url,
            "body": body,
            "content_type": ctype,
            "date": h.get_header("WARC-Date"),
            "digest": h.get_header("WARC-Payload-Digest"),
            "crawl_id": inp.crawl_id,
            "source": source,
        }


class _Lines:
    """The readline() StatusAndHeadersParser wants, over bytes."""

    def __init__(self, data: bytes):
        self.lines = data.split(b"\n")
        self.lines = [l + b"\n" for l in self.lines[:-1]] + ([self.lines[-1]] if self.lines[-1] else [])

    def readline(self, *_):
        return self.lines.pop(0) if self.lines else b""
