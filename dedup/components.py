"""Connected components of the duplicate relations, in one Ray task over integer arrays.

Chosen over distributed rounds (text-dedup's large-star/small-star on Spark) because
the state is small and the work is a few vectorized passes: 13 bytes per document
(a parent index, a kind code, the best Jaccard), 4 GB at 300 million documents, while
the relations are streamed from the root batch by batch and never held whole. Each
round of rounds-based components re-reads and re-shuffles every edge; here each edge
is read once.

Union-find is vectorized: a batch of edges finds its roots by pointer jumping, and each
root is hooked under the smaller of the two, so a component's root is its smallest
index; a URL's older fetches hang under the latest (they never become roots, and their
other relations are ignored, as a fetch that lost its URL leaves the race).

Output ``_work/labels``: for every document in a relation, its component label (the
root's index), its kind and best Jaccard, in index order. Who wins a component is
decided later, where the documents' fields are (``winners``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter

NONE, URL, EXACT, NEAR, URL_WINNER = 0, 1, 2, 3, 4
KIND_NAMES = {URL: "url", EXACT: "exact", NEAR: "near"}
LABEL_SCHEMA = pa.schema([("idx", pa.int64()), ("label", pa.int64()), ("kind", pa.int8()), ("jaccard", pa.float32())])
CHUNK = 1 << 20


def find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    r = parent[x]
    while True:
        up = parent[r]
        moved = up != r
        if not moved.any():
            return r
        r = np.where(moved, up, r)


def union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the components of each (a[i], b[i]), hooking the larger root under the smaller."""
    while len(a):
        ra, rb = find(parent, a), find(parent, b)
        apart = ra != rb
        if not apart.any():
            break
        lo, hi = np.minimum(ra[apart], rb[apart]), np.maximum(ra[apart], rb[apart])
        np.minimum.at(parent, hi, lo)  # several proposals for one root: the smallest wins, the rest go round again
        a, b = a[apart], b[apart]
    if len(a):
        parent[a] = find(parent, a)  # compress the paths just used


def _batches(root: CorpusRoot, dataset: str | None, columns: list[str]):
    if dataset is None or not root.exists(dataset):
        return
    yield from DatasetReader(root, dataset).iter_batches(columns=columns)


def _parts(root: CorpusRoot, dataset: str | None, columns: list[str]):
    """Each committed part whole (a relation grouped per part must not be cut at row groups)."""
    if dataset is None or not root.exists(dataset):
        return
    reader = DatasetReader(root, dataset)
    for part in reader.parts:
        yield reader.open_part(part).read(columns=columns)


def components(root: CorpusRoot, n: int, existing_parts: np.ndarray, starts: np.ndarray, datasets: dict, out_dataset: str, fp: str) -> dict:
    """Read the URL, exact and near relations; write the labels; return component counts."""
    parent = np.arange(n, dtype=np.int64)
    kind = np.zeros(n, dtype=np.int8)
    sim = np.full(n, np.nan, dtype=np.float32)
    edges = {"url": 0, "exact": 0, "near": 0}
    for batch in _batches(root, datasets.get("url"), ["a", "b"]):
        a, b = batch.column("a").to_numpy(), batch.column("b").to_numpy()
        parent[a] = b
        kind[a] = URL
        kind[b[kind[b] == NONE]] = URL_WINNER
        edges["url"] += len(a)
    for table in _parts(root, datasets.get("exact"), ["g", "idx"]):
        # one partition's part: every group's rows are in it, contiguous; URL losers leave their group
        g, idx = table.column("g").to_numpy(), table.column("idx").to_numpy()
        live = kind[idx] != URL
        g, idx = g[live], idx[live]
        if not len(idx):
            continue
        first = np.ones(len(idx), dtype=bool)
        first[1:] = g[1:] != g[:-1]
        group = np.cumsum(first) - 1
        hub = idx[np.flatnonzero(first)][group]
        members = np.bincount(group)[group] > 1
        union(parent, idx[members], hub[members])
        m = idx[members]
        kind[m[(kind[m] == NONE) | (kind[m] == URL_WINNER)]] = EXACT
        edges["exact"] += int(members.sum())
    for batch in _batches(root, datasets.get("near"), ["a", "b", "jaccard"]):
        a, b = batch.column("a").to_numpy(), batch.column("b").to_numpy()
        j = batch.column("jaccard").to_numpy(zero_copy_only=False).astype(np.float32)
        live = (kind[a] != URL) & (kind[b] != URL)
        a, b, j = a[live], b[live], j[live]
        union(parent, a, b)
        for x in (a, b):
            kind[x[(kind[x] == NONE) | (kind[x] == URL_WINNER)]] = NEAR
            np.fmax.at(sim, x, j)
        edges["near"] += len(a)

    # labels of every document in a relation, in index order, a chunk at a time
    w = DatasetWriter(root, out_dataset, LABEL_SCHEMA, row_group_rows=1 << 16)
    labelled = 0
    with w.unit("all", fp) as out:
        for lo in range(0, n, CHUNK):
            idx = lo + np.flatnonzero(kind[lo : lo + CHUNK])
            if not len(idx):
                continue
            label = find(parent, idx)
            parent[idx] = label
            k = kind[idx]
            out.write(
                pa.table(
                    {"idx": idx, "label": label, "kind": np.where(k == URL_WINNER, NONE, k).astype(np.int8), "jaccard": sim[idx]},
                    schema=LABEL_SCHEMA,
                )
            )
            labelled += len(idx)
    # component sizes and the clusters holding a document of this run, in the arrays no longer needed
    del sim
    size = np.zeros(n, dtype=np.int32)
    has_new = kind  # reused: 1 where a component holds a document new in this run
    clusters = largest = 0
    for lo in range(0, n, CHUNK):
        idx = lo + np.flatnonzero(has_new[lo : lo + CHUNK])
        if len(idx):
            np.add.at(size, parent[idx], 1)
    has_new[:] = 0
    for lo in range(0, n, CHUNK):
        idx = lo + np.arange(min(CHUNK, n - lo))
        idx = idx[size[parent[idx]] > 0]
        ordinal = np.searchsorted(starts, idx, side="right") - 1
        new = idx[~existing_parts[ordinal]] if len(existing_parts) else idx
        has_new[parent[new]] = 1
    if n:
        clusters = int(np.count_nonzero(has_new & (size > 1)))
        largest = int(max(1, size.max()))
    return {"labelled": labelled, "clusters": clusters, "largest_cluster": largest, "edges": edges}
