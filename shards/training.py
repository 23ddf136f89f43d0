"""Training shards: the deduplicated documents, mixed, split and globally shuffled.

Two passes keep memory bounded by one bucket whatever the corpus size:

1. stream every source document once; keep it with its source's mixture
   probability, send it to ``train`` or ``val`` by a hash of its id, and append
   it to one of B bucket files by another hash of (seed, id);
2. load one bucket at a time, permute it with a generator seeded by
   (seed, bucket), and write it as one shard through the shard store.

Bucket count is sized so a bucket holds about ``target_bytes`` of text, so a
shard is about ``target_bytes`` on disk too. Everything is a function of
(seed, doc id), so a rerun writes the same shards.
"""
from __future__ import annotations

import hashlib
import json
import math
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webmill.errors import UserError
from webmill.shards.config import ShardsConfig
from webmill.shards.manifest import Manifest, is_dataset, run_datasets
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot
from webmill.shards.schema import DOC_SCHEMA
from webmill.shards.writer import DatasetWriter

# the document schema's columns a trainer or a lineage query needs, plus the dataset each row came from
SHARD_SCHEMA = pa.schema([DOC_SCHEMA.field(name) for name in ("id", "url", "host", "crawl_id", "lang", "title", "text", "n_chars")]
                         + [pa.field("source_dataset", pa.string())])
SPLITS = ("train", "val")
MANIFEST = "manifest.json"
BUCKETS = "_buckets"


def resolve_sources(root: CorpusRoot, mix: dict[str, float]) -> dict[str, float]:
    """Source names → dataset paths with their weights; no mix means every dedup run, by size."""
    if not mix:
        found = run_datasets(root, "dedup", "docs")
        if not found:
            raise UserError(f"corpus root {root.display()}: no deduplicated documents to shard (run `webmill dedup` first, "
                            "or name datasets in [shards] mix)")
        return dict.fromkeys(found, 0.0)
    out = {}
    for name, weight in mix.items():
        candidates = [name] if "/" in name else [f"dedup/{name}/docs", f"clean/{name}/docs"]
        found = next((c for c in candidates if is_dataset(root, c)), None)
        if found is None:
            raise UserError(f"[shards] mix: source {name!r} not found in {root.display()} (tried {', '.join(candidates)})")
        out[found] = float(weight)
    if sum(out.values()) <= 0:
        raise UserError("[shards] mix: weights must not all be zero")
    return out


def _unit_hash(seed: int, salt: str, doc_id: str) -> float:
    """A uniform number in [0, 1) from (seed, salt, id)."""
    h = hashlib.blake2b(f"{seed}:{salt}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def keep_probabilities(chars: dict[str, int], weights: dict[str, float]) -> dict[str, float]:
    """Per-source keep probability so sources make up ``weights`` of the characters, using as much data as possible.

    Without weights (all zero) every document is kept. With weights, no source is
    repeated: the largest total T with T·w_s ≤ chars_s for every source sets the mix.
    """
    if not any(weights.values()):
        return {s: 1.0 for s in chars}
    total = sum(weights.values())
    share = {s: w / total for s, w in weights.items()}
    feasible = [chars[s] / share[s] for s in chars if share[s] > 0]
    t = min(feasible) if feasible else 0
    return {s: (min(1.0, t * share[s] / chars[s]) if chars[s] and share[s] else 0.0) for s in chars}


def fingerprint(root: CorpusRoot, sources: dict[str, float], cfg: ShardsConfig) -> str:
    h = hashlib.sha256()
    for ds in sorted(sources):
        h.update(f"{ds}={sources[ds]};".encode())
        for p in DatasetReader(root, ds).parts:
            h.update(f"{p['path']}:{p['sha256']}:{p['rows']};".encode())
    h.update(json.dumps({k: getattr(cfg, k) for k in ("seed", "val_fraction", "target_bytes", "row_group_rows")},
                        sort_keys=True).encode())
    return h.hexdigest()[:16]


def build_shards(root: CorpusRoot, cfg: ShardsConfig, *, name: str | None = None, on_progress=None) -> dict:
    """Write ``shards/<name>/{train,val}`` and ``shards/<name>/manifest.json``; returns the manifest."""
    name = name or cfg.name
    base = f"shards/{name}"
    sources = resolve_sources(root, cfg.mix)
    fp = fingerprint(root, sources, cfg)
    old = read_manifest(root, name, missing_ok=True)
    if old and old.get("fingerprint") == fp:
        return {**old, "skipped": True}
    t0 = time.time()
    readers = {ds: DatasetReader(root, ds) for ds in sources}
    for ds, r in readers.items():
        if r.parts and "text" not in r.open_part(r.parts[0]).schema_arrow.names:
            raise UserError(f"dataset {root.display(ds)}: has no text column")
    chars = {ds: _chars(r) for ds, r in readers.items()}
    keep_p = keep_probabilities(chars, sources)
    expected = sum(chars[ds] * keep_p[ds] for ds in sources)
    n_buckets = max(1, math.ceil(expected / cfg.target_bytes))
    counts = _bucket_pass(root, base, readers, keep_p, n_buckets, cfg, fp, on_progress)

    splits = {}
    for split in SPLITS:
        dw = DatasetWriter(root, f"{base}/{split}", SHARD_SCHEMA, target_bytes=1 << 62, row_group_rows=cfg.row_group_rows)
        for b in range(n_buckets):
            unit = f"bucket-{b:05d}"
            if dw.is_committed(unit, fp):
                continue
            path = root.path(base, BUCKETS, f"{split}-{b:05d}.parquet")
            table = pq.read_table(path, filesystem=root.fs) if root.exists(base, BUCKETS, f"{split}-{b:05d}.parquet") else None
            if table is None or table.num_rows == 0:
                dw.write_unit(unit, [], fingerprint=fp, stats={"chars": 0})
                continue
            order = np.random.default_rng([cfg.seed, b, SPLITS.index(split)]).permutation(table.num_rows)
            table = table.take(order)
            dw.write_unit(unit, [table], fingerprint=fp, stats={"chars": int(pc.sum(table["n_chars"]).as_py() or 0)})
        m = Manifest.load(root, f"{base}/{split}")
        stale = set(m.units) - {f"bucket-{b:05d}" for b in range(n_buckets)}
        for unit in stale:  # a bucket count from an earlier config
            for p in m.units[unit].parts:
                root.delete(base, split, p["path"])
            Manifest.uncommit_unit(root, f"{base}/{split}", unit)
        m = Manifest.load(root, f"{base}/{split}", full=True)
        m.write(stage="shards")
        shards = []
        for unit in sorted(m.units):
            rec = m.units[unit]
            for p in rec.parts:
                shards.append({"path": f"{split}/{p['path']}", "rows": p["rows"], "bytes": p["bytes"], "sha256": p["sha256"],
                               "chars": rec.stats.get("chars", 0)})
        splits[split] = {"rows": m.rows, "bytes": m.bytes, "chars": sum(s["chars"] for s in shards), "shards": shards}
    manifest = {
        "name": name, "fingerprint": fp, "seed": cfg.seed, "val_fraction": cfg.val_fraction,
        "sources": {ds: {"weight": sources[ds], "keep_probability": round(keep_p[ds], 6), "chars_in": chars[ds],
                         "rows_in": readers[ds].num_rows, "rows_out": counts[ds]} for ds in sources},
        "buckets": n_buckets, "splits": splits, "tokenizer": None, "created_at": time.time(),
        "seconds": round(time.time() - t0, 2),
    }
    root.write_bytes_atomic(json.dumps(manifest, indent=1, sort_keys=True).encode(), base, MANIFEST)
    root.delete(base, BUCKETS)
    return manifest


def _chars(reader: DatasetReader) -> int:
    total = 0
    for b in reader.iter_batches(columns=["n_chars"]):
        total += int(pc.sum(b.column("n_chars")).as_py() or 0)
    return total


def _bucket_pass(root, base, readers, keep_p, n_buckets, cfg, fp, on_progress) -> dict[str, int]:
    """Pass 1: documents → bucket files. Reused when a complete pass with this fingerprint is on disk."""
    done_marker = (base, BUCKETS, "_done.json")
    if root.exists(*done_marker):
        done = json.loads(root.read_bytes(*done_marker))
        if done.get("fingerprint") == fp:
            return done["counts"]
    root.delete(base, BUCKETS)
    root.makedirs(base, BUCKETS)
    writers: dict[tuple[str, int], pq.ParquetWriter] = {}
    counts: dict[str, int] = {}
    seen = 0
    try:
        for ds, reader in readers.items():
            counts[ds] = 0
            p_keep = keep_p[ds]
            for batch in reader.iter_batches():
                ids = batch.column("id").to_pylist()
                dest: dict[tuple[str, int], list[int]] = {}
                for i, doc_id in enumerate(ids):
                    if p_keep < 1.0 and _unit_hash(cfg.seed, "mix", doc_id) >= p_keep:
                        continue
                    split = "val" if _unit_hash(cfg.seed, "split", doc_id) < cfg.val_fraction else "train"
                    bucket = int(_unit_hash(cfg.seed, "bucket", doc_id) * n_buckets)
                    dest.setdefault((split, bucket), []).append(i)
                seen += len(ids)
                table = _shard_rows(batch, ds)
                for key, rows in dest.items():
                    if key not in writers:
                        path = root.path(base, BUCKETS, f"{key[0]}-{key[1]:05d}.parquet")
                        writers[key] = pq.ParquetWriter(path, SHARD_SCHEMA, filesystem=root.fs, compression="zstd")
                    writers[key].write_table(table.take(rows))
                    counts[ds] += len(rows)
                if on_progress:
                    on_progress(seen)
    finally:
        for w in writers.values():
            w.close()
    root.write_bytes_atomic(json.dumps({"fingerprint": fp, "counts": counts}).encode(), *done_marker)
    return counts


def _shard_rows(batch: pa.RecordBatch, dataset: str) -> pa.Table:
    cols = {}
    for f in SHARD_SCHEMA:
        if f.name == "source_dataset":
            cols[f.name] = pa.array([dataset] * batch.num_rows, pa.string())
        elif f.name in batch.schema.names:
            cols[f.name] = batch.column(f.name).cast(f.type)
        elif f.name == "n_chars":
            cols[f.name] = pc.utf8_length(batch.column("text")).cast(pa.int64())
        else:
            cols[f.name] = pa.nulls(batch.num_rows, f.type)
    return pa.table(cols, schema=SHARD_SCHEMA)


# reading -------------------------------------------------------------------
def list_shard_sets(root: CorpusRoot) -> list[str]:
    return [n for n in root.listdir("shards") if root.exists("shards", n, MANIFEST)]


def newest_shard_set(root: CorpusRoot) -> str:
    sets = list_shard_sets(root)
    if not sets:
        raise UserError(f"corpus root {root.display()}: no training shards (run `webmill shard` first)")
    return max(sets, key=lambda n: (read_manifest(root, n).get("created_at", 0), n))


def read_manifest(root: CorpusRoot, name: str, *, missing_ok: bool = False) -> dict | None:
    if not root.exists("shards", name, MANIFEST):
        if missing_ok:
            return None
        raise UserError(f"training shards {root.display('shards', name)}: not found (run `webmill shard`)")
    try:
        return json.loads(root.read_bytes("shards", name, MANIFEST))
    except ValueError as e:
        raise UserError(f"{root.display('shards', name, MANIFEST)}: corrupt manifest ({e})") from None


def write_manifest(root: CorpusRoot, name: str, manifest: dict) -> None:
    root.write_bytes_atomic(json.dumps(manifest, indent=1, sort_keys=True).encode(), "shards", name, MANIFEST)
