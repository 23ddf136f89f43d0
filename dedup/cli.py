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
    from webmill.dedup.progress import DedupProgress
    from webmill.dedup.stage import run_dedup
    from webmill.errors import UserError

    root = ctx.root()
    inputs = list(inputs) or [newest_clean(root)]
    for ds in inputs:
        if not root.exists(ds):
            raise UserError(f"dataset {root.display(ds)}: does not exist")
    run = name or inputs[0].strip("/").split("/")[1]
    ray = ctx.ray()
    status, tally = None, DedupProgress()
    if ctx.verbosity >= 0:
        from rich.console import Console

        status = Console(stderr=True).status("dedup: planning…")
        status.start()

    def progress(event, info):
        line = tally.update(event, info)
        if status:
            status.update(line)

    try:
        s = run_dedup(root, ray, inputs, run, ctx.config.dedup, on_progress=progress)
    finally:
        if status:
            status.stop()
    lines = [
        f"dedup {run}: kept {s['kept']:,} of {s['documents_in']:,} documents in {s['seconds']:.1f}s",
        f"  duplicates: url {s['url_dups']:,}, exact {s['exact_dups']:,}, near {s['near_dups']:,}; "
        f"{s['clusters']:,} clusters, largest {s['largest_cluster']:,}",
        f"  documents: {root.display(s['docs'])}",
        f"  clusters:  {root.display(s['clusters_dataset'])}",
    ]
    finish(as_json, s, lines)
