"""Scale: dedup, shard and stats at 1x, 4x and 16x of a generated clean corpus.

The corpus is made of real sentences of 6-50 words (the pages of ../shared/corpora, or
Python's own pydoc topics where that folder is absent), 25–35 per document, written through the
shard store in units of 2,000 documents as the clean stage writes them. Of every ten
documents eight are originals, one is an exact copy of an earlier original (case and
whitespace changed: the same normalized text) and one a near copy (one word in 80
replaced), so which documents belong together is known by construction.

Each stage runs as a user runs it, ``webmill --root R dedup|shard|stats`` in its own
process with its embedded Ray; memory is polled from that process tree: the driver
(the CLI process), the largest single process, and all of them summed. datatrove's
four-stage MinHash runs on the 1x corpus in the same run.

    python bench/scale.py [--base 20000] [--scales 1,4,16] [--no-datatrove]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from peakmem import PeakMemory  # noqa: E402

UNIT_DOCS = 2000
DATA_JUICER_CORE_HOURS_PER_TB = 717  # 5 TB in 168 min on 1,280 cores (data-juicer's Ray MinHash)


# the corpus ---------------------------------------------------------------------------
def sentence_pool() -> list[str]:
    from webmill.serve import find_corpora

    corpora = find_corpora()
    texts: list[str] = []
    if corpora is not None:
        from webmill.sample import real_docs

        for site in ("postgresql-15", "sqlite-3", "libstdcxx-manual", "debian-handbook"):
            if (corpora / site).is_dir():
                texts += real_docs(corpora / site).column("text").to_pylist()
    else:
        from pydoc_data.topics import topics

        texts = list(topics.values())
    seen, pool = set(), []
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())):
            # 6-50 words: a page without full stops would be one huge "sentence" shared by many documents
            if 6 <= len(s.split()) <= 50 and s not in seen:
                seen.add(s)
                pool.append(s)
    return pool


def original_text(k: int, pool: list[str]) -> str:
    rng = np.random.default_rng([7, k])
    return " ".join(pool[i] for i in rng.integers(0, len(pool), int(rng.integers(25, 36))))


def origin_of(k: int) -> int:
    """The original a document copies (itself for an original). Originals are k % 10 < 8."""
    if k % 10 < 8 or k < 10:
        return k
    j = int(np.random.default_rng([11, k]).integers(0, k // 10)) * 10 + int(np.random.default_rng([13, k]).integers(0, 8))
    return j


def doc_text(k: int, pool: list[str]) -> str:
    j = origin_of(k)
    text = original_text(j, pool)
    if j == k:
        return text
    if k % 10 == 8:  # exact: the same normalized text
        return "  ".join(text.upper().split(" "))
    words = text.split(" ")
    rng = np.random.default_rng([17, k])
    for i in range(int(rng.integers(0, 80)), len(words), 80):
        words[i] = "replaced"
    return " ".join(words)


def write_corpus(root_dir: str, n: int, pool: list[str]) -> int:
    import datetime as dt

    from webmill.shards import CorpusRoot, DatasetWriter
    from webmill.shards.schema import DOC_SCHEMA

    root = CorpusRoot.open(root_dir)
    w = DatasetWriter(root, "clean/scale/docs", DOC_SCHEMA)
    chars = 0
    when = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for u in range(0, n, UNIT_DOCS):
        rows = []
        for k in range(u, min(n, u + UNIT_DOCS)):
            text = doc_text(k, pool)
            url = f"http://site{k % 50}.test/doc/{k}"
            chars += len(text)
            rows.append(
                {
                    "id": hashlib.sha1(url.encode()).hexdigest(),
                    "url": url,
                    "host": f"site{k % 50}.test",
                    "fetched_at": when,
                    "crawl_id": "scale",
                    "title": "",
                    "text": text,
                    "lang": "en",
                    "lang_score": 1.0,
                    "n_chars": len(text),
                    "n_words": text.count(" ") + 1,
                    "source": {"warc": f"scale-{u // UNIT_DOCS:05d}.warc.gz", "offset": k, "length": len(text)},
                }
            )
        w.write_unit(f"scale-{u // UNIT_DOCS:05d}.warc.gz", [pa.Table.from_pylist(rows, schema=DOC_SCHEMA)])
    w.finalize(stage="clean")
    return chars


def accuracy(root_dir: str, n: int) -> tuple[float, float]:
    """Precision and recall of 'these two documents are duplicates' against the construction."""
    import duckdb

    ids = {hashlib.sha1(f"http://site{k % 50}.test/doc/{k}".encode()).hexdigest(): k for k in range(n)}
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT id, cluster FROM read_parquet('{root_dir}/dedup/scale/clusters/*.parquet') "
        "WHERE cluster IN (SELECT cluster FROM read_parquet("
        f"'{root_dir}/dedup/scale/clusters/*.parquet') GROUP BY 1 HAVING count(*) > 1)"
    ).fetchall()
    found: dict[int, list[int]] = {}
    for doc_id, cluster in rows:
        found.setdefault(cluster, []).append(ids[doc_id])
    pred = {(min(a, b), max(a, b)) for m in found.values() for i, a in enumerate(m) for b in m[i + 1 :]}
    truth_groups: dict[int, list[int]] = {}
    for k in range(n):
        truth_groups.setdefault(origin_of(k), []).append(k)
    truth = {(min(a, b), max(a, b)) for m in truth_groups.values() for i, a in enumerate(m) for b in m[i + 1 :]}
    tp = len(pred & truth)
    return tp / max(len(pred), 1), tp / max(len(truth), 1)


# running a stage ----------------------------------------------------------------------
def run_stage(root_dir: str, args: list[str]) -> dict:
    """``webmill --root R ARGS --json`` in its own process; wall time and memory of its tree."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "webmill"), "--root", root_dir, "-q", *args, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    me = psutil.Process(proc.pid)
    # "private": RSS less the pages shared with other processes (RssFile + RssShmem: libraries
    # and the object store's shared memory, which RSS counts once a process touches them)
    peaks = {"driver": 0, "largest": 0, "ray": 0, "largest_name": "", "driver_private": 0, "largest_private": 0}

    def sample() -> int:
        try:
            procs = [me, *me.children(recursive=True)]
        except psutil.Error:
            return 0
        rss, names, private = {}, {}, {}
        for p in procs:
            try:
                mi = p.memory_info()
                rss[p.pid], private[p.pid] = mi.rss, mi.rss - mi.shared
                names[p.pid] = p.name()
            except psutil.Error:
                pass
        peaks["driver"] = max(peaks["driver"], rss.get(proc.pid, 0))
        peaks["driver_private"] = max(peaks["driver_private"], private.get(proc.pid, 0))
        peaks["largest_private"] = max([peaks["largest_private"], *private.values()])
        if rss and max(rss.values()) > peaks["largest"]:
            pid = max(rss, key=rss.get)
            peaks["largest"], peaks["largest_name"] = rss[pid], "driver" if pid == proc.pid else names[pid][:40]
        peaks["ray"] = max(peaks["ray"], sum(v for pid, v in rss.items() if pid != proc.pid))
        return 0

    t = time.perf_counter()
    with PeakMemory(sample, interval=0.05):
        out, err = proc.communicate()
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"webmill {' '.join(args)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": seconds, **peaks, "result": json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=int, default=20000)
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--no-datatrove", action="store_true")
    ap.add_argument(
        "--shard-mb", type=float, default=32, help="shard (bucket) size: a reduce task holds one bucket, so memory is flat once 1x fills it"
    )
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    pool = sentence_pool()
    print(
        f"sentence pool: {len(pool):,} real sentences; {cores} cores; base {args.base:,} documents, "
        f"{UNIT_DOCS:,} per clean unit; 10% exact and 10% near copies; shards of {args.shard_mb:g} MB"
    )
    scales = [int(s) for s in args.scales.split(",")]
    results: dict[int, dict] = {}
    dt_rate = None
    for scale in scales:
        n = args.base * scale
        work = tempfile.mkdtemp(prefix=f"wm-scale-{scale}x-")
        root_dir = os.path.join(work, "root")
        try:
            t = time.perf_counter()
            chars = write_corpus(root_dir, n, pool)
            gen = time.perf_counter() - t
            r = {"docs": n, "chars": chars}
            r["dedup"] = run_stage(root_dir, ["dedup", "--input", "clean/scale/docs", "--name", "scale"])
            r["precision"], r["recall"] = accuracy(root_dir, n)
            r["shard"] = run_stage(root_dir, ["shard", "--name", "scale", "--target-mb", str(args.shard_mb)])
            r["stats"] = run_stage(root_dir, ["stats"])
            results[scale] = r
            print(
                f"[{scale}x] {n:,} documents, {chars / 1e6:,.0f} MB of text (generated in {gen:.0f}s); "
                f"dedup kept {r['dedup']['result']['kept']:,}, precision {r['precision']:.3f}, recall {r['recall']:.3f}"
            )
            for stage in ("dedup", "shard", "stats"):
                s = r[stage]
                print(
                    f"  {stage:<6} {n / s['seconds'] / cores:9,.1f} docs/s per core  ({s['seconds']:7.1f}s)  "
                    f"driver peak {s['driver'] / 2**20:6,.0f} MiB  largest process {s['largest'] / 2**20:6,.0f} MiB "
                    f"({s['largest_name']})  "
                    f"all Ray processes {s['ray'] / 2**20:6,.0f} MiB  (private: driver "
                    f"{s['driver_private'] / 2**20:,.0f} MiB, largest {s['largest_private'] / 2**20:,.0f} MiB)"
                )
            print("  dedup phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["dedup"]["result"]["seconds_by_phase"].items()))
            if scale == scales[0] and not args.no_datatrove:
                sys.path.insert(0, str(Path(__file__).parent))
                from dedup import run_datatrove  # bench/dedup.py

                dt_s, _ = run_datatrove(os.path.join(root_dir, "clean/scale/docs"), os.path.join(work, "dt"), cores)
                dt_rate = n / dt_s / cores
                print(f"  datatrove minhash (4 stages) on the same {n:,} documents: {dt_rate:,.1f} docs/s per core ({dt_s:.1f}s)")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    lo, hi = scales[0], scales[-1]
    a, b = results[lo], results[hi]
    print(f"ratios {hi}x/{lo}x (targets: driver <= 1.25, largest process <= 1.5, per-core throughput >= 0.8):")
    for stage in ("dedup", "shard", "stats"):
        thr = (b["docs"] / b[stage]["seconds"]) / (a["docs"] / a[stage]["seconds"])
        print(
            f"  {stage:<6} driver {b[stage]['driver'] / a[stage]['driver']:.2f}  largest process "
            f"{b[stage]['largest'] / a[stage]['largest']:.2f}  per-core throughput {thr:.2f}  "
            f"(private memory: driver {b[stage]['driver_private'] / a[stage]['driver_private']:.2f}, "
            f"largest {b[stage]['largest_private'] / a[stage]['largest_private']:.2f})"
        )
    acc = min(r["precision"] for r in results.values()), min(r["recall"] for r in results.values())
    print(f"dedup accuracy, worst over sizes: precision {acc[0]:.3f} (target >= 0.98), recall {acc[1]:.3f} (target >= 0.95)")
    if dt_rate:
        wm_rate = a["docs"] / a["dedup"]["seconds"] / cores
        print(f"dedup vs datatrove at {lo}x: {wm_rate:,.1f} vs {dt_rate:,.1f} docs/s per core, ratio {wm_rate / dt_rate:.2f} (target >= 3)")
    bytes_per_doc = b["chars"] / b["docs"]
    for stage in ("dedup", "shard"):
        rate = b["docs"] / b[stage]["seconds"] / cores
        core_hours = 1e12 / bytes_per_doc / rate / 3600
        print(
            f"cost model at {hi}x: {stage} {core_hours:,.0f} core-hours per TB of text"
            + (
                f" (target <= 100; data-juicer's Ray MinHash: ~{DATA_JUICER_CORE_HOURS_PER_TB} core-hours per TB)"
                if stage == "dedup"
                else ""
            )
        )


if __name__ == "__main__":
    main()
