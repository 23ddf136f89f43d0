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
    from webmill.settings import override
    from webmill.shards.training import build_shards

    cfg = override(ctx.config.shards, seed=seed, target_bytes=None if target_mb is None else int(target_mb * 2**20))
    root = ctx.root()
    show, done = _progress(ctx)
    m = build_shards(root, cfg, name=name, on_progress=show, ray_fn=ctx.ray)
    done()
    tr, va = m["splits"]["train"], m["splits"]["val"]
    lines = [
        f"shards {m['name']}{' (up to date, skipped)' if m.get('skipped') else ''}: "
        f"train {tr['rows']:,} docs in {len(tr['shards'])} shard(s), {tr['chars'] / 1e6:.1f}M chars; "
        f"val {va['rows']:,} docs",
        f"  seed {m['seed']}, sources: " + ", ".join(f"{k} (p={v['keep_probability']})" for k, v in m["sources"].items()),
        f"  manifest: {root.display(layout.shard_manifest(m['name']))}",
    ]
    finish(as_json, m, lines)


def _progress(ctx):
    import time

    last = [0.0]

    def show(seen: int) -> None:
        if ctx.verbosity >= 0 and time.time() - last[0] > 1:
            last[0] = time.time()
            click.echo(f"\rshard: {seen:,} documents bucketed", err=True, nl=False)

    def done() -> None:
        if last[0]:
            click.echo(err=True)  # end the progress line before the summary

    return show, done
