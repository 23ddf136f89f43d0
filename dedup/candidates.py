"""Duplicate relations, found in hash partitions on the workers and written under the run.

    _work/url/     (a, b): document a is an older fetch of b's canonical URL (b wins)
    _work/exact/   (g, idx): idx belongs to exact-text group g (g: the group's smallest idx)
    _work/near/    (a, b, jaccard, id_a, id_b): a verified near-duplicate pair (``pairs/``)

Every relation is a shuffle on a hash of its key (URL, text hash, band hash), its rows
passed through the root (exchange.py), so each task sees one partition of the corpus and
no process sees all of it. Near pairs are verified where the documents live: pairs are
grouped by the part holding document a, whose task reads only that part's texts and
writes a's shingles, one byte range per part of b; the pointers to those ranges are
grouped by b's part, whose task reads only its own texts and ranges and computes the
exact Jaccard. Each group's output is committed as a unit of its dataset.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from webmill.dedup.exchange import POINTER_SCHEMA, read_pieces, write_pieces
from webmill.dedup.minhash import jaccard
from webmill.dedup.shingling import shingle_batch, sorted_unique
from webmill.shards import CorpusRoot, DatasetWriter
from webmill.shards.reader import read_rows

URL_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])
EXACT_SCHEMA = pa.schema([("g", pa.int64()), ("idx", pa.int64())])
NEAR_SCHEMA = pa.schema([("id_a", pa.string()), ("id_b", pa.string()), ("jaccard", pa.float32()), ("a", pa.int64()), ("b", pa.int64())])
# a's shingles attached to its pairs (bs: the b's of one part of b, ub)
ATTACHED_SCHEMA = pa.schema(
    [("a", pa.int64()), ("ub", pa.int64()), ("id_a", pa.string()), ("sh", pa.list_(pa.uint32())), ("bs", pa.list_(pa.int64()))]
)
STATS_SCHEMA = pa.schema([("rows", pa.int64()), ("checked", pa.int64())])
BIG_BUCKET = 32  # all pairs in a bucket up to this size, a star (connectivity is what counts) above


class Layout:
    """What the partition functions need of the index plan: part offsets and which parts are
    published already. O(parts), sent to each task."""

    def __init__(self, starts: np.ndarray, existing: np.ndarray, parts: list[tuple[str, str]], partitions: int):
        self.starts, self.existing, self.parts, self.partitions = starts, existing, parts, partitions

    def ordinal(self, idx: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, idx, side="right") - 1

    def is_existing(self, idx: np.ndarray) -> np.ndarray:
        return self.existing[self.ordinal(idx)] if len(self.existing) else np.zeros(len(idx), bool)


def _stats(rows: int, checked: int = 0) -> pa.Table:
    return pa.table({"rows": [rows], "checked": [checked]}, schema=STATS_SCHEMA)


def _commit(root: CorpusRoot, dataset: str, schema: pa.Schema, unit: str, table: pa.Table, fp: str) -> None:
    # one part per unit, however large: a group's rows must not be cut between parts
    w = DatasetWriter(root, dataset, schema, row_group_rows=1 << 16, target_bytes=1 << 62)
    w.write_unit(unit, [table] if table.num_rows else [], fingerprint=fp)


def read_keyed(batch: pa.Table, *, root: CorpusRoot, columns: list[str], key_fn, key_kwargs: dict, folder: str) -> pa.Table:
    """The index parts whose paths a batch holds, read with pyarrow, their rows keyed by
    ``key_fn`` and written under ``folder`` by partition: the map side of every shuffle here
    (exchange.py); pointers returned. (Ray Data's read_parquet was measured at ~10 s for 40
    small parts on two cores, this at ~1 s.)"""
    import pyarrow.parquet as pq

    tables = [pq.read_table(path, filesystem=root.fs, columns=columns) for path in batch.column("path").to_pylist()]
    return write_pieces(root, folder, key_fn(pa.concat_tables(tables), **key_kwargs))


def with_partition(batch: pa.Table, key: str, partitions: int) -> pa.Table:
    """Add ``p``: the partition a row's 64-bit key hash sends it to."""
    h = batch.column(key).to_numpy()
    return batch.append_column("p", pa.array((h % np.uint64(partitions)).astype(np.int32)))


def with_text_partition(batch: pa.Table, partitions: int) -> pa.Table:
    xh = batch.column("xh").combine_chunks()  # 16 bytes a row: its first 8 choose the partition
    raw = np.frombuffer(xh.buffers()[1], dtype=np.uint64, count=2 * len(xh), offset=xh.offset * 16)
    return batch.append_column("p", pa.array((raw[0::2] % np.uint64(partitions)).astype(np.int32)))


# URL: older fetches lose to the latest ------------------------------------------------
def url_partition(table: pa.Table, *, root: CorpusRoot, dataset: str, fp: str, layout: Layout) -> pa.Table:
    """One partition of URLs: per canonical URL the winner is a published document first,
    then the latest fetch, then the smallest id; every other fetch is an edge to it."""
    if not table.num_rows:
        return _stats(0)
    part = int(table.column("p")[0].as_py())
    idx = table.column("idx").to_numpy()
    table = table.append_column("existing", pa.array(layout.is_existing(idx)))
    order = pc.sort_indices(
        table,
        sort_keys=[("url", "ascending"), ("existing", "descending"), ("fetched_at", "descending"), ("id", "ascending")],
        null_placement="at_end",
    )
    urls = table.column("url").take(order)
    idx = idx[order.to_numpy()]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = pc.not_equal(urls.slice(1), urls.slice(0, len(idx) - 1)).to_numpy(zero_copy_only=False)
    winner = idx[np.flatnonzero(first)][np.cumsum(first) - 1]
    losers = ~first
    out = pa.table({"a": idx[losers], "b": winner[losers]}, schema=URL_SCHEMA)
    _commit(root, dataset, URL_SCHEMA, f"p{part:05d}", out, fp)
    return _stats(out.num_rows)


# exact: groups of the same normalized text ---------------------------------------------
def exact_partition(table: pa.Table, *, root: CorpusRoot, dataset: str, fp: str) -> pa.Table:
    """One partition of text hashes: the members of every group of two or more, with the
    group's smallest idx as its name."""
    if not table.num_rows:
        return _stats(0)
    part = int(table.column("p")[0].as_py())
    order = pc.sort_indices(table, sort_keys=[("xh", "ascending"), ("idx", "ascending")])
    xh = table.column("xh").take(order)
    idx = table.column("idx").to_numpy()[order.to_numpy()]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = pc.not_equal(xh.slice(1), xh.slice(0, len(idx) - 1)).to_numpy(zero_copy_only=False)
    group = np.cumsum(first) - 1
    size = np.bincount(group)
    keep = size[group] > 1
    g = idx[np.flatnonzero(first)][group]
    out = pa.table({"g": g[keep], "idx": idx[keep]}, schema=EXACT_SCHEMA)
    _commit(root, dataset, EXACT_SCHEMA, f"p{part:05d}", out, fp)
    return _stats(out.num_rows)


# near: LSH buckets → candidate pairs → exact Jaccard ----------------------------------
def bucket_pairs(table: pa.Table, *, root: CorpusRoot, layout: Layout, folder: str) -> pa.Table:
    """Candidate pairs of one partition of band hashes: documents sharing a bucket; pairs of
    two published documents are left out (both stay as they are). A band hash is seeded
    with its band (minhash.band_hashes), so the hash alone names the bucket and the band
    column is not shuffled (a collision across bands costs one needless check, no more).
    The pairs are written under ``folder`` by a's part; pointers returned."""
    h, idx = (table.column(c).to_numpy() for c in ("h", "idx"))
    order = np.lexsort((idx, h))
    h, idx = h[order], idx[order]
    new = np.ones(len(idx), dtype=bool)
    new[1:] = h[1:] != h[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(idx)))
    a_out, b_out = [], []
    small = (sizes > 1) & (sizes <= BIG_BUCKET)
    for size in np.unique(sizes[small]):
        firsts = starts[small & (sizes == size)]
        i, j = np.triu_indices(size, k=1)
        a_out.append(idx[firsts[:, None] + i].ravel())
        b_out.append(idx[firsts[:, None] + j].ravel())
    for start, size in zip(starts[sizes > BIG_BUCKET], sizes[sizes > BIG_BUCKET]):
        a_out.append(np.full(size - 1, idx[start]))
        b_out.append(idx[start + 1 : start + size])
    a = np.concatenate(a_out) if a_out else np.zeros(0, np.int64)
    b = np.concatenate(b_out) if b_out else np.zeros(0, np.int64)
    keep = ~(layout.is_existing(a) & layout.is_existing(b))
    a, b = a[keep], b[keep]
    pairs = pa.table({"a": a, "b": b, "ua": layout.ordinal(a), "ub": layout.ordinal(b)})
    return write_pieces(root, folder, pairs, key="ua")


def _shingles_of(root: CorpusRoot, layout: Layout, ordinal: int, docs: np.ndarray, ngram: int) -> tuple[list[str], list[np.ndarray]]:
    """Ids and shingle sets of some documents of one part, read from that part only."""
    dataset, path = layout.parts[ordinal]
    rows = docs - layout.starts[ordinal]
    t = read_rows(root, dataset, path, rows, ["id", "text"])
    return t.column("id").to_pylist(), shingle_batch(t.column("text"), ngram).sets32()


def _ids_of(root: CorpusRoot, layout: Layout, ordinal: int, docs: np.ndarray) -> list[str]:
    dataset, path = layout.parts[ordinal]
    return read_rows(root, dataset, path, docs - layout.starts[ordinal], ["id"]).column("id").to_pylist()


def attach_a(
    table: pa.Table, *, root: CorpusRoot, layout: Layout, ngram: int, verify: bool, dataset: str, fp: str, attached: str
) -> pa.Table:
    """Pairs whose document a lies in one part: unique pairs; with ``verify``, a's shingles
    attached once per (a, part of b) and written under ``attached``, pointers returned;
    without, the pairs are the edges, committed here."""
    a, b, ub = (table.column(c).to_numpy() for c in ("a", "b", "ub"))
    ua = int(table.column("ua")[0].as_py())
    order = np.lexsort((b, ub, a))  # sorted by (a, part of b, b), each pair once
    a, ub, b = a[order], ub[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (ub[1:] != ub[:-1]) | (b[1:] != b[:-1])
    a, ub, b = a[first], ub[first], b[first]
    docs = sorted_unique(a)
    if not verify:
        ids = _ids_of(root, layout, ua, docs)
        pos = np.searchsorted(docs, a)
        out = pa.table(
            {
                "id_a": pa.array(ids).take(pa.array(pos)),
                "id_b": pa.nulls(len(a), pa.string()),
                "jaccard": pa.nulls(len(a), pa.float32()),
                "a": a,
                "b": b,
            },
            schema=NEAR_SCHEMA,
        )
        _commit(root, dataset, NEAR_SCHEMA, f"a{ua:06d}", out, fp)
        return POINTER_SCHEMA.empty_table()
    ids, sets = _shingles_of(root, layout, ua, docs, ngram)
    shingles = dict(zip(docs.tolist(), sets))
    id_of = dict(zip(docs.tolist(), ids))
    key_new = np.ones(len(a), dtype=bool)
    key_new[1:] = (a[1:] != a[:-1]) | (ub[1:] != ub[:-1])
    starts = np.flatnonzero(key_new)
    ka, kub = a[starts], ub[starts]
    sh = [shingles[int(x)] for x in ka]
    sh_offsets = np.concatenate([[0], np.cumsum([len(s) for s in sh])]).astype(np.int32)
    sh_values = np.concatenate(sh) if sh else np.zeros(0, np.uint32)
    bs_offsets = np.append(starts, len(a)).astype(np.int32)
    rows = pa.table(
        {
            "a": ka,
            "ub": kub,
            "id_a": [id_of[int(x)] for x in ka],
            "sh": pa.ListArray.from_arrays(pa.array(sh_offsets), pa.array(sh_values, pa.uint32())),
            "bs": pa.ListArray.from_arrays(pa.array(bs_offsets), pa.array(b, pa.int64())),
        },
        schema=ATTACHED_SCHEMA,
    )
    # through the root, read back by the one task that needs them: carried in Ray Data, a
    # block held 1/partitions of every pair's shingles and grew with the corpus
    return write_pieces(root, attached, rows, key="ub", name=f"a{ua:06d}")


def verify_b(
    table: pa.Table, *, root: CorpusRoot, layout: Layout, ngram: int, threshold: float, dataset: str, fp: str, attached: str
) -> pa.Table:
    """Pairs whose document b lies in one part (``table``: pointers to their attached rows):
    b's texts read from that part only, each pair's exact Jaccard computed against the
    attached shingles of a; pairs at the threshold committed."""
    if not table.num_rows:
        return _stats(0)
    ub = int(table.column("p")[0].as_py())
    table = read_pieces(root, attached, table, ATTACHED_SCHEMA)
    bs_col = table.column("bs").combine_chunks()
    docs = sorted_unique(bs_col.flatten().to_numpy())
    ids, sets = _shingles_of(root, layout, ub, docs, ngram)
    shingles = dict(zip(docs.tolist(), sets))
    id_of = dict(zip(docs.tolist(), ids))
    out_a, out_b, out_j, out_ida, out_idb = [], [], [], [], []
    checked = 0
    sh_col = table.column("sh").combine_chunks()
    for i, (a, id_a) in enumerate(zip(table.column("a").to_pylist(), table.column("id_a").to_pylist())):
        sh_a = sh_col[i].values.to_numpy()
        for b in bs_col[i].values.to_numpy().tolist():
            checked += 1
            j = jaccard(sh_a, shingles[b])
            if j >= threshold:
                out_a.append(a), out_b.append(b), out_j.append(j), out_ida.append(id_a), out_idb.append(id_of[b])
    out = pa.table(
        {
            "id_a": out_ida,
            "id_b": out_idb,
            "jaccard": pa.array(out_j, pa.float32()),
            "a": pa.array(out_a, pa.int64()),
            "b": pa.array(out_b, pa.int64()),
        },
        schema=NEAR_SCHEMA,
    )
    _commit(root, dataset, NEAR_SCHEMA, f"b{ub:06d}", out, fp)
    return _stats(out.num_rows, checked)
