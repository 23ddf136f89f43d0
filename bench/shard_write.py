"""Shard store write speed: webmill's DatasetWriter vs one plain pyarrow.parquet.write_table.

Both write the same real documents (pages of ../shared/corpora, repeated to a
useful size) with the same compression and row-group size. webmill's writer
also rolls parts, renames them into place, computes each part's sha256 and
writes commit records and a manifest; the ratio is what that costs.

    python bench/shard_write.py [--copies 12] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from webmill.sample import real_docs
from webmill.serve import find_corpora
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
from webmill.shards.schema import DOC_SCHEMA


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="postgresql-15")
    ap.add_argument("--copies", type=int, default=12, help="repeat the site's documents this many times")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--row-group", type=int, default=1024)
    args = ap.parse_args()

    corpora = find_corpora()
    if corpora is None:
        raise SystemExit("bench: ../shared/corpora not found")
    docs = real_docs(corpora / args.site)
    table = pa.concat_tables([docs] * args.copies).combine_chunks()
    mb = table.nbytes / 1e6
    print(f"documents: {table.num_rows:,} ({mb:,.1f} MB in Arrow) from {args.site} x{args.copies}")

    work = Path(tempfile.mkdtemp(prefix="wm-bench-"))
    best = {"webmill": float("inf"), "pyarrow": float("inf")}
    try:
        for i in range(args.repeat):
            out = work / f"plain-{i}.parquet"
            t = time.perf_counter()
            pq.write_table(table, out, compression="zstd", row_group_size=args.row_group)
            best["pyarrow"] = min(best["pyarrow"], time.perf_counter() - t)

            root = CorpusRoot.open(work / f"root-{i}")
            t = time.perf_counter()
            w = DatasetWriter(root, "docs", DOC_SCHEMA, row_group_rows=args.row_group, target_bytes=64 << 20)
            w.write_unit("all", table.to_batches(max_chunksize=4096))
            w.finalize()
            best["webmill"] = min(best["webmill"], time.perf_counter() - t)
            assert DatasetReader(root, "docs").num_rows == table.num_rows
            shutil.rmtree(work / f"root-{i}")
            out.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rate = {k: mb / v for k, v in best.items()}
    print(f"pyarrow.parquet.write_table: {rate['pyarrow']:8.1f} MB/s")
    print(f"webmill DatasetWriter:       {rate['webmill']:8.1f} MB/s  (rolled parts, sha256, commit records, manifest)")
    print(f"ratio webmill/pyarrow:       {rate['webmill'] / rate['pyarrow']:8.2f}  (target >= 0.80)")


if __name__ == "__main__":
    main()
