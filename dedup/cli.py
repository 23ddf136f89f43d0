"""``webmill dedup``: exact and near-duplicate removal, incremental over the root."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx
from webmill.shards import layout


def newest_clean(root) -> str:
    from webmill.errors import UserError

    runs = [r for r in root.listdir(layout.CLEAN) if root.is_dir(layout.clean_docs(r))]
    if not runs:
        raise UserError(f"corpus root {root.display()}: no clean output to deduplicate (run `webmill clean` first)")
    return layout.clean_docs(sorted(runs)[-1])


@click.command("dedup")
@click.option("--input", "inputs", multiple=True, help="document dataset(s), e.g. clean/<run>/docs (default: the newest)")
@click.option("--name", default=None, help="output run name (default: the input's run name)")
@json_option
@pass_ctx
def dedup(ctx, inputs, name, as_json):
    """Remove URL, exact and near duplicates (MinHash LSH) against everything the root already holds."""
    from webmill.dedup.stage import DedupStage
    from webmill.errors import UserError
    from webmill.progress import Progress

    root = ctx.root()
    inputs = list(inputs) or [newest_clean(root)]
    for ds in inputs:
        if not root.exists(ds):
            raise UserError(f"dataset {root.display(ds)}: does not exist")
    run = name or inputs[0].strip("/").split("/")[1]
    with Progress("dedup: planning…", quiet=ctx.verbosity < 0) as progress:
        s = DedupStage(inputs, run).run(root, ctx.ray, ctx.config, progress)
    lines = [
        f"dedup {run}: kept {s['kept']:,} of {s['documents_in']:,} documents in {s['seconds']:.1f}s",
        f"  duplicates: url {s['url_dups']:,}, exact {s['exact_dups']:,}, near {s['near_dups']:,}; "
        f"{s['clusters']:,} clusters, largest {s['largest_cluster']:,}",
        f"  documents: {root.display(s['docs'])}",
        f"  clusters:  {root.display(s['clusters_dataset'])}",
    ]
    finish(as_json, s, lines)
