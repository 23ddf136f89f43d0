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
    "trace": (16, "lineage: a document through every stage, its WARC record, a run's shards"),
    "tokenizer": (6, "train a byte-level BPE tokenizer on shards and encode them"),
    "train": (6, "train a model on shards"),
    "generate": (6, "sample text from a trained model"),
    "sft": (18, "fine-tune a trained model on conversations into an assistant"),
    "chat": (18, "talk with a fine-tuned model"),
    "sweep": (18, "a grid of small models and the scaling law L(N, D) of the corpus"),
    "run": (7, "the whole pipeline from one config"),
    "demo": (7, "serve a real site, run the pipeline, train, report"),
}


# verb (or "verb sub-verb") → example command lines, shown at the end of its --help
EXAMPLES = {
    "crawl": ["webmill --root ./corpus crawl run spec.toml", "webmill crawl list --root ./corpus"],
    "crawl run": ["webmill --root ./corpus crawl run spec.toml --max-pages 500 --workers 2"],
    "crawl submit": ["webmill --root ./corpus crawl submit spec.toml", "webmill --root ./corpus scheduler --once"],
    "crawl schedule": ["webmill --root ./corpus crawl schedule spec.toml --every 7d"],
    "crawl list": ["webmill --root ./corpus crawl list --json"],
    "crawl status": ["webmill --root ./corpus crawl status CRAWL_ID"],
    "crawl cancel": ["webmill --root ./corpus crawl cancel CRAWL_ID"],
    "crawl resume": ["webmill --root ./corpus crawl resume CRAWL_ID"],
    "scheduler": ["webmill --root ./corpus scheduler --once     # from cron"],
    "clean": [
        "webmill --root ./corpus clean                  # the newest crawl",
        "webmill --root ./corpus clean --warc 'warcs/*.warc.gz' --name mywarcs --languages en,de",
    ],
    "dedup": ["webmill --root ./corpus dedup --input clean/CRAWL_ID/docs --name web"],
    "shard": ["webmill --root ./corpus --config webmill.toml shard --name web-v1 --seed 1"],
    "stats": ["webmill --root ./corpus stats", "webmill --root 's3://bucket/corpus?region=eu-west-1' stats --json"],
    "report": ["webmill --root ./corpus report -o report.html"],
    "query": ['webmill --root ./corpus query "SELECT drop_reason, count(*) FROM excluded GROUP BY 1"'],
    "trace": [
        "webmill --root ./corpus trace https://www.postgresql.org/docs/15/sql-select.html",
        "webmill --root ./corpus trace DOC_ID --raw | less",
        "webmill --root ./corpus trace runs/small-1 --json",
    ],
    "tokenizer": ["webmill --root ./corpus tokenizer train"],
    "tokenizer train": ["webmill --root ./corpus --config webmill.toml tokenizer train"],
    "tokenizer encode": ["webmill --root ./corpus tokenizer encode --shards web-v1"],
    "train": [
        "webmill --root ./corpus train --shards web-v1 --name small-1 --preset small",
        "webmill --root ./corpus train --resume small-1",
    ],
    "generate": [
        "webmill --root ./corpus generate runs/small-1 --prompt 'The query planner' --seed 7",
        "webmill --root ./corpus generate small-1-sft --chat --prompt 'What is VACUUM?'",
    ],
    "sft": [
        "webmill --root ./corpus sft small-1                 # conversations synthesized from its shards",
        "webmill --root ./corpus sft small-1 --data chats.jsonl --name small-1-chat",
        "webmill --root ./corpus sft --resume small-1-chat",
    ],
    "chat": [
        "webmill --root ./corpus chat small-1-sft",
        "echo 'What is VACUUM?' | webmill --root ./corpus chat small-1-sft --temperature 0",
    ],
    "sweep": [
        "webmill --root ./corpus sweep                      # 3 sizes x 3 token counts on the newest shard set",
        "webmill --root ./corpus sweep --sizes 64x2,128x4,256x6 --tokens 1M,4M,16M --budget 1e18",
    ],
    "run": ["webmill --root ./corpus run webmill.toml", "webmill --root ./corpus run webmill.toml --from dedup --to shard"],
    "demo": ["webmill --root ./demo-corpus demo"],
}


def _add_examples(cmd: click.Command, path: str) -> None:
    lines = EXAMPLES.get(path)
    if lines and not cmd.epilog:
        cmd.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)  # \b: click keeps the lines
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            _add_examples(sub, f"{path} {name}")


def register(cli: click.Group) -> None:
    built = _built_commands()
    for verb, (issue, help_line) in PLANNED.items():
        if verb in cli.commands:
            continue
        cmd = built.get(verb)
        if cmd is None:
            cmd = click.Command(
                verb,
                callback=not_built(verb, issue),
                help=f"{help_line} (not built yet)",
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )
        _add_examples(cmd, verb)
        cli.add_command(cmd, verb)


def _built_commands() -> dict[str, click.Command]:
    from webmill.clean.cli import clean
    from webmill.crawl.cli import crawl, scheduler
    from webmill.dedup.cli import dedup
    from webmill.demo import demo
    from webmill.insight.cli import query, report, stats, trace
    from webmill.pipeline.cli import run
    from webmill.shards.cli import shard
    from webmill.train.cli import chat, generate, sft, sweep, tokenizer, train

    out: dict[str, click.Command] = {
        "crawl": crawl,
        "scheduler": scheduler,
        "clean": clean,
        "dedup": dedup,
        "demo": demo,
        "shard": shard,
        "tokenizer": tokenizer,
        "train": train,
        "generate": generate,
        "sft": sft,
        "chat": chat,
        "sweep": sweep,
        "run": run,
        "stats": stats,
        "report": report,
        "query": query,
        "trace": trace,
    }
    return out
