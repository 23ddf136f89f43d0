"""Which verbs exist, and where each one's code lives."""
from __future__ import annotations

import click

from webmill.cli import not_built

# verb → (issue that builds it, help line)
PLANNED = {
    "crawl": (3, "schedule and run crawls (scrapy → WARC)"),
    "scheduler": (3, "launch due crawl jobs"),
    "clean": (4, "WARC → clean documents (trafilatura, language id, quality, PII)"),
    "dedup": (5, "exact and MinHash-LSH near-duplicate removal"),
    "shard": (7, "write shuffled training shards"),
    "stats": (7, "corpus statistics per stage"),
    "report": (7, "a self-contained HTML report"),
    "query": (7, "SQL (DuckDB) over the corpus datasets"),
    "tokenizer": (6, "train a byte-level BPE tokenizer on shards"),
    "train": (6, "train a model on shards"),
    "generate": (6, "sample text from a trained model"),
    "run": (7, "the whole pipeline from one config"),
    "demo": (7, "serve a real site, run the pipeline, train, report"),
}


def register(cli: click.Group) -> None:
    built = _built_commands()
    for verb, (issue, help_line) in PLANNED.items():
        if verb in cli.commands:
            continue
        cmd = built.get(verb)
        if cmd is None:
            cmd = click.Command(verb, callback=not_built(verb, issue), help=f"{help_line} (not built yet)",
                                context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
        cli.add_command(cmd, verb)


def _built_commands() -> dict[str, click.Command]:
    from webmill.clean.cli import clean
    from webmill.crawl.cli import crawl, scheduler
    from webmill.dedup.cli import dedup
    from webmill.demo import demo
    from webmill.insight.cli import query, report, stats
    from webmill.pipeline.cli import run
    from webmill.shards.cli import shard
    from webmill.train.cli import generate, tokenizer, train

    out: dict[str, click.Command] = {"crawl": crawl, "scheduler": scheduler, "clean": clean, "dedup": dedup,
                                     "demo": demo, "shard": shard, "tokenizer": tokenizer, "train": train,
                                     "generate": generate, "run": run, "stats": stats, "report": report,
                                     "query": query}
    return out
