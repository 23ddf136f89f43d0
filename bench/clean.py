"""Extraction speed: webmill's clean stage vs datatrove's WarcReader + Trafilatura, and the raw loop.

All three read the same WARC files (a webmill crawl of a real site served on
127.0.0.1, rolled into several files so both pipelines can use every core) with the
same trafilatura settings (favor_precision, no comments, tables, no line dedup).
webmill's stage also identifies the language, applies the Gopher/C4/FineWeb filters,
scrubs PII and writes documents and exclusions through the shard store.

    python bench/clean.py [--sites postgresql-15,sqlite-3,...] [--workers 2]
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile
import time

from sites import crawl_sites, html_records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", default="postgresql-15,sqlite-3,libstdcxx-manual,debian-handbook")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()

    from webmill.clean.config import CleanConfig
    from webmill.clean.stage import run_clean
    from webmill.clean.warcs import crawl_inputs
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot

    work = tempfile.mkdtemp(prefix="wm-clean-bench-")
    try:
        root = CorpusRoot.open(os.path.join(work, "root"))
        crawl_id = crawl_sites(args.sites.split(","), root.base)
        warcs = sorted(glob.glob(os.path.join(root.base, "crawl", crawl_id, "warc", "*.warc.gz")))
        records = html_records(warcs)
        n = len(records)
        print(f"input: {n} HTML responses in {len(warcs)} WARC files ({args.sites}), {args.workers} workers")

        # raw trafilatura.extract loop, one core: the per-core limit
        import trafilatura

        t = time.perf_counter()
        for url, body in records:
            trafilatura.extract(body, url=url, favor_precision=True, include_comments=False, include_tables=True,
                                deduplicate=False)
        raw = n / (time.perf_counter() - t)

        # datatrove: WarcReader + Trafilatura, local executor
        from datatrove.executor import LocalPipelineExecutor
        from datatrove.pipeline.extractors import Trafilatura
        from datatrove.pipeline.readers import WarcReader

        out_dir = os.path.join(work, "datatrove")
        t = time.perf_counter()
        LocalPipelineExecutor(
            pipeline=[WarcReader(os.path.join(root.base, "crawl", crawl_id, "warc"), glob_pattern="*.warc.gz"),
                      Trafilatura(favour_precision=True, deduplicate=False, timeout=10.0)],
            tasks=len(warcs), workers=args.workers, logging_dir=os.path.join(out_dir, "logs"),
        ).run()
        dt = n / (time.perf_counter() - t)

        # webmill: the clean stage on Ray Data (Ray already started by the crawl above)
        ray = ensure_ray(None)
        t = time.perf_counter()
        s = run_clean(root, ray, crawl_inputs(root, crawl_id), "bench", CleanConfig())
        wm = s["documents_in"] / (time.perf_counter() - t)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"raw trafilatura.extract loop (1 core): {raw:7.1f} docs/s   (x{args.workers} cores = {raw * args.workers:.1f}, the limit)")
    print(f"datatrove WarcReader + Trafilatura:    {dt:7.1f} docs/s")
    print(f"webmill clean stage:                   {wm:7.1f} docs/s   (+ language id, quality filters, PII, Parquet)")
    print(f"ratio webmill/datatrove:               {wm / dt:7.2f}   (target >= 1.0)")


if __name__ == "__main__":
    main()
