"""``webmill demo``: serve a real website on 127.0.0.1 and run the stages built so far on it."""
from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx

DEMO_SITES = {"libstdcxx-manual": ["11/index.html", "12/index.html"], "postgresql-15": ["index.html"]}


@click.command("demo")
@click.option("--sites", default="libstdcxx-manual,postgresql-15", show_default=True,
              help="folders of ../shared/corpora to serve and crawl")
@json_option
@pass_ctx
def demo(ctx, sites, as_json):
    """Serve real sites on 127.0.0.1, then crawl → clean → dedup them into the corpus root."""
    import time

    from webmill.clean.stage import run_clean
    from webmill.clean.warcs import crawl_inputs
    from webmill.crawl.catalog import Catalog
    from webmill.crawl.config import CrawlConfig
    from webmill.crawl.run import run_crawl, spec_dict
    from webmill.crawl.warc import new_crawl_id
    from webmill.dedup.stage import run_dedup
    from webmill.errors import UserError
    from webmill.serve import SiteServer, find_corpora

    corpora = find_corpora()
    if corpora is None:
        raise UserError("demo: ../shared/corpora not found beside the checkout (set WEBMILL_CORPORA to a folder of sites)")
    names = [s.strip() for s in sites.split(",") if s.strip()]
    for name in names:
        if not (corpora / name).is_dir():
            raise UserError(f"demo: {corpora / name} does not exist")
    root, ray = ctx.root(), ctx.ray()
    timings = {}
    with SiteServer(corpora) as server:
        seeds = [server.url(f"{n}/{s}") for n in names for s in DEMO_SITES.get(n, ["index.html"])]
        ctx.say(f"demo: serving {corpora} on {server.base}; crawling {len(seeds)} seed(s)")
        spec = spec_dict(CrawlConfig(seeds=seeds, allow_private_networks=True, max_pages=0))
        crawl_id = new_crawl_id()
        catalog = Catalog.open(root)
        catalog.add_job(crawl_id, spec, state="running")
        t = time.time()
        crawl = run_crawl(root, ray, crawl_id, spec, catalog=catalog)
        catalog.set_state(crawl_id, "done", ended=time.time(), counts=crawl["outcomes"])
        timings["crawl"] = time.time() - t
    ctx.say(f"demo: crawled {crawl['pages_stored']:,} pages; cleaning")
    t = time.time()
    clean = run_clean(root, ray, crawl_inputs(root, crawl_id), crawl_id, ctx.config.clean)
    timings["clean"] = time.time() - t
    ctx.say(f"demo: kept {clean['kept']:,} documents; deduplicating")
    t = time.time()
    dedup = run_dedup(root, ray, [clean["docs"]], crawl_id, ctx.config.dedup)
    timings["dedup"] = time.time() - t
    summary = {"crawl": crawl, "clean": clean, "dedup": dedup, "seconds": timings, "root": root.display()}
    lines = [
        f"demo corpus in {root.display()}:",
        f"  crawl {crawl_id}: {crawl['pages_stored']:,} pages stored of {crawl['urls_attempted']:,} URLs ({timings['crawl']:.0f}s)",
        f"  clean: {clean['kept']:,} documents kept of {clean['documents_in']:,} ({timings['clean']:.0f}s); "
        f"top drop reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(clean['dropped'].items(), key=lambda kv: -kv[1])[:3]),
        f"  dedup: {dedup['kept']:,} kept; {dedup['exact_dups']:,} exact and {dedup['near_dups']:,} near duplicates "
        f"in {dedup['clusters']:,} clusters ({timings['dedup']:.0f}s)",
        f"  documents: {root.display(dedup['docs'])}",
        "  (training shards, the tokenizer, training and the report are not built yet: issues #6 and #7)",
    ]
    finish(as_json, summary, lines)
