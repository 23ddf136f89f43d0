"""The benches' input: a webmill crawl of real sites served on 127.0.0.1, and its HTML responses."""

from __future__ import annotations

from webmill.serve import SiteServer, find_corpora


def crawl_sites(sites: list[str], root_dir: str) -> str:
    from webmill.crawl.config import CrawlConfig
    from webmill.crawl.run import run_crawl, spec_dict
    from webmill.crawl.warc import new_crawl_id
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot

    with SiteServer(find_corpora()) as server:
        seeds = [server.url(f"{site}/{s}") for site in sites for s in SEEDS[site]]
        cfg = CrawlConfig(seeds=seeds, allow_private_networks=True, warc_max_bytes=2 << 20, max_pages=0)
        crawl_id = new_crawl_id()
        run_crawl(CorpusRoot.open(root_dir), ensure_ray(None), crawl_id, spec_dict(cfg))
    return crawl_id


SEEDS = {
    "postgresql-15": ["index.html"],
    "sqlite-3": ["index.html"],
    "libstdcxx-manual": ["11/index.html", "12/index.html"],
    "debian-handbook": [f"{l}/index.html" for l in ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP", "ko-KR", "ar-MA")],
}


def html_records(paths: list[str]) -> list[tuple[str, bytes]]:
    from webmill.clean.warcs import iter_records, uri_inputs

    out = []
    for inp in uri_inputs(paths):
        out += [(r["url"], r["body"]) for r in iter_records(inp, {}) if "body" in r]
    return out
