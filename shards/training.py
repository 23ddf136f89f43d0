"""Training shards: the deduplicated documents, mixed, split and globally shuffled.

Two passes of Ray tasks keep memory bounded by one bucket whatever the corpus size,
and the driver's state by the number of input parts:

1. map, one task per input part: keep each document with its source's mixture
   probability, send it to ``train`` or ``val`` by a hash of its id and to one of B
   buckets by another hash of (seed, id); write the part's rows as one file sorted by
   (split, bucket), one row group per key, and commit it with a marker;
2. reduce, one task per (split, bucket): read that key's row groups from every map
   file (found by the row groups' statistics), permute them with a generator seeded
   by (seed, bucket, split), and commit the shard through the shard store in full
   row groups of ``row_group_rows``.

Character counts (which size B and set the mixture) are summed by tasks too.

Bucket count is sized so a bucket holds about ``target_bytes`` of text, so a
shard is about ``target_bytes`` on disk too. Everything is a function of
(seed, doc id), so a rerun writes the same shards.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webmill.errors import UserError
from webmill.names import check_dataset_path
from webmill.shards import jsonfile, layout
from webmill.shards.config import ShardsConfig
from webmill.shards.manifest import Manifest, is_dataset, run_datasets
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot
from webmill.shards.schema import DOC_SCHEMA
from webmill.shards.writer import DatasetWriter

# the document schema's columns a trainer or a lineage query needs, plus the dataset each row came from
SHARD_SCHEMA = pa.schema(
    [DOC_SCHEMA.field(name) for name in ("id", "url", "host", "crawl_id", "lang", "title", "text", "n_chars")]
    + [pa.field("source_dataset", pa.string())]
)
SPLITS = ("train", "val")
MANIFEST = layout.SHARD_MANIFEST
BUCKETS = "_buckets"


def resolve_sources(root: CorpusRoot, mix: dict[str, float]) -> dict[str, float]:
    """Source names → dataset paths with their weights; no mix means every dedup run, by size."""
    if not mix:
        found = run_datasets(root, *layout.PER_RUN_DATASETS["dedup_docs"])
        if not found:
            raise UserError(
                f"corpus root {root.display()}: no deduplicated documents to shard (run `webmill dedup` first, "
                "or name datasets in [shards] mix)"
            )
        return dict.fromkeys(found, 0.0)
    out = {}
    for name, weight in mix.items():
        check_dataset_path(name, "[shards] mix: source")
        candidates = [name] if "/" in name else [layout.dedup_docs(name), layout.clean_docs(name)]
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
    h.update(json.dumps({k: getattr(cfg, k) for k in ("seed", "val_fraction", "target_bytes", "row_group_rows")}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def build_shards(root: CorpusRoot, cfg: ShardsConfig, *, name: str | None = None, on_progress=None, ray_fn=None) -> dict:
    """Write ``shards/<name>/{train,val}`` and ``shards/<name>/manifest.json``; returns the manifest.
    Runs on the Ray ``ray_fn()`` gives (default: the one webmill started or joined, else an embedded one)."""
    from webmill.locks import run_lock

    with run_lock(root, layout.SHARDS, name or cfg.name):
        return _build_shards_locked(root, cfg, name=name, on_progress=on_progress, ray_fn=ray_fn)


def _build_shards_locked(root: CorpusRoot, cfg: ShardsConfig, *, name: str | None = None, on_progress=None, ray_fn=None) -> dict:
    from webmill.runtime import ensure_ray

    name = name or cfg.name  # checked by run_lock
    base = layout.shard_set(name)
    sources = resolve_sources(root, cfg.mix)
    fp = fingerprint(root, sources, cfg)
    old = read_manifest(root, name, missing_ok=True)
    if old and old.get("fingerprint") == fp:
        return {**old, "skipped": True}
    t0 = time.time()
    (ray_fn or ensure_ray)()
    readers = {ds: DatasetReader(root, ds) for ds in sources}
    for ds, r in readers.items():
        if r.parts and "text" not in r.open_part(r.parts[0]).schema_arrow.names:
            raise UserError(f"dataset {root.display(ds)}: has no text column")
    chars = _chars(root, readers)
    keep_p = keep_probabilities(chars, sources)
    expected = sum(chars[ds] * keep_p[ds] for ds in sources)
    n_buckets = max(1, math.ceil(expected / cfg.target_bytes))
    counts, maps = _map_pass(root, base, readers, keep_p, n_buckets, cfg, fp, on_progress)
    _reduce_pass(root, base, maps, n_buckets, cfg, fp)

    splits = {}
    for split in SPLITS:
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
                shards.append(
                    {
                        "path": f"{split}/{p['path']}",
                        "rows": p["rows"],
                        "bytes": p["bytes"],
                        "sha256": p["sha256"],
                        "chars": rec.stats.get("chars", 0),
                    }
                )
        splits[split] = {"rows": m.rows, "bytes": m.bytes, "chars": sum(s["chars"] for s in shards), "shards": shards}
    manifest = {
        "name": name,
        "fingerprint": fp,
        "seed": cfg.seed,
        "val_fraction": cfg.val_fraction,
        "sources": {
            ds: {
                "weight": sources[ds],
                "keep_probability": round(keep_p[ds], 6),
                "chars_in": chars[ds],
                "rows_in": readers[ds].num_rows,
                "rows_out": counts[ds],
            }
            for ds in sources
        },
        "buckets": n_buckets,
        "splits": splits,
        "tokenizer": None,
        "created_at": time.time(),
        "seconds": round(time.time() - t0, 2),
    }
    root.write_bytes_atomic(json.dumps(manifest, indent=1, sort_keys=True).encode(), base, MANIFEST)
    root.delete(base, BUCKETS)
    root.delete(layout.shard_tokens(name))  # token files of the shards replaced (the new manifest has none)
    return manifest


def _chars(root: CorpusRoot, readers: dict[str, DatasetReader]) -> dict[str, int]:
    """Characters per source, summed by one task per part."""
    from webmill.runtime import run_tasks

    tasks = [(root, ds, part["path"]) for ds, r in readers.items() for part in r.parts]
    out = dict.fromkeys(readers, 0)
    for result in run_tasks(_part_chars, tasks) if tasks else []:
        out[result["dataset"]] += result["chars"]
    return out


def _part_chars(root: CorpusRoot, dataset: str, path: str) -> dict:
    from webmill.shards.reader import open_part

    pf = open_part(root, dataset, {"path": path})
    total = 0
    for g in range(pf.num_row_groups):
        total += int(pc.sum(pf.read_row_group(g, columns=["n_chars"]).column("n_chars")).as_py() or 0)
    return {"dataset": dataset, "chars": total}


def _map_pass(root, base, readers, keep_p, n_buckets, cfg, fp, on_progress) -> tuple[dict[str, int], list[str]]:
    """Pass 1: one task per input part writes ``_buckets/map-<k>.parquet``; a rerun skips the
    parts whose marker carries this fingerprint, and a new fingerprint starts the pass anew."""
    from webmill.runtime import run_tasks

    marker = (base, BUCKETS, "_pass.json")
    if (jsonfile.marker(root, *marker) or {}).get("fingerprint") != fp:
        root.delete(base, BUCKETS)
        root.write_bytes_atomic(json.dumps({"fingerprint": fp}).encode(), *marker)
    tasks, names = [], []
    for ds, reader in readers.items():
        for part in reader.parts:
            name = f"map-{len(names):06d}"
            names.append(name)
            tasks.append((root, base, name, ds, part["path"], keep_p[ds], n_buckets, cfg.seed, cfg.val_fraction, fp))
    counts = dict.fromkeys(readers, 0)
    seen = 0
    for result in run_tasks(_map_part, tasks) if tasks else []:
        counts[result["dataset"]] += result["kept"]
        seen += result["rows"]
        if on_progress:
            on_progress(seen)
    return counts, [n for n in names if root.exists(base, BUCKETS, n + ".parquet")]


def _map_part(root, base, name, dataset, path, p_keep, n_buckets, seed, val_fraction, fp) -> dict:
    """One input part → one file sorted by key = split * B + bucket, a row group per key."""
    from webmill.shards.reader import open_part

    done = (base, BUCKETS, name + ".json")
    rec = jsonfile.marker(root, *done)
    if rec is not None and rec.get("fingerprint") == fp:
        return rec
    pf = open_part(root, dataset, {"path": path})
    tables, keys = [], []
    for g in range(pf.num_row_groups):
        batch = pf.read_row_group(g)
        ids = batch.column("id").to_pylist()
        keep = np.array([p_keep >= 1.0 or _unit_hash(seed, "mix", i) < p_keep for i in ids], dtype=bool)
        split = np.array([_unit_hash(seed, "split", i) < val_fraction for i in ids], dtype=np.int64)  # 1 = val
        bucket = np.array([int(_unit_hash(seed, "bucket", i) * n_buckets) for i in ids], dtype=np.int64)
        rows = np.flatnonzero(keep)
        tables.append(_shard_rows(batch, dataset).take(pa.array(rows)))
        keys.append((split * n_buckets + bucket)[rows])
    rows_in = pf.metadata.num_rows
    kept = 0
    if tables:
        table = pa.concat_tables(tables).append_column("key", pa.array(np.concatenate(keys)))
        kept = table.num_rows
        if kept:
            table = table.take(pc.sort_indices(table, sort_keys=[("key", "ascending")]))
            key = table.column("key").to_numpy()
            cuts = np.flatnonzero(np.diff(key)) + 1
            tmp = root.path(base, BUCKETS, f".{name}.{uuid.uuid4().hex[:8]}.parquet.tmp")  # two attempts never share it
            with pq.ParquetWriter(tmp, table.schema, filesystem=root.fs, compression="zstd") as w:
                for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [kept]])):
                    w.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
            root.fs.move(tmp, root.path(base, BUCKETS, name + ".parquet"))
    rec = {"fingerprint": fp, "dataset": dataset, "rows": rows_in, "kept": kept}
    root.write_bytes_atomic(json.dumps(rec).encode(), *done)
    return rec


def _reduce_pass(root, base, maps: list[str], n_buckets: int, cfg, fp) -> None:
    """Pass 2: one task per (split, bucket), each committed as a unit (a rerun skips those)."""
    from webmill.runtime import run_tasks

    tasks = [(root, base, maps, split, b, n_buckets, cfg.seed, cfg.row_group_rows, fp) for split in SPLITS for b in range(n_buckets)]
    for _ in run_tasks(_reduce_bucket, tasks):
        pass


def _reduce_bucket(root, base, maps, split, b, n_buckets, seed, row_group_rows, fp) -> dict:
    dw = DatasetWriter(root, f"{base}/{split}", SHARD_SCHEMA, target_bytes=1 << 62, row_group_rows=row_group_rows)
    unit = f"bucket-{b:05d}"
    if dw.is_committed(unit, fp):
        return {"unit": unit, "skipped": True}
    key = SPLITS.index(split) * n_buckets + b
    pieces = []
    for name in maps:
        pf = pq.ParquetFile(root.path(base, BUCKETS, name + ".parquet"), filesystem=root.fs)
        k = pf.schema_arrow.get_field_index("key")
        groups = [g for g in range(pf.num_row_groups) if pf.metadata.row_group(g).column(k).statistics.min == key]
        if groups:
            pieces.append(pf.read_row_groups(groups).drop_columns(["key"]))
    table = pa.concat_tables(pieces) if pieces else SHARD_SCHEMA.empty_table()
    if table.num_rows:
        order = np.random.default_rng([seed, b, SPLITS.index(split)]).permutation(table.num_rows)
        table = table.take(order)
    dw.write_unit(
        unit,
        [table] if table.num_rows else [],
        fingerprint=fp,
        stats={"chars": int(pc.sum(table["n_chars"]).as_py() or 0) if table.num_rows else 0},
    )
    return {"unit": unit, "rows": table.num_rows}


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
    return [n for n in root.listdir(layout.SHARDS) if root.exists(layout.shard_manifest(n))]


def newest_shard_set(root: CorpusRoot) -> str:
    sets = list_shard_sets(root)
    if not sets:
        raise UserError(f"corpus root {root.display()}: no training shards (run `webmill shard` first)")
    return max(sets, key=lambda n: (read_manifest(root, n).get("created_at", 0), n))


def read_manifest(root: CorpusRoot, name: str, *, missing_ok: bool = False) -> dict | None:
    if not root.exists(layout.shard_manifest(name)):
        if missing_ok:
            return None
        raise UserError(f"training shards {root.display(layout.shard_set(name))}: not found (run `webmill shard`)")
    return check_manifest(jsonfile.read(root, layout.shard_manifest(name)), root.display(layout.shard_manifest(name)))


def check_manifest(doc: dict, shown: str) -> dict:
    """A shard set's manifest of the shape ``build_shards`` writes: its splits, each a list of shards
    with a path and a checksum (what training, the tokenizer stage and stats index into)."""
    jsonfile.check_keys(doc, {"name": str, "splits": dict, "fingerprint": str}, shown)
    for split in ("train", "val"):
        if not isinstance(doc["splits"].get(split), dict):
            raise jsonfile.DamagedFile(f"{shown}: damaged file (no {split} split)")
        jsonfile.check_keys(doc["splits"][split], {"shards": list}, shown, f"splits.{split}.")
        for shard in doc["splits"][split]["shards"]:
            if not isinstance(shard, dict):
                raise jsonfile.DamagedFile(f"{shown}: damaged file (a shard of splits.{split} is not a table)")
            jsonfile.check_keys(shard, {"path": str, "sha256": str}, shown, f"a shard of splits.{split}: ")
    return doc


def write_manifest(root: CorpusRoot, name: str, manifest: dict) -> None:
    root.write_bytes_atomic(json.dumps(manifest, indent=1, sort_keys=True).encode(), layout.shard_manifest(name))
