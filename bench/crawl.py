"""Crawl speed: webmill's crawl vs a bare scrapy spider of the same concurrency.

Both crawl the same real site (../shared/corpora/postgresql-15 by default) served
on 127.0.0.1. The bare spider follows every link within the host and does nothing
with the pages; webmill also writes WARC records, the crawl log (Parquet), trap
and opt-out checks, and runs in a Ray worker task. Peak memory is the crawling
process's peak RSS.

    python bench/crawl.py [--site postgresql-15] [--concurrency 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import psutil
from peakmem import PeakMemory, cmdline, rss

from webmill.serve import SiteServer, find_corpora

BARE = textwrap.dedent("""
    import sys, time, scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor

    start, host, conc = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = 0
    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = [start]
        links = LinkExtractor()
        def parse(self, response):
            global count
            count += 1
            for link in self.links.extract_links(response):
                if link.url.split("/")[2] == host:
                    yield scrapy.Request(link.url, callback=self.parse)
    p = CrawlerProcess(settings={"CONCURRENT_REQUESTS": conc, "CONCURRENT_REQUESTS_PER_DOMAIN": conc,
                                 "LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": True, "TELNETCONSOLE_ENABLED": False,
                                 "COOKIES_ENABLED": False})
    t = time.perf_counter()
    p.crawl(Bare); p.start()
    print(count, time.perf_counter() - t)
""")


def peak_rss_of(marker: str) -> PeakMemory:
    """The peak RSS of the one process whose command line holds ``marker`` (the crawler)."""
    return PeakMemory(lambda: max(rss(p for p in psutil.process_iter() if marker in cmdline(p)), default=0), 0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="postgresql-15")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    corpora = find_corpora()
    if corpora is None:
        raise SystemExit("bench: ../shared/corpora not found")

    from webmill.crawl.config import CrawlConfig
    from webmill.crawl.run import run_crawl, spec_dict
    from webmill.crawl.warc import new_crawl_id
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot

    ray = ensure_ray(None)
    bare_script = os.path.join(tempfile.mkdtemp(prefix="wm-bench-"), "bare_scrapy_bench.py")
    with open(bare_script, "w") as f:
        f.write(BARE)
    results = {"bare scrapy": [], "webmill": []}
    peaks = {"bare scrapy": 0, "webmill": 0}
    with SiteServer(corpora) as server:
        seed = server.url(f"{args.site}/index.html")
        host = f"127.0.0.1:{server.port}"
        for _ in range(args.repeat):
            with peak_rss_of("bare_scrapy_bench") as mem:  # scrapy reads the spider's source: a file, not -c
                out = subprocess.run(
                    [sys.executable, bare_script, seed, host, str(args.concurrency)], capture_output=True, text=True, check=True
                )
            pages, secs = out.stdout.split()
            results["bare scrapy"].append((int(pages), float(secs)))
            peaks["bare scrapy"] = max(peaks["bare scrapy"], mem.peak)

            work = tempfile.mkdtemp(prefix="wm-crawl-bench-")
            try:
                root = CorpusRoot.open(work)
                cfg = CrawlConfig(
                    seeds=[seed],
                    allow_private_networks=True,
                    concurrency=args.concurrency,
                    concurrency_per_host=args.concurrency,
                    max_pages=0,
                )
                crawl_id = new_crawl_id()
                with peak_rss_of("webmill.crawl.worker") as mem:
                    s = run_crawl(root, ray, crawl_id, spec_dict(cfg))
                results["webmill"].append((s["pages_stored"], s["seconds"]))
                peaks["webmill"] = max(peaks["webmill"], mem.peak)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    rate = {k: max(p / s for p, s in v) for k, v in results.items()}
    for k in results:
        pages = results[k][-1][0]
        print(f"{k:12} {rate[k]:8.1f} pages/s  ({pages} pages, peak RSS {peaks[k] / 2**20:,.0f} MiB)")
    print(f"ratio webmill/bare scrapy: {rate['webmill'] / rate['bare scrapy']:.2f}  (target >= 0.80)")
    print(
        "webmill's time includes starting its worker process and writing the crawl log; Ray's own start-up is excluded (once per process)."
    )


if __name__ == "__main__":
    main()
