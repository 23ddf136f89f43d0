"""``webmill demo``: serve a real website on 127.0.0.1 and run the whole pipeline on it, offline.

crawl → clean → dedup → shard → tokenizer → train (the tiny model, a few minutes
on a CPU) → report, then the stats and a generated sample.
"""

from __future__ import annotations

import math
import shlex

import click

from webmill.cli import finish, json_option, pass_ctx
from webmill.shards import layout

DEMO_SITES = {"libstdcxx-manual": ["11/index.html", "12/index.html"], "postgresql-15": ["index.html"]}
DEMO_BATCH_TOKENS = 8192
MAX_STEPS = 240  # about 2 M tokens: the tiny model's 8 minutes on 2 cores


VAL_FRACTION, VAL_DOCS = 0.05, 10


def demo_val_fraction(documents: int) -> float:
    """5% of the documents for validation, or enough for about VAL_DOCS of them (at most half)."""
    return round(min(0.5, max(VAL_FRACTION, VAL_DOCS / max(documents, 1))), 4)


def demo_steps(train_tokens: int, epochs: float) -> int:
    """Optimizer steps for ``epochs`` passes over the train split, at most MAX_STEPS."""
    return max(10, min(MAX_STEPS, math.ceil(epochs * train_tokens / DEMO_BATCH_TOKENS)))


@click.command("demo")
@click.option(
    "--sites",
    default=None,
    help="folders of ../shared/corpora to serve and crawl [default: libstdcxx-manual,postgresql-15; "
    "where ../shared/corpora is absent, the Python library's own documentation, rendered offline]",
)
@click.option(
    "--epochs", type=float, default=1.5, show_default=True, help="passes over the train split (the steps are capped at %d)" % MAX_STEPS
)
@click.option("--train-steps", type=int, default=None, help="optimizer steps of the tiny model (instead of --epochs)")
@click.option("--max-pages", type=int, default=0, show_default=True, help="pages the crawl stores at most (0: every reachable page)")
@click.option("--port", type=int, default=0, show_default=True, help="port of the site server on 127.0.0.1 (0: any free one)")
@click.option("--report", "report_path", default=None, help="report file (default: <root>/report.html)")
@json_option
@pass_ctx
def demo(ctx, sites, epochs, train_steps, max_pages, port, report_path, as_json):
    """Serve real sites on 127.0.0.1, run crawl → … → train on them, write the report, print a sample."""
    from webmill.config import Config
    from webmill.crawl.config import CrawlConfig
    from webmill.crawl.run import spec_dict
    from webmill.errors import UserError
    from webmill.insight.report import build_report
    from webmill.insight.stats import corpus_stats, render
    from webmill.pipeline.run import STAGES, Pipeline
    from webmill.pylib_site import SITE, offline_corpora
    from webmill.serve import SiteServer, find_corpora
    from webmill.settings import override
    from webmill.train.generate import load_run, stream_text
    from webmill.train.runfiles import RunFiles

    corpora = find_corpora()
    offline = False
    names = [s.strip() for s in (sites or ("" if corpora is None else "libstdcxx-manual,postgresql-15")).split(",") if s.strip()]
    if corpora is not None and names and all((corpora / n).is_dir() for n in names):
        pass
    elif corpora is not None and sites and any((corpora / n).is_dir() for n in names):
        missing = [n for n in names if not (corpora / n).is_dir()]
        raise UserError(f"demo: {', '.join(str(corpora / n) for n in missing)} does not exist")
    else:
        if sites and names != [SITE]:
            ctx.say(f"demo: {sites} not found; serving the offline site instead")
        ctx.say("demo: ../shared/corpora not found; serving the Python library's documentation (pydoc), rendered offline")
        corpora, names = offline_corpora(say=ctx.say), [SITE]
        offline = True
    if train_steps is not None and train_steps < 1:
        raise UserError("demo: --train-steps must be at least 1")
    if epochs <= 0:
        raise UserError("demo: --epochs must be positive")
    cfg = Config()
    if offline:
        # API reference is code and listings: C4's '{' rule, Gopher's repetition rules and FineWeb's duplicate-line
        # rule, built to reject exactly that on the web, would drop nine pages in ten ([clean] options)
        cfg.clean = override(cfg.clean, section="clean", c4_curly_bracket=False, gopher_repetition=False, fineweb=False)
        ctx.say("demo: [clean] c4_curly_bracket = false, gopher_repetition = false, fineweb = false (the offline site is API reference)")
    root = ctx.root()
    try:
        server = SiteServer(corpora, port=port)
    except OSError as e:
        raise UserError(f"demo: cannot serve on 127.0.0.1:{port} ({e.strerror or e}); pick another --port, or 0 for any") from None
    with server:
        seeds = [server.url(f"{n}/{s}") for n in names for s in DEMO_SITES.get(n, ["index.html"])]
        ctx.say(f"demo: serving {corpora} on {server.base}; {len(seeds)} seed(s)")
        cfg.crawl = CrawlConfig(seeds=seeds, allow_private_networks=True, max_pages=max(0, max_pages))
        cfg.train = _train_config(cfg.train, train_steps or MAX_STEPS)
        pipeline = Pipeline(root, cfg, ctx.ray, say=ctx.say, crawl_spec=spec_dict(cfg.crawl), quiet=ctx.verbosity < 0)
        pipeline.run(list(STAGES[: STAGES.index("dedup") + 1]))
        # a validation split of about VAL_DOCS documents at least, so that a small crawl still gets a
        # validation loss (5% of 41 documents is none one time in eight)
        kept = pipeline.state["stages"]["dedup"]["summary"]["kept"]
        cfg.shards = override(cfg.shards, section="shards", val_fraction=demo_val_fraction(kept))
        pipeline.run(["shard", "tokenizer"])
    tokens = pipeline.state["stages"]["tokenizer"]["summary"].get("tokens", {})
    steps = train_steps or demo_steps(tokens.get("train", 0), epochs)
    ctx.say(
        f"demo: {tokens.get('train', 0):,} train and {tokens.get('val', 0):,} validation tokens; {steps} steps of "
        f"{DEMO_BATCH_TOKENS:,} tokens = {steps * DEMO_BATCH_TOKENS / max(tokens.get('train', 1), 1):.2f} epochs"
    )
    pipeline.cfg.train = _train_config(cfg.train, steps)
    result = pipeline.run(["train"])
    report_path = report_path or root.local_path("report.html") or "report.html"
    report = build_report(root, report_path)
    stats = corpus_stats(root)
    train = result["stages"]["train"]
    model, tok = load_run(RunFiles(root, layout.run(train["name"])), __import__("torch").device("cpu"))
    prompt = "The"
    sample = prompt + "".join(stream_text(model, tok, prompt, max_new_tokens=60, temperature=0.8, top_k=50, seed=0))
    seconds = {**{k: v.get("seconds", 0.0) for k, v in pipeline.state["stages"].items()}, **result["seconds"]}
    summary = {
        "pipeline": {**result, "seconds": seconds},
        "stats": stats,
        "report": report,
        "sample": sample,
        "tokens": tokens,
        "epochs": round(steps * DEMO_BATCH_TOKENS / max(tokens.get("train", 1), 1), 3),
        **{k: result["stages"][k] for k in STAGES},
    }
    total = sum(seconds.values()) or 1.0
    summary["next"] = next_commands(shlex.quote(root.display()), train["name"], _a_document(root))
    lines = [
        *render(stats),
        "",
        "time per stage: " + ", ".join(f"{k} {v:.0f}s ({100 * v / total:.0f}%)" for k, v in seconds.items()),
        f"report: {report['path']} ({len(report['charts'])} charts)",
        f"model:  {train.get('final')} (train loss {train.get('train_loss') or float('nan'):.3f}, "
        f"validation loss {train.get('val_loss') or float('nan'):.3f})",
        "sample: " + " ".join(sample.split()),
        "next:",
        *(f"  {c}" for c in summary["next"]),
    ]
    finish(as_json, summary, lines)


def next_commands(shown: str, run: str, a_doc: str | None) -> list[str]:
    """What to try on the demo's root, as the user would type it (the demo test runs the quick ones)."""
    return [
        f"webmill --root {shown} stats",
        f'webmill --root {shown} query "SELECT drop_reason, count(*) FROM excluded GROUP BY 1"',
        *([f"webmill --root {shown} trace {a_doc} --raw | head -40"] if a_doc else []),
        f"webmill --root {shown} trace runs/{run}",
        f"webmill --root {shown} generate runs/{run} --prompt 'The module'",
        f"webmill --root {shown} sft runs/{run}    # into an assistant, on questions made from its own pages",
        f"webmill --root {shown} chat runs/{run}-sft",
        f"webmill --root {shown} sweep    # the scaling law of this corpus: 9 small runs, minutes",
    ]


def _train_config(train, steps: int):
    from webmill.settings import override

    return override(
        train,
        section="train",
        vocab_size=4096,
        seq_len=256,
        batch_tokens=DEMO_BATCH_TOKENS,
        micro_batch=16,
        lr=3e-3,
        warmup=min(50, max(1, steps // 10)),
        max_steps=steps,
        eval_every=max(1, steps // 8),
        checkpoint_every=max(1, steps // 3),
    )


def _a_document(root) -> str | None:
    """One trained-on document's id, for the trace example."""
    from webmill.insight.views import connect

    try:
        con, views = connect(root)
        if "shards" not in views:
            return None
        row = con.execute("SELECT id FROM shards WHERE split = 'train' ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None
    except Exception:  # noqa: BLE001 - only a hint in the closing lines
        return None
