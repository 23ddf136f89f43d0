"""The dedup stage: URL, exact and MinHash-LSH near duplicates on the cluster, incremental.

    <root>/dedup/_index/          the band index over every document ever indexed (index.py, plan.py)
    <root>/dedup/<run>/_work/     the run's relations and labels, one dataset per phase (deleted when done)
    <root>/dedup/<run>/docs/      the run's kept documents, one unit per input part
    <root>/dedup/<run>/clusters/  id → cluster, duplicate kind, kept flag, representative, Jaccard
    <root>/dedup/<run>/pairs/     the verified near-duplicate pairs

Phases, each committed before the next starts, so a rerun resumes at the first one not
committed (and inside it, at the first uncommitted partition or part):

    sign        one Ray task per new input part                      (index.py)
    url, exact  a Ray Data shuffle on the URL / text hash             (candidates.py)
    near        a shuffle on band hashes, then verification by part   (candidates.py)
    components  one Ray task over integer arrays, edges streamed      (components.py)
    output      winners per label partition, removal per input part  (decide.py)

The driver holds the plan (one entry per input part) and per-partition counts, never a
per-document value. Every output carries the fingerprint of the whole ``[dedup]`` table,
the inputs and the index plan, so a changed setting redoes the run instead of leaving
stale outputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict

from webmill.dedup.candidates import (
    EXACT_SCHEMA,
    NEAR_SCHEMA,
    URL_SCHEMA,
    Layout,
    attach_a,
    bucket_pairs,
    exact_partition,
    read_keyed,
    url_partition,
    verify_b,
    with_partition,
    with_text_partition,
)
from webmill.dedup.components import LABEL_SCHEMA, components
from webmill.dedup.config import DedupConfig
from webmill.dedup.decide import CLUSTER_SCHEMA, apply_group, apply_part, choose_winners, member_rows
from webmill.dedup.exchange import reduce_pieces
from webmill.dedup.index import BAND_SCHEMA, INDEX_BANDS, INDEX_DOC_SCHEMA, INDEX_DOCS, lsh_fingerprint, sign_part
from webmill.dedup.plan import IndexPlan
from webmill.errors import UserError
from webmill.names import check_dataset_path
from webmill.shards import CorpusRoot, DatasetWriter, Manifest, jsonfile
from webmill.shards import layout as paths

PARTITION_DOCS = 250_000  # documents per hash partition: sets the partitions from the corpus size alone
MIN_PARTITIONS = 8
PHASES = ("sign", "url", "exact", "near", "components", "output")

__all__ = ["run_dedup", "CLUSTER_SCHEMA", "INDEX_DOCS", "INDEX_BANDS"]


def partitions_for(n: int) -> int:
    """Hash partitions for n documents: independent of the cluster, so a resume on another
    cluster finds the same partitions committed."""
    return max(MIN_PARTITIONS, math.ceil(n / PARTITION_DOCS))


def run_fingerprint(cfg: DedupConfig, inputs: list[str], plan: IndexPlan) -> str:
    doc = json.dumps({"dedup": asdict(cfg), "inputs": sorted(inputs), "plan": plan.fingerprint()}, sort_keys=True)
    return hashlib.sha1(doc.encode()).hexdigest()[:16]


class _Phases:
    """Commit markers of a run's phases: ``_work/<phase>.json`` holding the run fingerprint."""

    def __init__(self, root: CorpusRoot, work: str, fp: str):
        self.root, self.work, self.fp = root, work, fp

    def done(self, phase: str) -> dict | None:
        doc = jsonfile.marker(self.root, self.work, f"{phase}.json")
        return doc if doc is not None and doc.get("fingerprint") == self.fp else None

    def start(self, phase: str, *datasets: str) -> None:
        """A phase not committed starts from nothing: what an earlier attempt with another
        fingerprint left is removed (same-fingerprint units are kept and skipped)."""
        for ds in datasets:
            if self.root.exists(ds) and not self._same_fingerprint(ds):
                self.root.delete(ds)

    def _same_fingerprint(self, ds: str) -> bool:
        units = Manifest.load(self.root, ds).units.values()
        return all(u.fingerprint == self.fp for u in units)

    def commit(self, phase: str, **stats) -> dict:
        doc = {"fingerprint": self.fp, "phase": phase, **stats}
        self.root.write_bytes_atomic(json.dumps(doc).encode(), self.work, f"{phase}.json")
        return doc


def _refuse_old_index(root: CorpusRoot) -> None:
    from webmill.dedup.plan import PLAN

    if root.exists(INDEX_DOCS, "_commits") and not root.exists(PLAN):
        raise UserError(
            f"{root.display('dedup/_index')}: an index written by an older webmill (no _plan.json); remove that folder to rebuild it"
        )


def run_dedup(root: CorpusRoot, ray, inputs: list[str], run: str, cfg: DedupConfig, *, on_progress=None) -> dict:
    from webmill.locks import folder_lock, run_lock

    for ds in inputs:
        check_dataset_path(ds, "dedup input")
    # every dedup run extends and reads the one band index (dedup/_index/, its _plan.json): two runs
    # of different names at once lost each other's plan entries and gave documents one index twice
    with folder_lock(root, paths.DEDUP_INDEX), run_lock(root, paths.DEDUP, run):
        return _run_dedup_locked(root, ray, inputs, run, cfg, on_progress=on_progress)


def _run_dedup_locked(root: CorpusRoot, ray, inputs: list[str], run: str, cfg: DedupConfig, *, on_progress=None) -> dict:
    import ray.data
    from ray.data.context import ShuffleStrategy

    # Ray Data's pull-based sort shuffle: the default hash shuffle starts aggregator actors
    # per shuffle, measured 3-7x slower here on two cores for the same partitions
    ctx = ray.data.DataContext.get_current()
    before = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        return _run_dedup(root, ray, inputs, run, cfg, on_progress=on_progress)
    finally:
        ctx.shuffle_strategy = before


def _run_dedup(root: CorpusRoot, ray, inputs: list[str], run: str, cfg: DedupConfig, *, on_progress=None) -> dict:
    from webmill.runtime import quiet_ray_data

    t0 = time.time()
    quiet_ray_data()
    _refuse_old_index(root)
    lsh = lsh_fingerprint(cfg)
    plan = IndexPlan.load(root, lsh)
    mine = plan.extend(root, inputs)
    fp = run_fingerprint(cfg, inputs, plan)
    done = Manifest.read_json(root, paths.dedup_docs(run)) if root.exists(paths.dedup_docs(run)) else None
    if done and done.get("fingerprint") == fp and done.get("summary"):
        return {**done["summary"], "skipped": True}
    job = DedupRun(root, ray, run, cfg, plan, mine, fp, on_progress)
    new_units = job.sign(lsh)
    job.start_relations(set(inputs))
    if cfg.url and job.n:
        job.url()
    if cfg.exact and job.n:
        job.exact()
    if cfg.near and job.n:
        job.near()
    comp = job.components()
    job.output(comp)
    return job.finish(comp, new_units, t0)


class DedupRun:
    """One dedup run, phase by phase (each a method, each committed through ``_Phases`` before the
    next starts). Holds the plan (one entry per input part) and per-phase counts, never a
    per-document value."""

    def __init__(self, root: CorpusRoot, ray, run: str, cfg: DedupConfig, plan: IndexPlan, mine: list, fp: str, on_progress=None):
        self.root, self.ray, self.run, self.cfg, self.plan, self.mine, self.fp = root, ray, run, cfg, plan, mine, fp
        self.on_progress = on_progress
        self.docs_ds, self.clusters_ds, self.pairs_ds = paths.dedup_docs(run), paths.dedup_clusters(run), paths.dedup_pairs(run)
        self.work = paths.dedup_work(run)
        self.phases = _Phases(root, self.work, fp)
        self.seconds: dict[str, float] = {}
        self.relations: dict[str, str] = {}
        self.pairs_checked = 0
        self.n = plan.size

    def progress(self, phase: str, info: dict) -> None:
        if self.on_progress:
            self.on_progress(phase, info)

    def sign(self, lsh: str) -> int:
        """Sign every planned part not yet in the index (a part an interrupted earlier run planned
        included); returns how many of this run's parts were new."""
        from webmill.runtime import run_tasks

        t = time.time()
        root, plan = self.root, self.plan
        committed = Manifest.load(root, INDEX_DOCS).units
        bands_committed = Manifest.load(root, INDEX_BANDS).units
        todo = [p for p in plan.parts if not (p.unit in committed and committed[p.unit].fingerprint == lsh and p.unit in bands_committed)]
        new_units = sum(1 for p in self.mine if p in todo)
        self.progress("plan", {"sign": len(todo), "output": len(self.mine), "indexed": plan.size})
        if todo:
            for result in run_tasks(sign_part, [(root, p.unit, p.dataset, p.path, p.offset, self.cfg) for p in todo]):
                self.progress("sign", result)
        if todo or not root.exists(INDEX_DOCS, "_manifest.json"):
            DatasetWriter(root, INDEX_DOCS, INDEX_DOC_SCHEMA).finalize(lsh=lsh)
            DatasetWriter(root, INDEX_BANDS, BAND_SCHEMA).finalize(lsh=lsh)
        self.seconds["sign"] = time.time() - t
        return new_units

    def start_relations(self, inputs: set[str]) -> None:
        plan = self.plan
        self.layout = Layout(plan.starts(), plan.existing_mask(inputs), [(p.dataset, p.path) for p in plan.parts], partitions_for(self.n))
        self.index_docs = Manifest.load(self.root, INDEX_DOCS)
        self.doc_paths = [self.root.path(INDEX_DOCS, p["path"]) for p in self.index_docs.parts]

    # the shuffles ------------------------------------------------------------
    def map_blocks(self, items: int) -> int:
        # Ray Data's sort shuffle makes as many output blocks as it gets input blocks, each
        # map block split for each of them: one block per part would make parts² pieces
        # (measured superlinear, and driver memory with it); one per hash partition makes
        # partitions², and a block holds about a partition's rows (PARTITION_DOCS). The
        # groupings by part (a's, b's, the output's) inherit these blocks, and map_groups
        # calls its function once per part inside a block
        return max(1, min(items, self.layout.partitions))

    def group_pointers(self, ds):
        return ds.groupby("p", num_partitions=self.layout.partitions)

    def shuffle(self, name, paths_, columns, key_fn, key_kwargs, reduce_fn, reduce_kwargs):
        """Index parts read a block of parts at a time, keyed by partition and written under the
        run; the pointers grouped by partition; each partition's rows read back and reduced."""
        import ray.data

        root = self.root
        folder = f"{self.work}/exchange/{name}"
        root.delete(folder)
        ds = ray.data.from_items([{"path": p} for p in paths_], override_num_blocks=self.map_blocks(len(paths_)))
        ds = ds.map_batches(
            read_keyed,
            batch_size=None,
            batch_format="pyarrow",
            fn_kwargs={"root": root, "columns": columns, "key_fn": key_fn, "key_kwargs": key_kwargs, "folder": folder},
        )
        return self.group_pointers(ds).map_groups(
            reduce_pieces, batch_format="pyarrow", fn_kwargs={"root": root, "folder": folder, "fn": reduce_fn, "kwargs": reduce_kwargs}
        )

    # the phases --------------------------------------------------------------
    def url(self) -> None:
        """One document per canonical URL."""
        self.relations["url"] = f"{self.work}/url"
        t = time.time()
        if not self.phases.done("url"):
            self.progress("begin", {"phase": "url"})
            self.phases.start("url", self.relations["url"])
            rows = self.shuffle(
                "url",
                self.doc_paths,
                ["idx", "url", "uh", "fetched_at", "id"],
                with_partition,
                {"key": "uh", "partitions": self.layout.partitions},
                url_partition,
                {"root": self.root, "dataset": self.relations["url"], "fp": self.fp, "layout": self.layout},
            ).sum("rows")
            DatasetWriter(self.root, self.relations["url"], URL_SCHEMA).finalize()
            self.phases.commit("url", edges=int(rows or 0))
            self.progress("url", {"edges": int(rows or 0)})
        self.seconds["url"] = time.time() - t

    def exact(self) -> None:
        """One document per normalized text."""
        self.relations["exact"] = f"{self.work}/exact"
        t = time.time()
        if not self.phases.done("exact"):
            self.progress("begin", {"phase": "exact"})
            self.phases.start("exact", self.relations["exact"])
            rows = self.shuffle(
                "exact",
                self.doc_paths,
                ["idx", "xh"],
                with_text_partition,
                {"partitions": self.layout.partitions},
                exact_partition,
                {"root": self.root, "dataset": self.relations["exact"], "fp": self.fp},
            ).sum("rows")
            DatasetWriter(self.root, self.relations["exact"], EXACT_SCHEMA).finalize()
            self.phases.commit("exact", members=int(rows or 0))
            self.progress("exact", {"members": int(rows or 0)})
        self.seconds["exact"] = time.time() - t

    def near(self) -> None:
        """LSH buckets → candidate pairs → exact Jaccard where the documents live."""
        root, cfg, layout = self.root, self.cfg, self.layout
        self.relations["near"] = self.pairs_ds if cfg.verify else f"{self.work}/near"
        t = time.time()
        marker = self.phases.done("near")
        if not marker:
            self.progress("begin", {"phase": "near"})
            self.phases.start("near", self.relations["near"])
            band_paths = [root.path(INDEX_BANDS, p["path"]) for p in Manifest.load(root, INDEX_BANDS).parts]
            # each hop's rows go through the root (exchange.py): candidate pairs by a's part,
            # then a's shingles by b's part
            pairs_dir, attached_dir = f"{self.work}/exchange/pairs", f"{self.work}/exchange/attached"
            for folder in (pairs_dir, attached_dir):
                root.delete(folder)
            cand = self.shuffle(
                "bands",
                band_paths,
                ["h", "idx"],
                with_partition,
                {"key": "h", "partitions": layout.partitions},
                bucket_pairs,
                {"root": root, "layout": layout, "folder": pairs_dir},
            )
            common = {
                "root": root,
                "layout": layout,
                "ngram": cfg.ngram,
                "dataset": self.relations["near"],
                "fp": self.fp,
                "attached": attached_dir,
            }
            attached = self.group_pointers(cand).map_groups(
                reduce_pieces,
                batch_format="pyarrow",
                fn_kwargs={"root": root, "folder": pairs_dir, "fn": attach_a, "kwargs": {**common, "verify": cfg.verify}},
            )
            if cfg.verify:
                checked = (
                    self.group_pointers(attached)
                    .map_groups(verify_b, batch_format="pyarrow", fn_kwargs={**common, "threshold": cfg.threshold})
                    .sum("checked")
                )
            else:
                attached.materialize()
                checked = 0
            DatasetWriter(root, self.relations["near"], NEAR_SCHEMA).finalize(stage="dedup.pairs")
            marker = self.phases.commit("near", checked=int(checked or 0))
            self.progress("near", marker)
        self.pairs_checked = marker["checked"]
        self.seconds["near"] = time.time() - t

    def components(self) -> dict:
        """Connected components of every relation: one task, integer arrays."""
        t = time.time()
        self.labels = f"{self.work}/labels"
        comp = self.phases.done("components")
        if not comp:
            self.progress("begin", {"phase": "components"})
            self.phases.start("components", self.labels)
            task = self.ray.remote(num_cpus=1, max_retries=2)(components)
            stats = self.ray.get(
                task.remote(self.root, self.n, self.layout.existing, self.layout.starts, self.relations, self.labels, self.fp)
            )
            DatasetWriter(self.root, self.labels, LABEL_SCHEMA).finalize()
            comp = self.phases.commit("components", **stats)
            self.progress("components", comp)
        self.seconds["components"] = time.time() - t
        return comp

    def output(self, comp: dict) -> None:
        """Winners per label partition, then the removal applied per input part."""
        import ray.data

        from webmill.runtime import run_tasks

        root, plan, layout = self.root, self.plan, self.layout
        t = time.time()
        self.progress("begin", {"phase": "output"})
        plan_parts = [{"unit": p.unit, "dataset": p.dataset, "path": p.path, "offset": p.offset} for p in plan.parts]
        label_paths = [root.path(self.labels, p["path"]) for p in Manifest.load(root, self.labels).parts]
        if label_paths and comp["labelled"]:
            items = [
                {
                    "item": json.dumps(
                        {"ordinal": p.ordinal, "offset": p.offset, "rows": p.rows, "parts": self.index_docs.units[p.unit].parts}
                    )
                }
                for p in plan.parts
            ]
            members = ray.data.from_items(items, override_num_blocks=self.map_blocks(len(items))).map_batches(
                member_rows,
                batch_size=None,
                batch_format="pyarrow",
                fn_kwargs={"root": root, "labels": label_paths, "index_docs": INDEX_DOCS, "layout": layout},
            )
            decisions = members.groupby("p", num_partitions=layout.partitions).map_groups(choose_winners, batch_format="pyarrow")
            decisions.groupby("uo", num_partitions=layout.partitions).map_groups(
                apply_group, fn_kwargs={"root": root, "run": self.run, "plan_parts": plan_parts, "fp": self.fp}, batch_format="pyarrow"
            ).materialize()
        # parts with no duplicate at all, and any part the shuffle did not reach
        if self.mine:
            for result in run_tasks(_apply_plain, [(root, self.run, p.unit, p.dataset, p.path, p.offset, self.fp) for p in self.mine]):
                self.progress("output", result)
        _drop_units_not_in(root, [self.docs_ds, self.clusters_ds], {p.unit for p in self.mine})
        self.seconds["output"] = time.time() - t

    def finish(self, comp: dict, new_units: int, t0: float) -> dict:
        """The run's summary; the outputs finalized with it; the work folder deleted."""
        root, cfg, seconds = self.root, self.cfg, self.seconds
        totals = Manifest.load(root, self.docs_ds, full=True).stats if root.exists(self.docs_ds) else {}
        dups = {k: int(totals.get(k, 0)) for k in ("url", "exact", "near")}
        summary = {
            "run": self.run,
            "documents_in": int(totals.get("documents_in", 0)),
            "kept": int(totals.get("kept", 0)),
            "duplicates": dups,
            "url_dups": dups["url"],
            "exact_dups": dups["exact"],
            "near_dups": dups["near"],
            "clusters": comp["clusters"],
            "largest_cluster": comp["largest_cluster"],
            "pairs_verified": self.pairs_checked,
            "edges": comp["edges"],
            "indexed_docs": self.n,
            "new_units": new_units,
            "partitions": self.layout.partitions,
            "seconds": round(time.time() - t0, 2),
            "seconds_by_phase": {k: round(v, 2) for k, v in seconds.items()},
            "seconds_signatures": round(seconds["sign"], 2),
            "seconds_clusters": round(sum(v for k, v in seconds.items() if k != "sign"), 2),
            "docs": self.docs_ds,
            "clusters_dataset": self.clusters_ds,
            "fingerprint": self.fp,
        }
        DatasetWriter(root, self.clusters_ds, CLUSTER_SCHEMA).finalize(stage="dedup.clusters", fingerprint=self.fp)
        if cfg.near and cfg.verify and root.exists(self.pairs_ds):
            DatasetWriter(root, self.pairs_ds, NEAR_SCHEMA).finalize(stage="dedup.pairs", fingerprint=self.fp)
        elif root.exists(self.pairs_ds):
            root.delete(self.pairs_ds)
        DatasetWriter(root, self.docs_ds, None).finalize(
            stage="dedup",
            fingerprint=self.fp,
            summary=summary,
            **{k: summary[k] for k in ("documents_in", "kept", "duplicates", "clusters", "largest_cluster")},
        )
        root.delete(self.work)
        return summary


def _apply_plain(root, run, unit, dataset, path, offset, fp) -> dict:
    """A part with no decision rows: every document its own cluster, all kept (skipped if committed)."""
    return apply_part(None, root=root, run=run, unit=unit, dataset=dataset, path=path, offset=offset, fp=fp)


def _drop_units_not_in(root: CorpusRoot, datasets: list[str], units: set[str]) -> None:
    """Units an earlier run of this name committed for inputs it no longer has."""
    for ds in datasets:
        if not root.exists(ds):
            continue
        m = Manifest.load(root, ds)
        for unit, rec in m.units.items():
            if unit not in units:
                Manifest.uncommit_unit(root, ds, unit)
                for p in rec.parts:
                    root.delete(ds, p["path"])


class DedupStage:
    """The dedup stage (``webmill.stage``): document datasets → ``dedup/<run>/docs``, ``clusters``
    and ``pairs``, against every document the root's index already holds."""

    name = "dedup"

    def __init__(self, inputs: list[str], run: str):
        self.inputs, self.run_name = inputs, run

    @classmethod
    def following(cls, chain) -> DedupStage:
        clean = chain.upstream["clean"]
        return cls([clean["docs"]], clean["run"])

    def settings(self, config) -> dict:
        return asdict(config.dedup)

    def reads(self) -> list[str]:
        return list(self.inputs)

    def writes(self, summary: dict) -> list[str]:
        return [f"{summary['docs']}/_manifest.json", f"{summary['clusters_dataset']}/_manifest.json"]

    def run(self, root: CorpusRoot, ray, config, progress) -> dict:
        from webmill.dedup.progress import DedupProgress

        tally = DedupProgress()
        return run_dedup(
            root,
            ray(),
            self.inputs,
            self.run_name,
            config.dedup,
            on_progress=lambda event, info: progress.update(tally.update(event, info)),
        )

    def brief(self, s: dict) -> str:
        return f"{s['kept']:,} kept; {s['exact_dups']:,} exact, {s['near_dups']:,} near duplicates"
