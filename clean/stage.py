"""The clean stage on Ray Data: WARC files → documents + exclusions, committed per input unit.

A unit is a byte range of one WARC file (``[clean] unit_bytes``): its task seeks to the
first record that starts in the range and cleans the records that start there, so one
large WARC still uses the whole cluster, and the units depend only on the files, never
on the cluster's size: a resume on any cluster cleans every record exactly once. Units
are committed through the shard store; a rerun skips committed units.
"""

from __future__ import annotations

import hashlib
import json
import time

import pyarrow as pa

from webmill.clean.config import CleanConfig
from webmill.clean.filters import SIGNALS
from webmill.shards import CorpusRoot, DatasetWriter, Manifest, layout
from webmill.shards.schema import SOURCE_TYPE, doc_schema

DOCS_SCHEMA = doc_schema(
    {
        "date": pa.string(),
        "pii_emails": pa.int32(),
        "pii_ips": pa.int32(),
        **{name: pa.float64() for name in SIGNALS},
    }
)

EXCLUDED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("host", pa.string()),
        ("crawl_id", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("title", pa.string()),
        ("lang", pa.string()),
        ("n_words", pa.int64()),
        ("drop_reason", pa.string()),
        ("signal", pa.string()),
        ("value", pa.float64()),
        ("source", SOURCE_TYPE),
    ]
)

BATCH = 256


def fingerprint(cfg: CleanConfig) -> str:
    return hashlib.sha1(json.dumps({"cfg": cfg.__dict__}, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unit_name(inp, lo: int) -> str:
    return f"{inp.name}@{lo}"


def clean_unit(unit: dict, root: CorpusRoot, run: str, cfg: CleanConfig) -> dict:
    """Extract one unit (a byte range of a WARC file) and commit its documents and exclusions."""
    from webmill.clean.extract import process_record
    from webmill.clean.warcs import iter_records

    inp, (lo, hi) = unit["input"], unit["range"]
    name = unit_name(inp, lo)
    stats: dict = {"records": 0}
    kept, dropped = [], []
    docs_w = DatasetWriter(root, layout.clean_docs(run), DOCS_SCHEMA, row_group_rows=1024)
    excl_w = DatasetWriter(root, layout.clean_excluded(run), EXCLUDED_SCHEMA, row_group_rows=4096)
    reasons: dict[str, int] = {}
    langs: dict[str, int] = {}
    n_kept = bytes_in = bytes_out = 0
    t0 = time.time()
    with docs_w.unit(name, unit["fingerprint"]) as docs_out, excl_w.unit(name, unit["fingerprint"]) as excl_out:
        for rec in iter_records(inp, stats, (lo, hi), max_body=cfg.max_html_bytes):
            if "bad" in rec:
                kind, row = "excluded", {"id": None, "url": rec["url"], "drop_reason": rec["bad"], "source": rec["source"]}
            else:
                bytes_in += len(rec["body"])
                try:
                    kind, row = process_record(rec, cfg)
                except Exception as e:  # a page that crashes the extractor is counted, never fatal
                    kind, row = (
                        "excluded",
                        {
                            "id": None,
                            "url": rec["url"],
                            "drop_reason": "extract_error",
                            "signal": type(e).__name__,
                            "source": rec["source"],
                        },
                    )
            if kind == "doc":
                kept.append(row)
                n_kept += 1
                bytes_out += len(row["text"].encode())
                langs[row["lang"]] = langs.get(row["lang"], 0) + 1
            else:
                dropped.append(row)
                reasons[row["drop_reason"]] = reasons.get(row["drop_reason"], 0) + 1
            if len(kept) >= BATCH:
                docs_out.write(pa.Table.from_pylist(kept, schema=DOCS_SCHEMA))
                kept = []
            if len(dropped) >= BATCH:
                excl_out.write(pa.Table.from_pylist(dropped, schema=EXCLUDED_SCHEMA))
                dropped = []
        if kept:
            docs_out.write(pa.Table.from_pylist(kept, schema=DOCS_SCHEMA))
        if dropped:
            excl_out.write(pa.Table.from_pylist(dropped, schema=EXCLUDED_SCHEMA))
        mine = {
            "documents_in": n_kept + sum(reasons.values()),
            "kept": n_kept,
            "dropped": reasons,
            "languages": langs,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "records": stats.get("records", 0),
            "warc_truncated": stats.get("warc_truncated", 0),
            "not_html": stats.get("not_html", 0),
        }
        docs_out.stats.update(mine)
    return {"unit": name, "seconds": time.time() - t0, **mine}


def run_clean(root: CorpusRoot, ray, inputs: list, run: str, cfg: CleanConfig, *, on_progress=None) -> dict:
    """Clean ``inputs`` into ``clean/<run>/``; returns the stage summary."""
    from webmill.locks import run_lock

    with run_lock(root, layout.CLEAN, run):
        return _run_clean_locked(root, ray, inputs, run, cfg, on_progress=on_progress)


def _run_clean_locked(root: CorpusRoot, ray, inputs: list, run: str, cfg: CleanConfig, *, on_progress=None) -> dict:
    from webmill.clean.warcs import unit_ranges
    from webmill.runtime import run_tasks

    fp = fingerprint(cfg)
    done = Manifest.load(root, layout.clean_docs(run)).units
    units = [
        {"input": inp, "range": r, "fingerprint": fp}
        for inp in inputs
        for r in unit_ranges(inp.size, cfg.unit_bytes, inp.path.endswith(".gz"))
    ]
    todo = [
        u
        for u in units
        if done.get(unit_name(u["input"], u["range"][0])) is None or done[unit_name(u["input"], u["range"][0])].fingerprint != fp
    ]
    t0 = time.time()
    results = []
    if todo:
        todo = largest_first(todo)  # the big units start first, the small ones fill the tail
        for result in run_tasks(clean_unit, [(u, root, run, cfg) for u in todo]):
            results.append(result)
            if on_progress:
                on_progress(results, len(todo), time.time() - t0)
    seconds = time.time() - t0
    docs = DatasetWriter(root, layout.clean_docs(run), DOCS_SCHEMA).finalize(stage="clean", fingerprint=fp, inputs=[i.name for i in inputs])
    excl = DatasetWriter(root, layout.clean_excluded(run), EXCLUDED_SCHEMA).finalize(stage="clean.excluded")
    st = docs["stats"]
    return {
        "run": run,
        "inputs": len(inputs),
        "units": len(units),
        "units_run": len(todo),
        "units_skipped": len(units) - len(todo),
        "records": st.get("records", 0),
        "documents_in": st.get("documents_in", 0),
        "kept": docs["rows"],
        "excluded": excl["rows"],
        "dropped": st.get("dropped", {}),
        "languages": st.get("languages", {}),
        "bytes_in": st.get("bytes_in", 0),
        "bytes_out": st.get("bytes_out", 0),
        "warc_truncated": st.get("warc_truncated", 0),
        "seconds": round(seconds, 2),
        "docs_per_s": round(sum(r["documents_in"] for r in results) / max(seconds, 1e-9), 1),
        "docs": layout.clean_docs(run),
        "excluded_dataset": layout.clean_excluded(run),
    }


def largest_first(units: list[dict]) -> list[dict]:
    """Units ordered by size, largest first: the big ones start first, the small ones fill the tail."""
    return sorted(units, key=lambda u: -(u["range"][1] - u["range"][0]))


def clean_progress_line(results: list, total: int, elapsed: float) -> str:
    docs = sum(r["documents_in"] for r in results)
    kept = sum(r["kept"] for r in results)
    return (
        f"clean: {len(results)}/{total} units, {docs:,} records, {docs / max(elapsed, 1e-9):,.1f} docs/s, "
        f"kept {100 * kept / max(docs, 1):.0f}%"
    )


class CleanStage:
    """The clean stage (``webmill.stage``): WARC files → ``clean/<run>/docs`` and ``excluded``."""

    name = "clean"

    def __init__(self, inputs: list, run: str):
        self.inputs, self.run_name = inputs, run

    @classmethod
    def following(cls, chain) -> CleanStage:
        from webmill.clean.warcs import crawl_inputs

        crawl_id = chain.config.run.crawl or chain.upstream["crawl"]["crawl_id"]
        return cls(crawl_inputs(chain.root, crawl_id), crawl_id)

    def settings(self, config) -> dict:
        import dataclasses

        return dataclasses.asdict(config.clean)

    def reads(self) -> list[str]:
        import posixpath

        return sorted({posixpath.dirname(i.name) for i in self.inputs})

    def writes(self, summary: dict) -> list[str]:
        return [f"{summary['docs']}/_manifest.json", f"{summary['excluded_dataset']}/_manifest.json"]

    def run(self, root: CorpusRoot, ray, config, progress) -> dict:
        def show(results: list, total: int, elapsed: float) -> None:
            progress.update(clean_progress_line(results, total, elapsed))

        return run_clean(root, ray(), self.inputs, self.run_name, config.clean, on_progress=show)

    def brief(self, s: dict) -> str:
        return f"{s['kept']:,} of {s['documents_in']:,} documents kept"
