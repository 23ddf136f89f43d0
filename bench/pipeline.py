"""The whole pipeline on a served real site: time per stage and its share of the total.

Serves ../shared/corpora on 127.0.0.1, runs crawl → clean → dedup → shard →
tokenizer → train (the tiny model) into a fresh root with embedded Ray, and
prints where the time went, so the slowest stage is visible.

    python bench/pipeline.py [--site postgresql-15] [--train-steps 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from webmill.config import Config
from webmill.crawl.config import CrawlConfig
from webmill.crawl.run import spec_dict
from webmill.pipeline.run import STAGES, Pipeline
from webmill.runtime import ensure_ray
from webmill.serve import SiteServer, find_corpora
from webmill.settings import override
from webmill.shards import CorpusRoot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default="postgresql-15")
    ap.add_argument("--seed-page", default="index.html")
    ap.add_argument("--train-steps", type=int, default=100)
    args = ap.parse_args()
    corpora = find_corpora()
    if corpora is None:
        raise SystemExit("bench/pipeline.py: ../shared/corpora not found")
    work = tempfile.mkdtemp(prefix="webmill-bench-pipeline-")
    try:
        t0 = time.perf_counter()
        ray = ensure_ray(None)
        ray_start = time.perf_counter() - t0
        cfg = Config()
        cfg.train = override(
            cfg.train,
            section="train",
            vocab_size=4096,
            seq_len=256,
            batch_tokens=8192,
            micro_batch=16,
            max_steps=args.train_steps,
            eval_every=args.train_steps,
            checkpoint_every=args.train_steps,
        )
        cfg.shards = override(cfg.shards, section="shards", val_fraction=0.05)
        with SiteServer(corpora) as server:
            cfg.crawl = CrawlConfig(seeds=[server.url(f"{args.site}/{args.seed_page}")], allow_private_networks=True, max_pages=0)
            root = CorpusRoot.open(os.path.join(work, "root"))
            result = Pipeline(root, cfg, lambda: ray, say=lambda m: None, crawl_spec=spec_dict(cfg.crawl)).run(list(STAGES))
        s = result["stages"]
        total = sum(result["seconds"].values())
        print(
            f"site {args.site}: {s['crawl']['pages_stored']:,} pages → {s['clean']['kept']:,} clean → "
            f"{s['dedup']['kept']:,} after dedup → {s['tokenizer']['tokens']['train']:,} train tokens → "
            f"{args.train_steps} steps (val loss {_fmt(s['train']['val_loss'])})"
        )
        print(f"(embedded Ray start: {ray_start:.1f}s, not counted below)")
        print(f"{'stage':<10} {'seconds':>8} {'share':>7}")
        for stage in STAGES:
            secs = result["seconds"][stage]
            print(f"{stage:<10} {secs:8.1f} {100 * secs / total:6.1f}%")
        slowest = max(result["seconds"], key=result["seconds"].get)
        print(f"{'total':<10} {total:8.1f}   slowest stage: {slowest}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fmt(x) -> str:
    return "n/a (empty validation split)" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
