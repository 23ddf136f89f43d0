"""The same pipeline on a local root and on an ``s3://`` root (moto's server on 127.0.0.1), in one run.

Serves a site on 127.0.0.1 (a ../shared/corpora site, or the pydoc site the project
renders offline), starts one embedded Ray with the S3 credentials in its environment,
runs crawl → clean → dedup → shard → tokenizer → train into a fresh local root, then
into a fresh prefix of the bucket, and prints the seconds per stage and the speed ratio
local/object-store per stage and overall (1.0: the object store costs nothing; target
overall >= 0.7).

    python bench/object_store.py [--site postgresql-15] [--train-steps 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from s3server import S3Server  # noqa: E402

from webmill.config import Config  # noqa: E402
from webmill.crawl.config import CrawlConfig  # noqa: E402
from webmill.crawl.run import spec_dict  # noqa: E402
from webmill.pipeline.run import STAGES, Pipeline  # noqa: E402
from webmill.runtime import ensure_ray  # noqa: E402
from webmill.serve import SiteServer, find_corpora  # noqa: E402
from webmill.settings import override  # noqa: E402
from webmill.shards import CorpusRoot  # noqa: E402


def run_pipeline(root: CorpusRoot, cfg: Config, ray) -> dict:
    return Pipeline(root, cfg, lambda: ray, say=lambda m: None, crawl_spec=spec_dict(cfg.crawl)).run(list(STAGES))


COMPARED = (("crawl", "pages_stored"), ("clean", "kept"), ("dedup", "kept"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default="postgresql-15", help="a ../shared/corpora site (the pydoc site where absent)")
    ap.add_argument("--train-steps", type=int, default=40)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="webmill-bench-objectstore-"))
    s3 = S3Server()
    try:
        os.environ.update(s3.env)  # before Ray starts: its workers inherit the credentials
        corpora = find_corpora()
        if corpora is None or not (corpora / args.site).is_dir():
            from webmill.pydoc_site import render_site

            corpora, args.site = render_site(work / "site"), "pydoc"
        ray = ensure_ray(None)
        cfg = Config()
        cfg.train = override(
            cfg.train,
            section="train",
            vocab_size=2048,
            seq_len=128,
            batch_tokens=4096,
            micro_batch=16,
            max_steps=args.train_steps,
            eval_every=args.train_steps,
            checkpoint_every=10,
        )
        cfg.shards = override(cfg.shards, section="shards", val_fraction=0.05)
        results = {}
        with SiteServer(corpora) as server:
            cfg.crawl = CrawlConfig(seeds=[server.url(f"{args.site}/index.html")], allow_private_networks=True, max_pages=0, workers=2)
            for kind, uri in (("local", str(work / "root")), ("s3", s3.uri("bench"))):
                t = time.perf_counter()
                results[kind] = run_pipeline(CorpusRoot.open(uri), cfg, ray)
                results[kind]["wall"] = time.perf_counter() - t
        local, remote = results["local"], results["s3"]
        st = local["stages"]
        print(
            f"site {args.site}: {st['crawl']['pages_stored']:,} pages → {st['clean']['kept']:,} clean → "
            f"{st['dedup']['kept']:,} after dedup → {st['tokenizer']['tokens']['train']:,} train tokens → "
            f"{args.train_steps} steps; same counts on s3: "
            f"{all(remote['stages'][k].get(f) == st[k].get(f) for k, f in COMPARED)}"
        )
        print(f"{'stage':<10} {'local s':>8} {'s3 s':>8} {'speed s3/local':>15}")
        worst, worst_ratio = None, 2.0
        for stage in STAGES:
            a, b = local["seconds"][stage], remote["seconds"][stage]
            ratio = a / b if b else 1.0
            if ratio < worst_ratio:
                worst, worst_ratio = stage, ratio
            print(f"{stage:<10} {a:8.1f} {b:8.1f} {ratio:15.2f}")
        ta, tb = sum(local["seconds"].values()), sum(remote["seconds"].values())
        print(f"{'total':<10} {ta:8.1f} {tb:8.1f} {ta / tb:15.2f}   (target >= 0.7)")
        print(f"costliest on the object store: {worst} (speed ratio {worst_ratio:.2f})")
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
