"""``webmill run CONFIG.toml``: the whole pipeline from one config."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx


@click.command("run")
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option("--from", "first", default=None, help="first stage to run (crawl, clean, dedup, shard, tokenizer, train)")
@click.option("--to", "last", default=None, help="last stage to run")
@json_option
@pass_ctx
def run(ctx, config_file, first, last, as_json):
    """Run crawl → clean → dedup → shard → tokenizer → train; stages whose output is up to date are skipped."""
    import os

    from webmill.config import load_config
    from webmill.crawl.run import spec_dict
    from webmill.pipeline.run import Pipeline, select

    cfg = load_config(config_file)
    ctx._config = cfg  # the run's file is the config of every stage, [root] included
    stages = select(first, last)
    root = ctx.root()
    if ctx.ray_address:
        ctx.ray()  # joining a cluster is quick: check the root against it before any stage
    spec = spec_dict(cfg.crawl, os.path.dirname(os.path.abspath(config_file))) if not cfg.run.crawl else None
    summary = Pipeline(root, cfg, ctx.ray, say=ctx.say, crawl_spec=spec, quiet=ctx.verbosity < 0).run(stages)
    lines = [f"pipeline done in {summary['total_seconds']:.1f}s ({root.display()}):"]
    total = sum(summary["seconds"].values()) or 1.0
    for stage, secs in summary["seconds"].items():
        lines.append(f"  {stage:<10} {secs:8.1f}s  {100 * secs / total:5.1f}%")
    finish(as_json, summary, lines)
