"""The document schema: the contract between clean, dedup and shards.

Extend it (stages add quality-signal columns), never break it.
"""

from __future__ import annotations

import pyarrow as pa

SOURCE_TYPE = pa.struct(
    [
        pa.field("warc", pa.string()),  # WARC file, relative to the corpus root or as given
        pa.field("offset", pa.int64()),  # byte offset of the record in that file
        pa.field("length", pa.int64()),  # compressed length of the record
    ]
)

DOC_FIELDS = [
    pa.field("id", pa.string(), nullable=False),  # stable hash of url + fetch time + content
    pa.field("url", pa.string()),
    pa.field("host", pa.string()),
    pa.field("fetched_at", pa.timestamp("us", tz="UTC")),
    pa.field("crawl_id", pa.string()),
    pa.field("title", pa.string()),
    pa.field("text", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float32()),
    pa.field("n_chars", pa.int64()),
    pa.field("n_words", pa.int64()),
    pa.field("source", SOURCE_TYPE),
]

DOC_SCHEMA = pa.schema(DOC_FIELDS)


def doc_schema(signals: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """The document schema plus quality-signal columns (name → Arrow type)."""
    schema = DOC_SCHEMA
    for name, typ in (signals or {}).items():
        schema = schema.append(pa.field(name, typ))
    return schema
