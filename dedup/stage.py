"""The dedup stage: URL, exact and MinHash-LSH near duplicates, incremental over the corpus root.

    <root>/dedup/_index/docs/     one row per document ever indexed: global index, id, url,
                                  fetched_at, exact-text hash, source dataset (never recomputed)
    <root>/dedup/_index/bands/    one row per (document, band): (band, band hash, index)
    <root>/dedup/<run>/docs/      the run's kept documents
    <root>/dedup/<run>/clusters/  id → cluster, duplicate kind, kept flag, representative

Signatures are computed in Ray Data ``map_batches`` (one task per input part, committed
as a unit of the index); banding is a Ray Data ``groupby`` on (band, band hash), so
no node holds all signatures; clusters are connected components in a union-find
over integer document indices. Documents indexed by earlier runs win every tie.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from webmill.dedup.config import DedupConfig
from webmill.dedup.minhash import band_hashes, jaccard, normalize, shingle_hashes, signatures
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter, Manifest

INDEX_DOCS = "dedup/_index/docs"
INDEX_BANDS = "dedup/_index/bands"

INDEX_DOC_SCHEMA = pa.schema([("idx", pa.int64()), ("id", pa.string()), ("url", pa.string()),
                              ("fetched_at", pa.timestamp("us", tz="UTC")), ("xh", pa.string()),
                              ("dataset", pa.string()), ("host", pa.string())])
BAND_SCHEMA = pa.schema([("band", pa.int32()), ("h", pa.uint64()), ("idx", pa.int64())])
PAIR_SCHEMA = pa.schema([("id_a", pa.string()), ("id_b", pa.string()), ("jaccard", pa.float32())])
CLUSTER_SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("host", pa.string()),
                            ("cluster", pa.int64()), ("kind", pa.string()), ("kept", pa.bool_()),
                            ("representative", pa.string()), ("jaccard", pa.float32())])


def lsh_fingerprint(cfg: DedupConfig) -> str:
    return hashlib.sha1(json.dumps([cfg.ngram, cfg.bands, cfg.rows, cfg.seed]).encode()).hexdigest()[:12]


def index_part(task: dict) -> dict:
    """Sign one input part; commit its doc rows and band rows as a unit of the index."""
    root, dataset, part, offset, cfg = task["root"], task["dataset"], task["part"], task["offset"], task["cfg"]
    unit = f"{dataset}/{part['path']}"
    fp = lsh_fingerprint(cfg)
    docs_w = DatasetWriter(root, INDEX_DOCS, INDEX_DOC_SCHEMA, row_group_rows=65536)
    bands_w = DatasetWriter(root, INDEX_BANDS, BAND_SCHEMA, row_group_rows=1 << 18)
    if docs_w.is_committed(unit, fp) and bands_w.is_committed(unit, fp):
        return {"unit": unit, "docs": 0, "skipped": True}
    reader = DatasetReader(root, dataset)
    n = 0
    with docs_w.unit(unit, fp) as dout, bands_w.unit(unit, fp) as bout:
        for batch in reader.iter_batches(columns=["id", "url", "host", "fetched_at", "text"], parts=[part]):
            texts = batch.column("text").to_pylist()
            idx = np.arange(offset + n, offset + n + len(texts), dtype=np.int64)
            n += len(texts)
            xh = [hashlib.blake2b(normalize(t or "").encode(), digest_size=16).hexdigest() for t in texts]
            dout.write(pa.table({"idx": idx, "id": batch.column("id"), "url": batch.column("url"),
                                 "fetched_at": batch.column("fetched_at"), "xh": xh,
                                 "dataset": [dataset] * len(texts), "host": batch.column("host")}, schema=INDEX_DOC_SCHEMA))
            bh = band_hashes(signatures([t or "" for t in texts], cfg.ngram, cfg.bands * cfg.rows, cfg.seed),
                             cfg.bands, cfg.rows)
            bout.write(pa.table({"band": np.tile(np.arange(cfg.bands, dtype=np.int32), len(texts)),
                                 "h": bh.reshape(-1), "idx": np.repeat(idx, cfg.bands)}, schema=BAND_SCHEMA))
        dout.stats["docs"] = n
    return {"unit": unit, "docs": n, "skipped": False}


def _with_partition(batch: dict, partitions: int) -> dict:
    batch["part"] = (batch["h"] % np.uint64(partitions)).astype(np.int64)
    return batch


def _bucket_pairs(batch: dict) -> dict:
    """Candidate pairs of one shuffle partition: documents sharing a (band, band hash) bucket.

    All pairs in a small bucket, a star in a large one (connectivity is what counts)."""
    band, h, idx = batch["band"], batch["h"], batch["idx"]
    order = np.lexsort((idx, h, band))
    band, h, idx = band[order], h[order], idx[order]
    new_bucket = np.ones(len(idx), dtype=bool)
    new_bucket[1:] = (band[1:] != band[:-1]) | (h[1:] != h[:-1])
    starts = np.flatnonzero(new_bucket)
    sizes = np.diff(np.append(starts, len(idx)))
    a_out, b_out = [], []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
        members = idx[start:start + size]
        if size <= 32:
            i, j = np.triu_indices(size, k=1)
            a_out.append(members[i])
            b_out.append(members[j])
        else:
            a_out.append(np.full(size - 1, members[0]))
            b_out.append(members[1:])
    empty = np.array([], dtype=np.int64)
    return {"a": np.concatenate(a_out) if a_out else empty, "b": np.concatenate(b_out) if b_out else empty}


class UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p[root] != root:
            root = p[root]
        while p[x] != root:
            p[x], x = root, p[x]
        return root

    def union(self, a: int, b: int, better) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            keep, drop = (ra, rb) if better(ra, rb) else (rb, ra)
            self.parent[drop] = keep


def run_dedup(root: CorpusRoot, ray, inputs: list[str], run: str, cfg: DedupConfig, *, on_progress=None) -> dict:
    import ray.data

    from webmill.runtime import cluster_cpus, quiet_ray_data, run_tasks

    t0 = time.time()
    quiet_ray_data()
    # 1. index the new input parts (global indices continue after what the index holds)
    index_units = Manifest.load(root, INDEX_DOCS).units
    fp = lsh_fingerprint(cfg)
    if any(u.fingerprint != fp for u in index_units.values()):
        from webmill.errors import UserError

        raise UserError(f"{root.display(INDEX_DOCS)}: the band index was built with other [dedup] ngram/bands/rows/seed; "
                        "use those settings or a new root")
    offset = sum(u.rows for u in index_units.values())
    tasks, new_units = [], set()
    for dataset in inputs:
        for part in DatasetReader(root, dataset).parts:
            unit = f"{dataset}/{part['path']}"
            new_units.add(unit)
            if unit in index_units:
                continue
            tasks.append({"root": root, "dataset": dataset, "part": part, "offset": offset, "cfg": cfg})
            offset += part["rows"]
    if tasks:
        for result in run_tasks(index_part, [(t,) for t in tasks]):
            if on_progress:
                on_progress("signatures", result)
    DatasetWriter(root, INDEX_DOCS, INDEX_DOC_SCHEMA).finalize(lsh=fp)
    DatasetWriter(root, INDEX_BANDS, BAND_SCHEMA).finalize(lsh=fp)
    t_sign = time.time() - t0

    # 2. document table (numpy columns over the global index) — the only O(N) state
    meta = DatasetReader(root, INDEX_DOCS).read_all(columns=["idx", "id", "url", "fetched_at", "xh", "dataset", "host"])
    order = np.argsort(meta.column("idx").to_numpy())
    meta = meta.take(pa.array(order))
    n = meta.num_rows
    ids = meta.column("id").to_pylist()
    fetched = pc.cast(meta.column("fetched_at"), pa.int64()).fill_null(0).to_numpy()
    dataset_col = meta.column("dataset").to_pylist()
    in_run = np.array([d in inputs for d in dataset_col])
    existing = ~in_run  # indexed by an earlier run from another dataset: published already
    rank_id = np.argsort(np.argsort(np.array(ids, dtype=object)))

    def better(a: int, b: int) -> bool:
        """Existing documents first, then earliest fetched, then smallest id."""
        return (existing[a], -fetched[a], -rank_id[a]) > (existing[b], -fetched[b], -rank_id[b])

    uf = UnionFind(n)
    kind = np.array([""] * n, dtype=object)
    sim = np.full(n, np.nan, dtype=np.float32)

    # 3. URL duplicates: keep the latest fetch (existing documents still win); losers leave the race
    urls = meta.column("url").to_pylist()
    url_winner = np.arange(n, dtype=np.int64)
    if cfg.url:
        by_url: dict[str, int] = {}
        for i in np.lexsort((-rank_id, fetched, existing)):  # ascending: each URL's winner comes last
            by_url[urls[i]] = i
        for i in range(n):
            w = by_url[urls[i]]
            if w != i:
                url_winner[i] = w
                kind[i] = "url"
    url_loser = url_winner != np.arange(n)
    # 4. exact duplicates of normalized text
    if cfg.exact:
        first: dict[str, int] = {}
        for i, h in enumerate(meta.column("xh").to_pylist()):
            if url_loser[i]:
                continue
            if h in first:
                uf.union(first[h], i, better)
                kind[i] = kind[i] or "exact"
                kind[first[h]] = kind[first[h]] or "exact"
            else:
                first[h] = i
    # 5. near duplicates: LSH buckets → candidate pairs → (verified) edges
    pairs_checked = edges = 0
    if cfg.near:
        # the shuffle sends each (band, hash) bucket to one partition; buckets are found inside it
        partitions = 4 * cluster_cpus()
        bands = ray.data.read_parquet(DatasetReader(root, INDEX_BANDS).paths(), filesystem=root.fs)
        bands = bands.map_batches(_with_partition, fn_kwargs={"partitions": partitions}, batch_format="numpy")
        cand = bands.groupby("part", num_partitions=partitions).map_groups(_bucket_pairs, batch_format="numpy")
        seen: set[tuple[int, int]] = set()
        verified: list[tuple[int, int, float]] = []
        shingle_cache: dict[int, np.ndarray] = {}
        texts = _TextFetcher(root, meta)
        for batch in cand.iter_batches(batch_size=65536, batch_format="numpy"):
            for a, b in zip(batch["a"].tolist(), batch["b"].tolist()):
                if (a, b) in seen or (existing[a] and existing[b]) or url_loser[a] or url_loser[b]:
                    continue
                seen.add((a, b))
                if uf.find(a) == uf.find(b) and not cfg.verify:
                    continue
                if cfg.verify:
                    pairs_checked += 1
                    ja = jaccard(_shingles(shingle_cache, texts, a, cfg), _shingles(shingle_cache, texts, b, cfg))
                    if ja < cfg.threshold:
                        continue
                    sim[a] = np.nanmax([sim[a], ja])
                    sim[b] = np.nanmax([sim[b], ja])
                    verified.append((a, b, ja))
                edges += 1
                uf.union(a, b, better)
                for x in (a, b):
                    kind[x] = kind[x] or "near"
    roots = np.array([uf.find(i) for i in range(n)], dtype=np.int64)
    roots[url_loser] = roots[url_winner[url_loser]]
    t_cluster = time.time() - t0 - t_sign

    # 6. outputs for this run's documents
    kept_mask = (roots == np.arange(n)) & ~url_loser
    sizes = np.bincount(roots, minlength=n)
    run_idx = np.flatnonzero(in_run)
    keep_ids = {ids[i] for i in run_idx if kept_mask[i]}
    hosts = meta.column("host").to_pylist()
    clusters = pa.table({
        "id": [ids[i] for i in run_idx], "url": [urls[i] for i in run_idx], "host": [hosts[i] for i in run_idx],
        "cluster": roots[run_idx], "kind": [kind[i] or None for i in run_idx], "kept": kept_mask[run_idx],
        "representative": [ids[roots[i]] for i in run_idx], "jaccard": sim[run_idx]}, schema=CLUSTER_SCHEMA)
    cw = DatasetWriter(root, f"dedup/{run}/clusters", CLUSTER_SCHEMA, row_group_rows=65536)
    cw.write_unit("clusters", [clusters], fingerprint=fp)
    cw.finalize(stage="dedup.clusters")
    if cfg.near and cfg.verify:  # the near-duplicate pairs found, with their exact Jaccard
        pw = DatasetWriter(root, f"dedup/{run}/pairs", PAIR_SCHEMA, row_group_rows=65536)
        pw.write_unit("pairs", [pa.table({"id_a": [ids[a] for a, _, _ in verified], "id_b": [ids[b] for _, b, _ in verified],
                                          "jaccard": [j for _, _, j in verified]}, schema=PAIR_SCHEMA)], fingerprint=fp)
        pw.finalize(stage="dedup.pairs")
    dw = None
    for dataset in inputs:
        reader = DatasetReader(root, dataset)
        if dw is None:
            dw = DatasetWriter(root, f"dedup/{run}/docs", reader.open_part(reader.parts[0]).schema_arrow if reader.parts else None,
                               row_group_rows=1024)
        for part in reader.parts:
            kept_batches = (b.filter(pc.is_in(b.column("id"), value_set=pa.array(sorted(keep_ids))))
                            for b in reader.iter_batches(parts=[part]))
            dw.write_unit(f"{dataset}/{part['path']}", kept_batches, fingerprint=fp)
    dup_kinds = {k: int(sum(1 for i in run_idx if not kept_mask[i] and kind[i] == k)) for k in ("url", "exact", "near")}
    by_host: dict[str, list[int]] = {}
    for i in run_idx:
        by_host.setdefault(hosts[i], [0, 0])
        by_host[hosts[i]][0] += 1
        by_host[hosts[i]][1] += int(not kept_mask[i])
    summary = {
        "run": run, "documents_in": int(len(run_idx)), "kept": int(kept_mask[run_idx].sum()),
        "duplicates": dup_kinds, "url_dups": dup_kinds["url"], "exact_dups": dup_kinds["exact"], "near_dups": dup_kinds["near"],
        "clusters": int(len(np.unique(roots[run_idx][sizes[roots[run_idx]] > 1]))),
        "largest_cluster": int(sizes.max()) if n else 0, "pairs_verified": pairs_checked, "edges": edges,
        "indexed_docs": n, "new_units": len(tasks),
        "dup_rate_by_host": {h: round(d / t, 4) for h, (t, d) in sorted(by_host.items())},
        "seconds": round(time.time() - t0, 2), "seconds_signatures": round(t_sign, 2), "seconds_clusters": round(t_cluster, 2),
        "docs": f"dedup/{run}/docs", "clusters_dataset": f"dedup/{run}/clusters",
    }
    if dw is not None:
        dw.finalize(stage="dedup", **{k: summary[k] for k in ("documents_in", "kept", "duplicates", "clusters", "largest_cluster")})
    return summary


class _TextFetcher:
    """Reads the text of a document by its global index, one row group at a time (cached)."""

    def __init__(self, root, meta):
        self.root = root
        self.dataset = meta.column("dataset").to_pylist()
        self.ids = meta.column("id").to_pylist()
        self._cache: dict[str, dict[str, str]] = {}

    def text(self, i: int) -> str:
        ds = self.dataset[i]
        if ds not in self._cache:
            table = DatasetReader(self.root, ds).read_all(columns=["id", "text"])
            self._cache[ds] = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
        return self._cache[ds].get(self.ids[i]) or ""


def _shingles(cache: dict, texts: _TextFetcher, i: int, cfg: DedupConfig) -> np.ndarray:
    if i not in cache:
        cache[i] = shingle_hashes(texts.text(i), cfg.ngram)
    return cache[i]
