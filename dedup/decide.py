"""Who wins each component, and the removal applied per input part.

1. ``member_rows``, per index part: its labelled documents with the fields the
   rules need (id, fetch time, published or not), read from that part's index rows only.
2. ``choose_winners``, per hash partition of the label: in each component the winner is
   a published document first, then the earliest fetched, then the smallest id (a URL's
   older fetch never wins). One decision row per document of this run.
3. ``apply_part``, one task per input part of this run: its decisions (the removal list)
   applied as the part is streamed, so kept documents keep their order; the part's rows
   of ``clusters/`` and ``docs/`` are committed as one unit each.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from webmill.dedup.candidates import Layout
from webmill.dedup.components import KIND_NAMES, URL
from webmill.shards import CorpusRoot, DatasetWriter, layout
from webmill.shards.reader import open_part

CLUSTER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("host", pa.string()),
        ("cluster", pa.int64()),
        ("kind", pa.string()),
        ("kept", pa.bool_()),
        ("representative", pa.string()),
        ("jaccard", pa.float32()),
    ]
)
MEMBER_SCHEMA = pa.schema(
    [
        ("label", pa.int64()),
        ("idx", pa.int64()),
        ("id", pa.string()),
        ("fetched", pa.int64()),
        ("existing", pa.bool_()),
        ("kind", pa.int8()),
        ("jaccard", pa.float32()),
        ("uo", pa.int64()),
        ("p", pa.int64()),
    ]
)
DECISION_SCHEMA = pa.schema(
    [
        ("uo", pa.int64()),
        ("idx", pa.int64()),
        ("cluster", pa.int64()),
        ("kept", pa.bool_()),
        ("representative", pa.string()),
        ("kind", pa.int8()),
        ("jaccard", pa.float32()),
    ]
)
OUT_STATS = pa.schema(
    [
        ("unit", pa.string()),
        ("documents_in", pa.int64()),
        ("kept", pa.int64()),
        ("url", pa.int64()),
        ("exact", pa.int64()),
        ("near", pa.int64()),
    ]
)


def _rows_of_unit(root: CorpusRoot, dataset: str, parts: list[dict], positions: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows at sorted positions of a unit written as consecutive parts."""
    from webmill.shards.reader import read_rows

    out, start = [], 0
    for part in parts:
        mine = positions[(positions >= start) & (positions < start + part["rows"])]
        if len(mine):
            out.append(read_rows(root, dataset, part["path"], mine - start, columns))
        start += part["rows"]
    return pa.concat_tables(out) if out else None


def member_rows(batch: pa.Table, *, root: CorpusRoot, labels: list[str], index_docs: str, layout: Layout) -> pa.Table:
    """The labelled documents of the index parts in a batch (one JSON item per part), with their ranking fields."""
    tables = [_members_of(json.loads(item), root, labels, index_docs, layout) for item in batch.column("item").to_pylist()]
    return pa.concat_tables(tables) if tables else MEMBER_SCHEMA.empty_table()


def _members_of(item: dict, root: CorpusRoot, labels: list[str], index_docs: str, layout: Layout) -> pa.Table:
    ordinal, offset, rows, parts = item["ordinal"], item["offset"], item["rows"], item["parts"]
    lab = pads.dataset(labels, filesystem=root.fs, format="parquet").to_table(
        filter=(pc.field("idx") >= offset) & (pc.field("idx") < offset + rows)
    )
    if not lab.num_rows:
        return MEMBER_SCHEMA.empty_table()
    lab = lab.sort_by("idx")
    idx = lab.column("idx").to_numpy()
    meta = _rows_of_unit(root, index_docs, parts, idx - offset, ["id", "fetched_at"])
    fetched = pc.cast(meta.column("fetched_at"), pa.int64()).fill_null(0)
    label = lab.column("label").to_numpy()
    return pa.table(
        {
            "label": label,
            "idx": idx,
            "id": meta.column("id"),
            "fetched": fetched,
            "existing": pa.array(np.full(len(idx), bool(layout.existing[ordinal]))),
            "kind": lab.column("kind"),
            "jaccard": lab.column("jaccard"),
            "uo": np.full(len(idx), ordinal, dtype=np.int64),
            "p": (label % layout.partitions).astype(np.int64),
        },
        schema=MEMBER_SCHEMA,
    )


def choose_winners(table: pa.Table) -> pa.Table:
    """One partition of components: the winner of each, a decision per document of this run."""
    if not table.num_rows:
        return DECISION_SCHEMA.empty_table()
    table = table.append_column("lost_url", pc.equal(table.column("kind"), URL))
    order = pc.sort_indices(
        table,
        sort_keys=[
            ("label", "ascending"),
            ("lost_url", "ascending"),
            ("existing", "descending"),
            ("fetched", "ascending"),
            ("id", "ascending"),
        ],
    )
    t = table.take(order)
    label, idx = t.column("label").to_numpy(), t.column("idx").to_numpy()
    first = np.ones(len(idx), dtype=bool)
    first[1:] = label[1:] != label[:-1]
    winner_row = np.flatnonzero(first)[np.cumsum(first) - 1]
    new = ~t.column("existing").to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(new)
    return pa.table(
        {
            "uo": t.column("uo").take(pa.array(rows)),
            "idx": idx[rows],
            "cluster": label[rows],
            "kept": winner_row[rows] == rows,
            "representative": t.column("id").take(pa.array(winner_row[rows])),
            "kind": t.column("kind").take(pa.array(rows)),
            "jaccard": t.column("jaccard").take(pa.array(rows)),
        },
        schema=DECISION_SCHEMA,
    )


def apply_part(decisions: pa.Table | None, *, root: CorpusRoot, run: str, unit: str, dataset: str, path: str, offset: int, fp: str) -> dict:
    """Write one input part's ``clusters/`` rows (every document) and ``docs/`` rows (the kept ones)."""
    docs_ds, clusters_ds = layout.dedup_docs(run), layout.dedup_clusters(run)
    pf = open_part(root, dataset, {"path": path})
    docs_w = DatasetWriter(root, docs_ds, pf.schema_arrow, row_group_rows=1024)
    clusters_w = DatasetWriter(root, clusters_ds, CLUSTER_SCHEMA, row_group_rows=65536)
    if docs_w.is_committed(unit, fp) and clusters_w.is_committed(unit, fp):
        return {"unit": unit, "skipped": True}
    n = pf.metadata.num_rows
    cluster = np.arange(offset, offset + n, dtype=np.int64)
    kept = np.ones(n, dtype=bool)
    kind = np.zeros(n, dtype=np.int8)
    jac = np.full(n, np.nan, dtype=np.float32)
    has_rep = np.zeros(n, dtype=bool)
    if decisions is not None and decisions.num_rows:
        pos = decisions.column("idx").to_numpy() - offset
        cluster[pos] = decisions.column("cluster").to_numpy()
        kept[pos] = decisions.column("kept").to_numpy(zero_copy_only=False)
        kind[pos] = decisions.column("kind").to_numpy()
        jac[pos] = decisions.column("jaccard").to_numpy(zero_copy_only=False)
        has_rep[pos] = True
        order = np.full(n, -1, dtype=np.int64)
        order[pos] = np.arange(len(pos))
        rep_src = decisions.column("representative")
    names = np.array([None, *[KIND_NAMES.get(k) for k in range(1, 5)]], dtype=object)
    stats = {
        "documents_in": n,
        "kept": int(kept.sum()),
        **{name: int(np.count_nonzero(~kept & (kind == k))) for k, name in KIND_NAMES.items()},
    }
    start = 0
    with clusters_w.unit(unit, fp) as cout, docs_w.unit(unit, fp) as dout:
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g)
            sl = slice(start, start + t.num_rows)
            ids = t.column("id")
            if has_rep[sl].any():
                o = order[sl]
                reps = pc.if_else(pa.array(has_rep[sl]), rep_src.take(pa.array(np.where(o >= 0, o, 0))), ids)
            else:
                reps = ids
            cout.write(
                pa.table(
                    {
                        "id": ids,
                        "url": t.column("url"),
                        "host": t.column("host"),
                        "cluster": cluster[sl],
                        "kind": pa.array(names[kind[sl]], pa.string()),
                        "kept": kept[sl],
                        "representative": reps,
                        "jaccard": pa.array(jac[sl], mask=np.isnan(jac[sl])),
                    },
                    schema=CLUSTER_SCHEMA,
                )
            )
            dout.write(t.filter(pa.array(kept[sl])))
            start += t.num_rows
        dout.stats.update(stats)
    return {"unit": unit, "skipped": False, **stats}


def apply_group(decisions: pa.Table, *, root: CorpusRoot, run: str, plan_parts: list, fp: str) -> pa.Table:
    """``apply_part`` for the input part whose decisions these are (a Ray Data group)."""
    ordinal = int(decisions.column("uo")[0].as_py())
    p = plan_parts[ordinal]
    apply_part(decisions, root=root, run=run, unit=p["unit"], dataset=p["dataset"], path=p["path"], offset=p["offset"], fp=fp)
    return pa.table({"unit": [p["unit"]]})
