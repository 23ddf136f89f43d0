"""The band index: one Ray task signs one input part and commits it as a unit.

    dedup/_index/docs/    per document: idx, id, url, url hash, fetched_at, host, exact-text hash
    dedup/_index/bands/   per (document, band): band, band hash, idx

Written once per input part, ever: a later run signs only parts it has not seen. A
document's ``idx`` comes from the index plan (``plan.py``), never from commit order.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import xxhash

from webmill.dedup.config import DedupConfig
from webmill.dedup.minhash import ALGORITHM, band_hashes, signatures
from webmill.dedup.shingling import shingle_batch
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter, layout

INDEX_DOCS, INDEX_BANDS = layout.DEDUP_INDEX_DOCS, layout.DEDUP_INDEX_BANDS
FORMAT = 3  # the index layout; an index of another layout is refused, not misread

INDEX_DOC_SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("id", pa.string()),
        ("url", pa.string()),
        ("uh", pa.uint64()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("host", pa.string()),
        ("xh", pa.binary(16)),
    ]
)
BAND_SCHEMA = pa.schema([("band", pa.int32()), ("h", pa.uint64()), ("idx", pa.int64())])


def lsh_fingerprint(cfg: DedupConfig) -> str:
    return hashlib.sha1(json.dumps([FORMAT, ALGORITHM, cfg.ngram, cfg.bands, cfg.rows, cfg.seed]).encode()).hexdigest()[:12]


def sign_part(root: CorpusRoot, unit: str, dataset: str, path: str, offset: int, cfg: DedupConfig) -> dict:
    """Sign one input part; commit its document rows and band rows as one unit of each index dataset."""
    fp = lsh_fingerprint(cfg)
    docs_w = DatasetWriter(root, INDEX_DOCS, INDEX_DOC_SCHEMA, row_group_rows=65536)
    bands_w = DatasetWriter(root, INDEX_BANDS, BAND_SCHEMA, row_group_rows=1 << 18)
    if docs_w.is_committed(unit, fp) and bands_w.is_committed(unit, fp):
        return {"unit": unit, "docs": 0, "skipped": True}
    reader = DatasetReader(root, dataset)
    part = next((p for p in reader.parts if p["path"] == path), None)
    if part is None:
        raise FileNotFoundError(f"{root.display(dataset, path)}: planned part is no longer committed")
    n = 0
    with bands_w.unit(unit, fp) as bout, docs_w.unit(unit, fp) as dout:
        for batch in reader.iter_batches(columns=["id", "url", "host", "fetched_at", "text"], parts=[part]):
            shingled = shingle_batch(batch.column("text"), cfg.ngram)
            rows = len(shingled)
            idx = np.arange(offset + n, offset + n + rows, dtype=np.int64)
            n += rows
            urls = batch.column("url").to_pylist()
            uh = np.fromiter((xxhash.xxh3_64_intdigest((u or "").encode()) for u in urls), dtype=np.uint64, count=len(urls))
            dout.write(
                pa.table(
                    {
                        "idx": idx,
                        "id": batch.column("id"),
                        "url": batch.column("url"),
                        "uh": uh,
                        "fetched_at": batch.column("fetched_at"),
                        "host": batch.column("host"),
                        "xh": pa.array(shingled.exact, pa.binary(16)),
                    },
                    schema=INDEX_DOC_SCHEMA,
                )
            )
            # signed even where [dedup] near = false: the index serves every later run
            bh = band_hashes(signatures(shingled, cfg.bands * cfg.rows, cfg.seed), cfg.bands, cfg.rows)
            bout.write(
                pa.table(
                    {"band": np.tile(np.arange(cfg.bands, dtype=np.int32), rows), "h": bh.reshape(-1), "idx": np.repeat(idx, cfg.bands)},
                    schema=BAND_SCHEMA,
                )
            )
        dout.stats["docs"] = n
    return {"unit": unit, "docs": n, "skipped": False}
