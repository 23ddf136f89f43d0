"""``webmill demo``: serve a real website on 127.0.0.1 and run the whole pipeline on it, offline.

crawl → clean → dedup → shard → tokenizer → train (the tiny model, a few minutes
on a CPU) → report, then the stats and a generated sample.
"""
from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx

DEMO_SITES = {"libstdcxx-manual": ["11/index.html", "12/index.html"], "postgresql-15": ["index.html"]}


@click.command("demo")
@click.option("--sites", default="libstdcxx-manual,postgresql-15", show_default=True,
              help="folders of ../shared/corpora to serve and crawl (Python's own docs where those are absent)")
@click.option("--train-steps", type=int, default=300, show_default=True, help="optimizer steps of the tiny model")
@click.option("--report", "report_path", default=None, help="report file (default: <root>/report.html)")
@json_option
@pass_ctx
def demo(ctx, sites, train_steps, report_path, as_json):
    """Serve real sites on 127.0.0.1, run crawl → … → train on them, write the report, print a sample."""
    import tempfile
    from pathlib import Path

    from webmill.config import Config
    from webmill.crawl.config import CrawlConfig
    from webmill.crawl.run import spec_dict
    from webmill.errors import UserError
    from webmill.insight.report import build_report
    from webmill.insight.stats import corpus_stats, render
    from webmill.pipeline.run import STAGES, Pipeline
    from webmill.pydoc_site import render_site
    from webmill.serve import SiteServer, find_corpora
    from webmill.settings import override
    from webmill.train.generate import load_run, stream_text
    from webmill.train.runfiles import RunFiles

    corpora = find_corpora()
    names = [s.strip() for s in sites.split(",") if s.strip()]
    tmp = None
    if corpora is None or not all((corpora / n).is_dir() for n in names):
        if corpora is not None and any((corpora / n).is_dir() for n in names):
            missing = [n for n in names if not (corpora / n).is_dir()]
            raise UserError(f"demo: {', '.join(str(corpora / n) for n in missing)} does not exist")
        tmp = tempfile.TemporaryDirectory(prefix="webmill-pydoc-")
        corpora, names = render_site(Path(tmp.name)), ["pydoc"]
        ctx.say("demo: ../shared/corpora not found; serving Python's own documentation (pydoc_data)")
    cfg = Config()
    cfg.train = override(cfg.train, section="train", vocab_size=4096, seq_len=256, batch_tokens=8192, micro_batch=16,
                         lr=3e-3, warmup=min(50, train_steps // 10), max_steps=train_steps,
                         eval_every=max(1, train_steps // 5), checkpoint_every=max(1, train_steps // 3))
    cfg.shards = override(cfg.shards, section="shards", val_fraction=0.02)
    root = ctx.root()
    with SiteServer(corpora) as server:
        seeds = [server.url(f"{n}/{s}") for n in names for s in DEMO_SITES.get(n, ["index.html"])]
        ctx.say(f"demo: serving {corpora} on {server.base}; {len(seeds)} seed(s)")
        cfg.crawl = CrawlConfig(seeds=seeds, allow_private_networks=True, max_pages=0)
        pipeline = Pipeline(root, cfg, ctx.ray, say=ctx.say, crawl_spec=spec_dict(cfg.crawl))
        result = pipeline.run(list(STAGES))
    if tmp is not None:
        tmp.cleanup()
    report_path = report_path or root.local_path("report.html") or "report.html"
    report = build_report(root, report_path)
    stats = corpus_stats(root)
    train = result["stages"]["train"]
    model, tok = load_run(RunFiles(root, f"runs/{train['name']}"), __import__("torch").device("cpu"))
    prompt = "The"
    sample = prompt + "".join(stream_text(model, tok, prompt, max_new_tokens=60, temperature=0.8, top_k=50, seed=0))
    summary = {"pipeline": result, "stats": stats, "report": report, "sample": sample,
               **{k: result["stages"][k] for k in STAGES}}
    total = sum(result["seconds"].values()) or 1.0
    lines = [*render(stats), "", "time per stage: " + ", ".join(f"{k} {v:.0f}s ({100 * v / total:.0f}%)"
                                                             for k, v in result["seconds"].items()),
             f"report: {report['path']} ({len(report['charts'])} charts)",
             f"model:  {train.get('final')}",
             "sample: " + " ".join(sample.split()),
             f"next:   webmill --root {root.display()} query \"SELECT drop_reason, count(*) FROM excluded GROUP BY 1\""]
    finish(as_json, summary, lines)
