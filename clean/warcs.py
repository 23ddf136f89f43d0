"""Finding WARC inputs (a crawl in the root, or any paths / URIs) and reading their records."""
from __future__ import annotations

import fnmatch
import gzip
import posixpath
from dataclasses import dataclass
from typing import Iterator

import pyarrow.fs as pafs
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeadersParser

from webmill.errors import UserError, first_line
from webmill.shards import CorpusRoot

_HTTP = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"])


@dataclass(frozen=True)
class WarcInput:
    fs: pafs.FileSystem
    path: str          # path inside fs
    name: str          # what documents record as their source (root-relative path or the URI)
    crawl_id: str | None


def newest_crawl(root: CorpusRoot) -> str:
    crawls = [c for c in root.listdir("crawl") if root.is_dir("crawl", c, "warc")]
    if not crawls:
        raise UserError(f"corpus root {root.display()}: no crawls to clean (run `webmill crawl run` first, or pass --warc)")
    return sorted(crawls)[-1]


def crawl_inputs(root: CorpusRoot, crawl_id: str) -> list[WarcInput]:
    if not root.is_dir("crawl", crawl_id, "warc"):
        raise UserError(f"crawl {crawl_id}: not found in {root.display('crawl')}")
    return [WarcInput(root.fs, root.path("crawl", crawl_id, "warc", n), f"crawl/{crawl_id}/warc/{n}", crawl_id)
            for n in root.listdir("crawl", crawl_id, "warc") if n.endswith((".warc.gz", ".warc"))]


def uri_inputs(specs: list[str]) -> list[WarcInput]:
    """Paths, globs and URIs (s3://bucket/cc/*.warc.gz) → inputs."""
    out = []
    for spec in specs:
        try:
            fs, path = pafs.FileSystem.from_uri(spec) if "://" in spec else (pafs.LocalFileSystem(), posixpath.abspath(spec))
        except Exception as e:
            raise UserError(f"--warc {spec}: cannot open ({first_line(e)})") from None
        if any(c in path for c in "*?["):
            base = posixpath.dirname(path)
            infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
            matches = sorted(i.path for i in infos if i.is_file and fnmatch.fnmatch(i.path, path))
        else:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.Directory:
                matches = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(path)) if i.is_file
                                 and i.path.endswith((".warc.gz", ".warc")))
            elif info.type == pafs.FileType.File:
                matches = [path]
            else:
                matches = []
        if not matches:
            raise UserError(f"--warc {spec}: no WARC files there")
        scheme = spec.split("://")[0] if "://" in spec else None
        out += [WarcInput(fs, m, f"{scheme}://{m}" if scheme else m, None) for m in matches]
    return out


def iter_records(inp: WarcInput, stats: dict) -> Iterator[dict]:
    """HTML-bearing response records; bad records are counted in ``stats`` and skipped."""
    size = inp.fs.get_file_info(inp.path).size
    end = 0
    with inp.fs.open_input_stream(inp.path, compression=None) as raw:  # records are gzip members: warcio reads them
        it = ArchiveIterator(raw, no_record_parse=True, arc2warc=True)
        while True:
            try:
                record = next(it)
            except StopIteration:
                if size is not None and end < size and end > 0:
                    stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1  # a torn last record
                return
            except Exception as e:  # a torn gzip member, a bad header block: the file ends here
                stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1
                stats.setdefault("warc_errors", []).append(f"{inp.name}: {type(e).__name__}")
                return
            stats["records"] = stats.get("records", 0) + 1
            if record.rec_type != "response":
                it.read_to_end(record)
                end = it.get_record_offset() + it.get_record_length()
                continue
            try:
                block = record.content_stream().read()
                it.read_to_end(record)
            except Exception:
                stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1
                return
            offset, length = it.get_record_offset(), it.get_record_length()
            end = offset + length
            h = record.rec_headers
            if len(block) < int(h.get_header("Content-Length") or 0):
                stats["warc_truncated"] = stats.get("warc_truncated", 0) + 1  # the torn last record
                return
            url = h.get_header("WARC-Target-URI")
            try:
                head_end = block.index(b"\r\n\r\n") + 4
                http = _HTTP.parse(_Lines(block[:head_end]))
                status = int(http.get_statuscode())
            except Exception:
                yield {"bad": "bad_http_headers", "url": url, "source": {"warc": inp.name, "offset": offset, "length": length}}
                continue
            stats["responses"] = stats.get("responses", 0) + 1
            ctype = http.get_header("Content-Type") or ""
            if status != 200 or not ("html" in ctype.lower() or not ctype):
                stats["not_html"] = stats.get("not_html", 0) + 1
                continue
            body = block[head_end:]
            if (http.get_header("Content-Encoding") or "").lower() == "gzip":
                try:
                    body = gzip.decompress(body)
                except Exception:
                    pass
            yield {"url": url, "body": body, "content_type": ctype, "date": h.get_header("WARC-Date"),
                   "digest": h.get_header("WARC-Payload-Digest"), "crawl_id": inp.crawl_id,
                   "source": {"warc": inp.name, "offset": offset, "length": length}}


class _Lines:
    """The readline() StatusAndHeadersParser wants, over bytes."""

    def __init__(self, data: bytes):
        self.lines = data.split(b"\n")
        self.lines = [l + b"\n" for l in self.lines[:-1]] + ([self.lines[-1]] if self.lines[-1] else [])

    def readline(self, *_):
        return self.lines.pop(0) if self.lines else b""
