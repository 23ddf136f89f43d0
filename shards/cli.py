"""``webmill shard``: the final training shards from the deduplicated documents."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx
from webmill.shards import layout


@click.command("shard")
@click.option("--name", default=None, help="shard set name under <root>/shards/ (default: [shards] name)")
@click.option("--seed", type=int, default=None, help="shuffle seed (default: [shards] seed)")
@click.option("--target-mb", type=float, default=None, help="shard size target in MB (default: [shards] target_bytes)")
@json_option
@pass_ctx
def shard(ctx, name, seed, target_mb, as_json):
    """Mix, split and globally shuffle the deduplicated documents into training shards."""
    from dataclasses import replace

    from webmill.progress import Progress
    from webmill.settings import override
    from webmill.shards.stage import ShardStage

    cfg = override(ctx.config.shards, seed=seed, target_bytes=None if target_mb is None else int(target_mb * 2**20))
    root = ctx.root()
    stage = ShardStage(name)
    with Progress(quiet=ctx.verbosity < 0) as progress:
        stage.run(root, ctx.ray, replace(ctx.config, shards=cfg), progress)
    m = stage.manifest
    tr, va = m["splits"]["train"], m["splits"]["val"]
    lines = [
        f"shards {m['name']}{' (up to date, skipped)' if m.get('skipped') else ''}: "
        f"train {tr['rows']:,} docs in {len(tr['shards'])} shard(s), {tr['chars'] / 1e6:.1f}M chars; "
        f"val {va['rows']:,} docs",
        f"  seed {m['seed']}, sources: " + ", ".join(f"{k} (p={v['keep_probability']})" for k, v in m["sources"].items()),
        f"  manifest: {root.display(layout.shard_manifest(m['name']))}",
    ]
    finish(as_json, m, lines)
