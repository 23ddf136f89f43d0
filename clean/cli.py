"""``webmill clean``: WARC → documents, with progress and a summary."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx


@click.command("clean")
@click.option("--crawl", "crawl_ids", multiple=True, help="crawl id(s) in the root (default: the newest)")
@click.option("--warc", "warcs", multiple=True, help="WARC files, globs or URIs (s3://…/*.warc.gz); repeatable")
@click.option("--name", default=None, help="output run name (default: the crawl id, or 'warc-<hash>')")
@click.option("--languages", default=None, help="comma-separated languages to keep (overrides [clean] languages)")
@json_option
@pass_ctx
def clean(ctx, crawl_ids, warcs, name, languages, as_json):
    """Extract clean documents from WARC files (trafilatura, language id, quality filters, PII)."""
    import hashlib
    from dataclasses import replace

    from webmill.clean.stage import CleanStage
    from webmill.clean.warcs import crawl_inputs, newest_crawl, uri_inputs
    from webmill.progress import Progress
    from webmill.settings import override

    cfg = override(ctx.config.clean, section="clean", languages=[l.strip() for l in languages.split(",")] if languages else None)
    root = ctx.root()
    inputs = []
    if not crawl_ids and not warcs:
        crawl_ids = (newest_crawl(root),)
    for cid in crawl_ids:
        inputs += crawl_inputs(root, cid)
    inputs += uri_inputs(list(warcs))
    run = name or (
        crawl_ids[0]
        if len(crawl_ids) == 1 and not warcs
        else "warc-" + hashlib.sha1("\n".join(i.name for i in inputs).encode()).hexdigest()[:10]
    )
    stage = CleanStage(inputs, run)
    with Progress(f"cleaning {len(inputs)} WARC file(s)…", quiet=ctx.verbosity < 0) as progress:
        s = stage.run(root, ctx.ray, replace(ctx.config, clean=cfg), progress)
    top = sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:6]
    lines = [
        f"clean {run}: {s['kept']:,} documents kept of {s['documents_in']:,} HTML responses "
        f"({100 * s['kept'] / max(s['documents_in'], 1):.0f}%) from {s['inputs']} WARC file(s), {s['docs_per_s']:,} docs/s",
        "  dropped: " + (", ".join(f"{k} {v:,}" for k, v in top) or "-"),
        "  languages: " + (", ".join(f"{k} {v:,}" for k, v in sorted(s["languages"].items(), key=lambda kv: -kv[1])[:8]) or "-"),
        f"  bytes: {s['bytes_in'] / 1e6:,.1f} MB HTML → {s['bytes_out'] / 1e6:,.1f} MB text",
        f"  documents: {root.display(s['docs'])}",
        f"  excluded:  {root.display(s['excluded_dataset'])}",
    ]
    if s["units_skipped"]:
        lines.insert(1, f"  resumed: {s['units_skipped']} committed unit(s) skipped")
    finish(as_json, s, lines)
