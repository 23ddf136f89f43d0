from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
from warcio.archiveiterator import ArchiveIterator

from webmill.shards import CorpusRoot, DatasetReader


def reachable_pages(folder: Path, seeds: list[str]) -> set[str]:
    """Pages reachable from the seeds by <a href> within the folder (fragments and queries ignored)."""
    folder = folder.resolve()
    todo = deque((folder / s).resolve() for s in seeds)
    seen: set[Path] = set()
    while todo:
        p = todo.popleft()
        if p in seen or not p.is_file() or folder not in p.parents:
            continue
        seen.add(p)
        if p.suffix not in (".html", ".htm"):
            continue
        try:
            tree = lxml.html.fromstring(p.read_bytes())
        except Exception:
            continue
        for href in tree.xpath("//a/@href"):
            parts = urlsplit(href.strip())
            if parts.scheme or parts.netloc or not parts.path:
                continue
            todo.append((p.parent / parts.path).resolve())
    return {str(p.relative_to(folder)) for p in seen if p.suffix in (".html", ".htm")}


def write_spec(path: Path, **crawl) -> Path:
    lines = ["[crawl]"]
    for k, v in crawl.items():
        lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def webmill(*args, timeout=600, check=True):
    out = subprocess.run([sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"webmill {args} exited {out.returncode}: {out.stderr[-3000:]}")
    return out


def last_json(out) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])


def crawl_log(root: Path, crawl_id: str):
    return DatasetReader(CorpusRoot.open(root), f"crawl/{crawl_id}/log", verify=True).read_all().to_pylist()


def warc_responses(root: Path, crawl_id: str) -> list[str]:
    """Target URIs of every response record, reading each WARC with warcio and checking digests."""
    urls = []
    for f in sorted((root / "crawl" / crawl_id / "warc").glob("*.warc.gz")):
        with open(f, "rb") as fh:
            for rec in ArchiveIterator(fh, check_digests="raise"):
                if rec.rec_type == "response":
                    rec.content_stream().read()
                    urls.append(rec.rec_headers.get_header("WARC-Target-URI"))
    return urls
