"""``webmill stats``, ``webmill report``, ``webmill query`` and ``webmill trace``: see the corpus."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx
from webmill.printable import printable


def _root(ctx, root_arg):
    if root_arg:
        ctx.root_uri = root_arg
    return ctx.root(create=False, writable=False)


@click.command("stats")
@click.argument("root", required=False)
@click.option("--top", type=int, default=10, show_default=True, help="hosts listed")
@json_option
@pass_ctx
def stats(ctx, root, top, as_json):
    """Per-stage counts, drop reasons, duplicate rates, languages, hosts, lengths, tokens."""
    from webmill.insight.stats import corpus_stats, render

    s = corpus_stats(_root(ctx, root), top=top)
    finish(as_json, s, render(s))


@click.command("report")
@click.argument("root", required=False)
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def report(ctx, root, output, as_json):
    """Write one self-contained HTML file with the corpus charts and training loss curves."""
    from webmill.insight.report import build_report

    r = build_report(_root(ctx, root), output)
    finish(as_json, r, [f"report: {r['path']} ({len(r['charts'])} charts, {r['bytes'] / 1e6:.1f} MB, opens offline)"])


@click.command("query")
@click.argument("args", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", type=int, default=100, show_default=True, help="rows printed in table format")
@pass_ctx
def query(ctx, args, fmt, limit):
    """SQL over the root's datasets: webmill query [ROOT] "SQL".

    Views: docs, clean_docs, excluded, clusters, pairs, crawl_log, shards.
    """
    import csv
    import json
    import sys

    import duckdb

    from webmill.errors import UserError, first_line
    from webmill.insight.views import connect

    if len(args) > 2:
        raise UserError('query takes [ROOT] "SQL" (quote the SQL)')
    root_arg, sql = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    con, views = connect(_root(ctx, root_arg))
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if cols else []
    except duckdb.Error as e:
        raise UserError(f"query: {first_line(e)} (views here: {', '.join(sorted(views)) or 'none'})") from None
    if fmt == "json":
        click.echo(json.dumps([dict(zip(cols, r)) for r in rows], default=str))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        if sys.stdout.isatty():  # to a file or a pipe the values go as they are
            rows = [[printable(v) if isinstance(v, str) else v for v in r] for r in rows]
        w.writerows(rows)
    else:
        shown = [[_cell(v) for v in r] for r in rows[:limit]]
        widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(cols)]
        click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        click.echo("  ".join("-" * w for w in widths))
        for r in shown:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)))
        if len(rows) > limit:
            click.echo(f"({len(rows):,} rows, {limit} shown; --limit or --format csv for all)")


@click.command("trace")
@click.argument("target")
@click.option("--raw", is_flag=True, help="also print the WARC record: WARC and HTTP headers, then the payload")
@click.option("--max-bytes", type=int, default=1 << 20, show_default=True, help="payload bytes printed with --raw")
@json_option
@pass_ctx
def trace(ctx, target, raw, max_bytes, as_json):
    """Lineage. TARGET is a document id or URL (its path through every stage and the runs that
    learned from it) or a training run (runs/NAME or NAME: its shards, checksums and documents)."""
    import sys

    from webmill.clean.warcs import SourceError, read_record, source_input
    from webmill.errors import UserError
    from webmill.insight.trace import is_run_target, render_document, render_run, trace_document, trace_run

    root = ctx.root(create=False, writable=False)
    run = is_run_target(root, target)
    if run is not None:
        t = trace_run(root, run)
        finish(as_json, t, render_run(t))
        return
    t = trace_document(root, target)
    if not raw:
        finish(as_json, t, render_document(t))
        return
    sources = [(c["source"], c["run"]) for d in t["documents"] for c in d["clean"] if c.get("source")]
    sources += [({"warc": c["warc_file"], "offset": c["warc_offset"]}, None) for c in t["crawl"] if c.get("warc_file") and not sources]
    if not sources:
        raise UserError(f"trace --raw: {target!r} has no stored WARC record (its fetch stored nothing)")
    src, clean_run = sources[0]
    check_source(root, src["warc"], clean_run)
    try:
        rec = read_record(source_input(root, src["warc"]), src["offset"], max_body=max_bytes)
    except SourceError as e:
        raise UserError(f"trace --raw: {e}") from None
    if as_json:
        t["record"] = {
            **src,
            "warc_headers": rec["warc_headers"],
            "http_headers": rec["http_headers"],
            "payload": rec["payload"].decode("utf-8", "replace"),
            "truncated": rec["truncated"],
        }
        finish(True, t, [])
        return
    click.echo(printable(f"{src['warc']} @ {src['offset']}"), err=True)
    out = sys.stdout.buffer
    if sys.stdout.isatty():  # a page's bytes on a terminal: its escapes escaped (to a file, the bytes as stored)
        text = (rec["warc_headers"] + rec["http_headers"]).encode() + rec["payload"]
        out.write(printable(text.decode("utf-8", "replace"), keep_newlines=True).encode())
    else:
        out.write(rec["warc_headers"].encode())
        out.write(rec["http_headers"].encode())
        out.write(rec["payload"])
    if rec["truncated"]:
        out.write(f"\n[payload cut at {max_bytes:,} bytes: --max-bytes]\n".encode())
    out.flush()


def check_source(root, warc: str, clean_run: str | None) -> None:
    """A record's source is read only where it lies under the root (``CorpusRoot.path``'s checks) or is
    one of the inputs its clean run recorded: a crafted ``source`` must not make ``trace --raw`` open
    any file or bucket the operator's credentials reach."""
    from webmill.errors import UserError
    from webmill.shards import layout
    from webmill.shards.manifest import Manifest

    if "://" not in warc:
        return
    recorded = (Manifest.read_json(root, layout.clean_docs(clean_run)) or {}).get("inputs") if clean_run else None
    if not isinstance(recorded, list) or warc not in recorded:
        raise UserError(f"trace --raw: the record's source {warc} is neither under the root nor an input its clean run recorded")


def _cell(v) -> str:
    s = "NULL" if v is None else str(v)
    s = printable(s.replace("\n", " "))
    return s if len(s) <= 80 else s[:77] + "..."
