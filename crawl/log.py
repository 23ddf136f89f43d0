"""The crawl log: one row per URL attempted, built from a worker's WARC files and events."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from webmill.crawl.warc import iter_responses

LOG_SCHEMA = pa.schema(
    [
        ("url", pa.string()),  # canonical URL requested
        ("final_url", pa.string()),  # after redirects
        ("host", pa.string()),
        ("status", pa.int32()),
        ("bytes", pa.int64()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("depth", pa.int32()),
        ("referrer", pa.string()),
        ("outcome", pa.string()),  # stored, robots, opt_out_*, trap_*, http_error, timeout, ...
        ("error", pa.string()),
        ("content_type", pa.string()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("warc_file", pa.string()),  # relative to the corpus root
        ("warc_offset", pa.int64()),
        ("warc_length", pa.int64()),
        ("worker", pa.int32()),
    ]
)


def _ts(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")


def log_rows(open_warc, warc_files: list[str], events: list[dict], warc_rel: str, worker: int) -> pa.Table:
    """Rows for every URL this worker attempted; a stored page wins over other events of its URL.
    ``open_warc(name)`` opens one of ``warc_files`` for reading."""
    from webmill.crawl.spider import host_of

    rows: dict[str, dict] = {}
    for ev in events:
        if ev.get("kind") != "event":
            continue
        rows[ev["url"]] = {
            "url": ev["url"],
            "final_url": ev.get("final_url"),
            "host": host_of(ev["url"]),
            "status": ev.get("status"),
            "bytes": ev.get("bytes"),
            "fetched_at": _ts(ev.get("fetched_at")),
            "depth": ev.get("depth"),
            "referrer": ev.get("referrer"),
            "outcome": ev["outcome"],
            "error": ev.get("error"),
            "content_type": ev.get("content_type"),
            "etag": ev.get("etag"),
            "last_modified": ev.get("last_modified"),
            "worker": worker,
        }
    for name in warc_files:
        for record, body, offset, length in iter_responses(open_warc(name)):
            h = record.rec_headers
            http = record.http_headers
            url = h.get_header("WARC-Webmill-Requested-URI") or h.get_header("WARC-Target-URI")
            rows[url] = {
                "url": url,
                "final_url": h.get_header("WARC-Target-URI"),
                "host": host_of(url),
                "status": int(http.get_statuscode()),
                "bytes": len(body),
                "fetched_at": _ts(h.get_header("WARC-Date")),
                "depth": int(h.get_header("WARC-Webmill-Depth") or 0),
                "referrer": h.get_header("WARC-Webmill-Referrer"),
                "outcome": "stored",
                "error": None,
                "content_type": http.get_header("Content-Type"),
                "etag": http.get_header("ETag"),
                "last_modified": http.get_header("Last-Modified"),
                "warc_file": f"{warc_rel}/{name}",
                "warc_offset": offset,
                "warc_length": length,
                "worker": worker,
            }
    return pa.Table.from_pylist(sorted(rows.values(), key=lambda r: r["url"]), schema=LOG_SCHEMA)
