"""Lineage: a document's path through every stage, its WARC record, and a run's shards.

A document is found by its id or URL in each stage's datasets, one committed dataset at a
time: the crawl log (fetch and outcome), the clean stage's documents and exclusions (kept, or
dropped with the reason and the signal), the dedup clusters (cluster, kind, representative),
the shard sets (set, split and the shard file) and the training runs whose ``training.json``
(or ``plan.json``, for a run not finished) lists that shard with the same checksum.

Each lookup reads one column of each dataset with the filter pushed down into the Parquet
scan; nothing is held but the matching rows, so it works the same on an ``s3://`` root.
"""

from __future__ import annotations

import posixpath

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from webmill.errors import UserError
from webmill.shards import jsonfile, layout
from webmill.shards.manifest import run_datasets
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot
from webmill.shards.training import list_shard_sets, read_manifest

RUNS = layout.RUNS


def _matching_rows(root: CorpusRoot, dataset: str, column: str, value: str, columns: list[str]) -> list[dict]:
    paths = DatasetReader(root, dataset).paths()
    if not paths:
        return []
    names = set(pq.read_schema(paths[0], filesystem=root.fs).names)
    if column not in names:
        return []
    ds = pads.dataset(paths, filesystem=root.fs, format="parquet")
    return ds.to_table(columns=[c for c in columns if c in names], filter=pc.field(column) == value).to_pylist()


def _run_of(dataset: str) -> str:
    return dataset.split("/")[1]  # <stage>/<run>/<dataset>


def _crawl(root: CorpusRoot, url: str) -> list[dict]:
    cols = ["url", "final_url", "status", "outcome", "error", "fetched_at", "depth", "referrer", "warc_file", "warc_offset", "warc_length"]
    out = []
    for ds in run_datasets(root, *layout.PER_RUN_DATASETS["crawl_log"]):
        for column in ("url", "final_url"):
            for row in _matching_rows(root, ds, column, url, cols):
                row["crawl_id"] = _run_of(ds)
                if row not in out:
                    out.append(row)
    return out


def _clean(root: CorpusRoot, column: str, value: str) -> list[dict]:
    kept_cols = ["id", "url", "crawl_id", "fetched_at", "title", "lang", "lang_score", "n_words", "source"]
    dropped_cols = ["id", "url", "crawl_id", "fetched_at", "title", "lang", "n_words", "drop_reason", "signal", "value", "source"]
    out = []
    for ds in run_datasets(root, *layout.PER_RUN_DATASETS["clean_docs"]):
        out += [{"run": _run_of(ds), "kept": True, **r} for r in _matching_rows(root, ds, column, value, kept_cols)]
    for ds in run_datasets(root, *layout.PER_RUN_DATASETS["excluded"]):
        out += [{"run": _run_of(ds), "kept": False, **r} for r in _matching_rows(root, ds, column, value, dropped_cols)]
    return out


def _dedup(root: CorpusRoot, doc_id: str) -> list[dict]:
    out = []
    for ds in run_datasets(root, *layout.PER_RUN_DATASETS["clusters"]):
        out += [
            {"run": _run_of(ds), **r}
            for r in _matching_rows(root, ds, "id", doc_id, ["cluster", "kind", "kept", "representative", "jaccard"])
        ]
    clustered = {r["run"] for r in out}
    for ds in run_datasets(root, *layout.PER_RUN_DATASETS["dedup_docs"]):  # kept and in no cluster: unique
        if _run_of(ds) not in clustered and _matching_rows(root, ds, "id", doc_id, ["id"]):
            out.append({"run": _run_of(ds), "cluster": None, "kind": "unique", "kept": True, "representative": doc_id})
    return out


def _shards(root: CorpusRoot, doc_id: str) -> list[dict]:
    out = []
    for name in list_shard_sets(root):
        for split in ("train", "val"):
            reader = DatasetReader(root, layout.shard_split(name, split))
            for part in reader.parts:
                path = root.path(layout.shard_split(name, split), part["path"])
                hit = pq.read_table(path, filesystem=root.fs, columns=["id"], filters=[("id", "=", doc_id)])
                if hit.num_rows:
                    out.append({"shard_set": name, "split": split, "shard": f"{split}/{part['path']}", "sha256": part["sha256"]})
    return out


def run_records(root: CorpusRoot) -> list[dict]:
    """Each training run's data record: from ``final/training.json``, or ``plan.json`` while unfinished."""
    out = []
    for name in root.listdir(RUNS):
        for parts, finished in ((("final", "training.json"), True), (("plan.json",), False)):
            if root.exists(layout.run(name), *parts):
                try:
                    doc = jsonfile.read(root, layout.run(name), *parts)
                except jsonfile.DamagedFile:
                    break
                data = doc.get("data", {})
                sums = data.get("shards_sha256", data.get("sha256", {})) or {}
                out.append(
                    {
                        "run": name,
                        "finished": finished,
                        "dataset": data.get("dataset"),
                        "sha256": sums,
                        "steps": doc.get("steps"),
                        "tokens_seen": doc.get("tokens_seen"),
                    }
                )
                break
    return out


def _runs(root: CorpusRoot, shards: list[dict]) -> list[dict]:
    out = []
    for run in run_records(root):
        for s in shards:
            if run["dataset"] == layout.shard_set(s["shard_set"]) and run["sha256"].get(s["shard"]) == s["sha256"]:
                out.append(
                    {
                        "run": run["run"],
                        "finished": run["finished"],
                        "shard": s["shard"],
                        "role": "trained on" if s["split"] == "train" else "validated on",
                    }
                )
    return out


def trace_document(root: CorpusRoot, target: str) -> dict:
    """Everything the root knows of the document with this id, or of the documents fetched from this URL."""
    by_url = "://" in target
    clean = _clean(root, "url" if by_url else "id", target)
    if by_url:
        urls = [target]
    else:
        urls = sorted({c["url"] for c in clean if c.get("url")})
    crawl = [row for u in urls for row in _crawl(root, u)]
    if not clean and not crawl:
        what = "URL" if by_url else "document id"
        raise UserError(f"trace: no {what} {target!r} in {root.display()} (give a document id or a URL the crawl fetched)")
    docs = []
    for doc_id in dict.fromkeys(c["id"] for c in clean):
        shards = _shards(root, doc_id)
        docs.append(
            {
                "id": doc_id,
                "clean": [c for c in clean if c["id"] == doc_id],
                "dedup": _dedup(root, doc_id),
                "shards": shards,
                "runs": _runs(root, shards),
            }
        )
    return {"target": target, "crawl": crawl, "documents": docs}


def trace_run(root: CorpusRoot, name: str) -> dict:
    """A training run's shard sets: each shard with its checksum, its document count and whether it still matches."""
    runs = {r["run"]: r for r in run_records(root)}
    if name not in runs:
        raise UserError(f"trace: no training run {name!r} in {root.display(RUNS)} (runs here: {', '.join(sorted(runs)) or 'none'})")
    run = runs[name]
    dataset = run["dataset"] or ""
    current = {}
    if dataset.startswith("shards/") and dataset.count("/") == 1:
        manifest = read_manifest(root, dataset.split("/", 1)[1], missing_ok=True) or {"splits": {}}
        current = {s["path"]: s for sp in manifest["splits"].values() for s in sp["shards"]}
    else:
        current = {p["path"]: p for p in DatasetReader(root, dataset).parts} if root.exists(dataset) else {}
    shards = []
    for path, sha in sorted(run["sha256"].items()):
        now = current.get(path)
        shards.append(
            {
                "shard": path,
                "sha256": sha,
                "documents": now["rows"] if now else None,
                "status": "unchanged" if now and now["sha256"] == sha else "changed" if now else "missing",
            }
        )
    return {
        "run": name,
        "finished": run["finished"],
        "dataset": dataset,
        "steps": run["steps"],
        "tokens_seen": run["tokens_seen"],
        "documents": sum(s["documents"] or 0 for s in shards),
        "shards": shards,
    }


def is_run_target(root: CorpusRoot, target: str) -> str | None:
    """The run name a target names (``runs/<name>``, a run folder path, or a bare run name), or None."""
    t = target.rstrip("/")
    if "://" in t and not t.startswith(("file://", "s3://")):
        return None
    name = posixpath.basename(t)
    if posixpath.basename(posixpath.dirname(t)) == RUNS or t.startswith(layout.run("")):
        return name
    if name in root.listdir(RUNS) and "/" not in t:
        return name
    return None


def render_document(t: dict) -> list[str]:
    lines = [f"trace {t['target']}"]
    for c in t["crawl"]:
        where = f"  → {c['warc_file']}@{c['warc_offset']}" if c.get("warc_file") else ""
        lines.append(
            f"  crawl {c['crawl_id']}: {c['url']}  status {c['status']}, {c['outcome']}"
            f"{' (' + c['error'] + ')' if c.get('error') else ''}, depth {c['depth']}{where}"
        )
    if not t["documents"]:
        lines.append("  clean: no document (the fetch stored nothing the clean stage read)")
    for d in t["documents"]:
        lines.append(f"  document {d['id']}")
        for c in d["clean"]:
            if c["kept"]:
                lines.append(f"    clean {c['run']}: kept ({c['lang']}, {c['n_words']:,} words) {c['title']!r}")
            else:
                lines.append(f"    clean {c['run']}: dropped, {c['drop_reason']} ({c['signal']} = {c['value']})")
            src = c.get("source") or {}
            lines.append(f"      source {src.get('warc')}@{src.get('offset')} ({src.get('length')} bytes)")
        for x in d["dedup"]:
            rep = "" if x["representative"] == d["id"] else f", representative {x['representative']}"
            lines.append(
                f"    dedup {x['run']}: {'kept' if x['kept'] else 'dropped'}, "
                + (f"{x['kind']} duplicate, cluster {x['cluster']}{rep}" if x["kind"] not in (None, "unique") else "unique")
            )
        for s in d["shards"]:
            lines.append(f"    shards {s['shard_set']}: {s['split']}, {s['shard']} (sha256 {s['sha256'][:12]}…)")
        for r in d["runs"]:
            lines.append(f"    run {r['run']}: {r['role']} {r['shard']}{'' if r['finished'] else ' (unfinished)'}")
        if not d["dedup"] and not d["shards"]:
            lines.append("    (no dedup or shard stage has read it yet)")
    return lines


def render_run(t: dict) -> list[str]:
    lines = [
        f"run {t['run']} ({'finished' if t['finished'] else 'unfinished'}): {t['dataset']}, "
        f"{len(t['shards'])} shards, {t['documents']:,} documents, {t['steps']} steps, {t['tokens_seen'] or 0:,} tokens"
    ]
    lines += [
        f"  {s['shard']}  {s['sha256'][:16]}  {s['documents'] if s['documents'] is not None else '?':>8}  {s['status']}"
        for s in t["shards"]
    ]
    return lines
