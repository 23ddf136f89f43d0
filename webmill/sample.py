"""Documents taken straight from a folder of HTML pages, without the clean stage.

For the shard store's tests and benchmark, which need real documents before any
crawl exists. The clean stage is what makes documents in a real run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import lxml.html
import pyarrow as pa

from webmill.shards.schema import DOC_SCHEMA


def real_docs(site: Path, limit: int | None = None) -> pa.Table:
    rows = []
    for path in sorted(site.rglob("*.html"))[:limit]:
        raw = path.read_bytes()
        tree = lxml.html.fromstring(raw)
        title = (tree.findtext(".//title") or "").strip()
        text = " ".join(tree.text_content().split())
        url = f"http://127.0.0.1/{path.relative_to(site.parent)}"
        rows.append(
            {
                "id": hashlib.sha1(url.encode()).hexdigest(),
                "url": url,
                "host": "127.0.0.1",
                "fetched_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                "crawl_id": "test",
                "title": title,
                "text": text,
                "lang": "en",
                "lang_score": 1.0,
                "n_chars": len(text),
                "n_words": len(text.split()),
                "source": {"warc": str(path), "offset": 0, "length": len(raw)},
            }
        )
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)
