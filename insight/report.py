"""One self-contained HTML report: plotly charts with plotly.js inlined once, no network fetches."""

from __future__ import annotations

import html
import json
import os
import time

from webmill.insight.stats import corpus_stats, render
from webmill.insight.views import connect
from webmill.shards import layout
from webmill.shards.root import CorpusRoot
from webmill.train.runfiles import read_metrics


def build_report(root: CorpusRoot, out_path: str) -> dict:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    from webmill.train.sweep import read_sweeps

    s = corpus_stats(root)
    con, views = connect(root)
    charts: list[tuple[str, go.Figure]] = []

    if s["funnel"]:
        labels, values = zip(*s["funnel"])
        charts.append(
            (
                "Funnel: from pages fetched to documents trained on",
                go.Figure(go.Funnel(y=list(labels), x=list(values), textinfo="value+percent initial")),
            )
        )
    if s["clean"]["drop_reasons"]:
        d = s["clean"]["drop_reasons"]
        charts.append(("Why documents were dropped (clean)", _bar(go, list(d), list(d.values()), "documents")))
    langs = s["docs"].get("languages") or s["clean"]["languages"]
    if langs:
        charts.append(("Languages of kept documents", _bar(go, list(langs)[:20], list(langs.values())[:20], "documents")))
    if s["docs"].get("top_hosts"):
        h = s["docs"]["top_hosts"]
        charts.append(("Top hosts", _bar(go, list(h), list(h.values()), "documents", horizontal=True)))
    if "docs" in views:
        bins = length_bins(con)
        if bins:
            charts.append(("Document length", _log_histogram(go, bins, "characters per document (log scale)", "documents")))
    sizes = s["dedup"].get("cluster_sizes")
    if sizes:
        charts.append(
            ("Duplicate cluster sizes", _bar(go, [str(k) for k in sizes], list(sizes.values()), "clusters", x_title="documents in cluster"))
        )
    for name, points in _loss_curves(root).items():
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=points["step"], y=points["loss"], name="train loss", mode="lines"))
        if points["val_step"]:
            fig.add_trace(go.Scatter(x=points["val_step"], y=points["val_loss"], name="validation loss", mode="lines+markers"))
        fig.update_layout(xaxis_title="step", yaxis_title="loss (nats/token)")
        charts.append((f"Training run {name}: loss", fig))

    for name, sweep in read_sweeps(root).items():
        charts.append((f"Scaling law {name}: held-out loss vs tokens, one line per model size", _sweep_figure(go, sweep)))

    body = []
    for i, (title, fig) in enumerate(charts):
        fig.update_layout(margin=dict(l=60, r=20, t=30, b=50), height=380, template="plotly_white")
        body.append(
            f"<section><h2>{html.escape(title)}</h2>"
            + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{i}", config={"displaylogo": False})
            + "</section>"
        )
    if not charts:
        body.append(
            '<p id="nothing-yet">Nothing in this root yet: no crawl, documents, shards or training runs. '
            "Start with <code>webmill crawl run</code>, <code>webmill clean --warc FILES</code>, "
            "or <code>webmill demo</code>.</p>"
        )
    summary = "".join(f"<li>{html.escape(line.strip())}</li>" for line in render(s)[1:])
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>webmill report: {html.escape(s["root"])}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<script>{get_plotlyjs()}</script>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
section{{margin:2em 0}} h2{{font-size:1.1em}} code{{background:#f4f4f4}}</style></head>
<body><h1>webmill corpus report</h1><p><code>{html.escape(s["root"])}</code>, {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}</p>
<ul>{summary}</ul>
{"".join(body)}
<script type="application/json" id="webmill-stats">{html.escape(json.dumps(s, default=str))}</script>
</body></html>"""
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out_path)
    return {"path": out_path, "charts": [t for t, _ in charts], "bytes": len(page.encode())}


BINS_PER_DECADE = 10


def length_bins(con) -> list[tuple[float, float, int]]:
    """(low, high, documents) per bin of n_chars, bins a tenth of a decade wide, counted by
    DuckDB over every document (no sample held in the report's process)."""
    rows = con.execute(f"""
        SELECT floor(log10(greatest(n_chars, 1)) * {BINS_PER_DECADE}) AS b, count(*) FROM docs
        WHERE n_chars IS NOT NULL GROUP BY 1 ORDER BY 1""").fetchall()
    return [(10 ** (b / BINS_PER_DECADE), 10 ** ((b + 1) / BINS_PER_DECADE), n) for b, n in rows]


def _log_histogram(go, bins, x_title, y_title):
    """Bars on a log axis, each spanning its bin. (plotly's own Histogram bins on a linear
    scale, and on a log axis its bars start at 0, which a log axis cannot draw: no bars.)"""
    fig = go.Figure(
        go.Bar(
            x=[(lo + hi) / 2 for lo, hi, _ in bins],
            y=[n for _, _, n in bins],
            width=[hi - lo for lo, hi, _ in bins],
            customdata=[[round(lo), round(hi)] for lo, hi, _ in bins],
            hovertemplate="%{customdata[0]}-%{customdata[1]} characters: %{y}<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, xaxis_type="log", bargap=0)
    return fig


def _bar(go, x, y, y_title, *, horizontal=False, x_title=None):
    if horizontal:
        fig = go.Figure(go.Bar(x=y[::-1], y=x[::-1], orientation="h"))
        fig.update_layout(xaxis_title=y_title)
    else:
        fig = go.Figure(go.Bar(x=x, y=y))
        fig.update_layout(yaxis_title=y_title, xaxis_title=x_title)
    return fig


def _sweep_figure(go, sweep: dict):
    """The grid's losses against D for each N, with the fitted L(N, D) through them."""
    import numpy as np

    from webmill.train.sweep import predict_loss

    law, fig = sweep["fit"], go.Figure()
    tokens = [p["tokens_seen"] for p in sweep["points"]]
    xs = np.geomspace(min(tokens) / 2, max(tokens) * 4, 60)
    for n in sorted({p["params"] for p in sweep["points"]}):
        pts = [p for p in sweep["points"] if p["params"] == n]
        label = f"N = {n / 1e6:.2f}M"
        fig.add_trace(go.Scatter(x=[p["tokens_seen"] for p in pts], y=[p["val_loss"] for p in pts], mode="markers", name=label))
        fig.add_trace(go.Scatter(x=xs, y=[predict_loss(law, n, x) for x in xs], mode="lines", name=f"{label}, fit", line=dict(dash="dot")))
    r2 = "n/a" if law["r2"] is None else f"{law['r2']:.3f}"
    fig.update_layout(
        xaxis_type="log",
        xaxis_title="tokens trained on (D)",
        yaxis_title="held-out loss (nats/token)",
        title=dict(text=f"L = {law['E']:.2f} + A/N^{law['alpha']:.2f} + B/D^{law['beta']:.2f}, R² {r2}", font=dict(size=13)),
    )
    return fig


def _loss_curves(root: CorpusRoot) -> dict:
    out = {}
    for name in root.listdir(layout.RUNS):
        if not root.exists(layout.run(name), "metrics.jsonl"):
            continue
        pts = {"step": [], "loss": [], "val_step": [], "val_loss": []}
        for r in read_metrics(root.read_bytes(layout.run(name), "metrics.jsonl")):
            pts["step"].append(r["step"])
            pts["loss"].append(r["loss"])
            if "val_loss" in r:
                pts["val_step"].append(r["step"])
                pts["val_loss"].append(r["val_loss"])
        out[name] = pts
    return out
