"""Dedup speed and memory: webmill vs datatrove's four-stage MinHash pipeline.

Both deduplicate the same documents — the pages of the four real sites in
../shared/corpora (their text, straight from the HTML), and at 4x the same pages
again with a word in every 40 dropped, so each copy is a near-duplicate — with the
same shingles (5-grams), bands (14) and rows (8). datatrove runs its local executor
(signature → buckets → cluster → filter); webmill runs its stage on embedded Ray
(signatures, LSH groupby, verification by exact Jaccard, union-find, outputs).
Peak memory is the largest resident size summed over the processes of each run.

    python bench/dedup.py [--scales 1,4] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import psutil
import pyarrow as pa
from peakmem import PeakMemory, cmdline, rss

from webmill.sample import real_docs
from webmill.serve import find_corpora

SITES = ["postgresql-15", "sqlite-3", "libstdcxx-manual", "debian-handbook"]


def corpus(scale: int) -> pa.Table:
    base = pa.concat_tables([real_docs(find_corpora() / s) for s in SITES])
    tables = [base]
    for k in range(1, scale):
        texts = []
        for t in base.column("text").to_pylist():
            words = t.split(" ")
            texts.append(" ".join(w for i, w in enumerate(words) if (i + k) % 40))
        copy = base.set_column(base.schema.get_field_index("text"), "text", pa.array(texts))
        copy = copy.set_column(0, "id", pa.array([f"{i}-copy{k}" for i in base.column("id").to_pylist()]))
        copy = copy.set_column(1, "url", pa.array([f"{u}?copy={k}" for u in base.column("url").to_pylist()]))
        tables.append(copy.cast(base.schema))
    return pa.concat_tables(tables)


def peak_tree(ray_processes: bool) -> PeakMemory:
    """Peak of the summed RSS of this process and its children, plus Ray's processes for webmill."""
    me = psutil.Process()

    def sample() -> int:
        procs = [me, *me.children(recursive=True)]
        if ray_processes:
            procs += [p for p in psutil.process_iter() if any(k in cmdline(p)[:200] for k in ("ray::", "raylet", "gcs_server"))]
        else:
            procs = [p for p in procs if "ray" not in cmdline(p)[:80]]
        return sum(rss(procs))

    return PeakMemory(sample)


def run_datatrove(parquet_dir: str, work: str, workers: int) -> tuple[float, set[str]]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    # sha1: datatrove's xxhash path passes str to xxhash >= 4, which wants bytes
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, hash_config=HashConfig(precision=64, hash_fc="sha1"))
    tasks = workers
    t = time.perf_counter()
    LocalPipelineExecutor(
        [
            ParquetReader(parquet_dir, id_key="id", glob_pattern="*.parquet", recursive=False),
            MinhashDedupSignature(f"{work}/sigs", config=cfg),
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=f"{work}/l1",
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)],
        tasks=cfg.num_buckets,
        workers=workers,
        logging_dir=f"{work}/l2",
    ).run()
    LocalPipelineExecutor([MinhashDedupCluster(f"{work}/buckets", f"{work}/ids", config=cfg)], tasks=1, logging_dir=f"{work}/l3").run()
    LocalPipelineExecutor(
        [
            ParquetReader(parquet_dir, id_key="id", glob_pattern="*.parquet", recursive=False),
            MinhashDedupFilter(f"{work}/ids", exclusion_writer=JsonlWriter(f"{work}/removed")),
            JsonlWriter(f"{work}/kept"),
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=f"{work}/l4",
    ).run()
    seconds = time.perf_counter() - t
    import glob
    import gzip
    import json

    removed = set()
    for f in glob.glob(f"{work}/removed/*.jsonl.gz"):
        with gzip.open(f, "rt") as fh:
            removed.update(json.loads(line)["id"] for line in fh)
    return seconds, removed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,4")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()

    from webmill.dedup.config import DedupConfig
    from webmill.dedup.stage import run_dedup
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
    from webmill.shards.schema import DOC_SCHEMA

    ray = ensure_ray(None)
    for scale in map(int, args.scales.split(",")):
        docs = corpus(scale)
        n = docs.num_rows
        work = tempfile.mkdtemp(prefix="wm-dedup-bench-")
        try:
            root = CorpusRoot.open(os.path.join(work, "root"))
            w = DatasetWriter(root, "clean/bench/docs", DOC_SCHEMA, target_rows=max(n // (2 * args.workers), 1))
            w.write_unit("all", [docs])
            w.finalize()
            with peak_tree(ray_processes=False) as mem_dt:
                dt_s, dt_removed = run_datatrove(root.path("clean/bench/docs"), os.path.join(work, "dt"), args.workers)
            with peak_tree(ray_processes=True) as mem_wm:
                t = time.perf_counter()
                run_dedup(root, ray, ["clean/bench/docs"], "bench", DedupConfig(exact=False, url=False))
                wm_s = time.perf_counter() - t
            clusters = DatasetReader(root, "dedup/bench/clusters").read_all(columns=["id", "kept"]).to_pylist()
            wm_removed = {c["id"] for c in clusters if not c["kept"]}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        agree = len(wm_removed & dt_removed) / max(len(wm_removed | dt_removed), 1)
        print(f"[{scale}x] {n:,} documents")
        print(f"  datatrove minhash (4 stages): {n / dt_s:8.1f} docs/s  peak {mem_dt.peak / 2**20:6,.0f} MiB  removed {len(dt_removed):,}")
        print(f"  webmill dedup:                {n / wm_s:8.1f} docs/s  peak {mem_wm.peak / 2**20:6,.0f} MiB  removed {len(wm_removed):,}")
        print(f"  ratio webmill/datatrove: {dt_s / wm_s:.2f} (target >= 2.0); agreement of removed sets (Jaccard): {agree:.3f}")


if __name__ == "__main__":
    main()
