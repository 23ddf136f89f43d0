"""``webmill stats``, ``webmill report`` and ``webmill query``: see the corpus."""
from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx


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


def _cell(v) -> str:
    s = "NULL" if v is None else str(v)
    s = s.replace("\n", " ")
    return s if len(s) <= 80 else s[:77] + "..."
