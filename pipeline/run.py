"""crawl → clean → dedup → shard → tokenizer → train, each stage skipped when its
committed output was made from the same input and config.

A stage's fingerprint is a hash of its config table and the fingerprint of the
stage before it, so a change anywhere redoes that stage and the ones after it.
``<root>/pipeline.json`` records, per stage, the fingerprint its output was
made with and its summary; it is written only after a stage finishes. Stages
are themselves resumable (crawl workers from their WARCs, clean per WARC unit,
shards per bucket, training from its checkpoints), so a rerun after a crash
continues the interrupted stage instead of starting it over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

from webmill.config import Config
from webmill.errors import UserError
from webmill.runtime import take_task_nodes
from webmill.shards import layout
from webmill.shards.root import CorpusRoot

STAGES = ("crawl", "clean", "dedup", "shard", "tokenizer", "train")
STATE = "pipeline.json"


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_state(root: CorpusRoot) -> dict:
    if not root.exists(STATE):
        return {"stages": {}}
    try:
        return json.loads(root.read_bytes(STATE))
    except ValueError as e:
        raise UserError(f"{root.display(STATE)}: corrupt pipeline state ({e})") from None


def save_state(root: CorpusRoot, state: dict) -> None:
    root.write_bytes_atomic(json.dumps(state, indent=1, sort_keys=True, default=str).encode(), STATE)


def select(first: str | None, last: str | None) -> list[str]:
    for name in (first, last):
        if name and name not in STAGES:
            raise UserError(f"unknown stage {name!r} (stages: {', '.join(STAGES)})")
    i = STAGES.index(first) if first else 0
    j = STAGES.index(last) if last else len(STAGES) - 1
    if i > j:
        raise UserError(f"--from {first} comes after --to {last}")
    return list(STAGES[i : j + 1])


class Pipeline:
    def __init__(self, root: CorpusRoot, cfg: Config, ray_fn, *, say=print, crawl_spec: dict | None = None):
        self.root, self.cfg, self.ray_fn, self.say = root, cfg, ray_fn, say
        self._live_at = 0.0
        self.state = load_state(root)
        self.crawl_spec = crawl_spec
        self.crawl_id = cfg.run.crawl or None
        if self.crawl_id and not root.is_dir(layout.crawl_warcs(self.crawl_id)):
            raise UserError(f"[run] crawl = {self.crawl_id!r}: no such crawl in {root.display(layout.CRAWL)}")

    def _fp(self, stage: str) -> str:
        prev = STAGES[STAGES.index(stage) - 1] if stage != "crawl" else None
        upstream = self.state["stages"].get(prev, {}).get("fingerprint") if prev else None
        table = {
            "crawl": self.crawl_spec or {"existing": self.crawl_id},
            "clean": dataclasses.asdict(self.cfg.clean),
            "dedup": dataclasses.asdict(self.cfg.dedup),
            "shard": dataclasses.asdict(self.cfg.shards),
            "tokenizer": {k: getattr(self.cfg.train, k) for k in ("vocab_size", "tokenizer_max_chars", "tokenizer_doc_cap")},
            "train": dataclasses.asdict(self.cfg.train),
        }[stage]
        return _hash(stage, table, upstream)

    def run(self, stages: list[str]) -> dict:
        t_all = time.time()
        timings = {}
        for stage in STAGES:
            if stage not in stages:
                if STAGES.index(stage) < STAGES.index(stages[0]) and stage not in self.state["stages"]:
                    if not (stage == "crawl" and self.crawl_id):
                        raise UserError(
                            f"--from {stages[0]}: stage {stage} has no output in {self.root.display()} yet (run without --from first)"
                        )
                continue
            if stage == "train" and not self.cfg.run.train:
                continue
            fp = self._fp(stage)
            done = self.state["stages"].get(stage)
            if done and done["fingerprint"] == fp and self._output_exists(stage, done["summary"]):
                self.say(f"↷ {stage}: up to date ({_brief(stage, done['summary'])})")
                timings[stage] = 0.0
                continue
            self.say(f"▶ {stage}")
            t = time.time()
            take_task_nodes()
            summary = getattr(self, f"_{stage}")()
            summary.setdefault("nodes", take_task_nodes())  # the Ray nodes its tasks ran on
            timings[stage] = round(time.time() - t, 2)
            self.state["stages"][stage] = {"fingerprint": fp, "summary": summary, "seconds": timings[stage], "finished_at": time.time()}
            save_state(self.root, self.state)
            self.say(f"✓ {stage}: {_brief(stage, summary)} ({timings[stage]:.1f}s)")
        total = round(time.time() - t_all, 2)
        return {
            "stages": {s: self.state["stages"].get(s, {}).get("summary") for s in STAGES},
            "seconds": timings,
            "total_seconds": total,
            "root": self.root.display(),
        }

    def _output_exists(self, stage: str, s: dict) -> bool:
        r = self.root
        return {
            "crawl": lambda: r.exists(layout.crawl_log(s["crawl_id"]), "_manifest.json"),
            "clean": lambda: r.exists(s["docs"], "_manifest.json"),
            "dedup": lambda: r.exists(s["docs"], "_manifest.json"),
            "shard": lambda: r.exists(layout.shard_manifest(s["name"])),
            "tokenizer": lambda: r.exists(layout.tokenizer(s["shards"]), "tokenizer.json"),
            "train": lambda: bool(s.get("final")) and r.exists(layout.run(s["name"]), "final", "training.json"),
        }[stage]()

    def _live(self, text: str) -> None:
        """A stage's running count: redrawn in place on a terminal, every 5 s in a log."""
        import sys

        now = time.time()
        if sys.stderr.isatty():
            print(f"\r  {text}\033[K", end="", file=sys.stderr, flush=True)
        elif now - self._live_at >= 5:
            self._live_at = now
            self.say(f"  {text}")

    def _end_live(self) -> None:
        import sys

        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    def _upstream(self, stage: str) -> dict:
        return self.state["stages"][stage]["summary"]

    # stages ------------------------------------------------------------------
    def _crawl(self) -> dict:
        from webmill.crawl.catalog import Catalog
        from webmill.crawl.run import run_catalogued

        if self.crawl_id:
            return {"crawl_id": self.crawl_id, "existing": True, "pages_stored": None}
        if not self.crawl_spec or not self.crawl_spec.get("seeds"):
            raise UserError("[crawl] seeds is empty: nothing to crawl (or set [run] crawl to an existing crawl id)")
        crawl_id = "run-" + self._fp("crawl")[:12]
        catalog = Catalog.open(self.root)
        try:
            catalog.job(crawl_id)
        except UserError:
            catalog.add_job(crawl_id, self.crawl_spec, state="running")

        def progress(p: dict, elapsed: float) -> None:
            stored = p["counts"].get("stored", 0)
            self._live(f"crawl: {stored:,} pages stored, {stored / max(elapsed, 1e-9):.1f} pages/s, {p['bytes'] / 1e6:.1f} MB")

        try:
            return run_catalogued(self.root, self.ray_fn(), crawl_id, self.crawl_spec, catalog, on_progress=progress)
        finally:
            self._end_live()

    def _crawl_id(self) -> str:
        return self.crawl_id or self._upstream("crawl")["crawl_id"]

    def _clean(self) -> dict:
        from webmill.clean.stage import run_clean
        from webmill.clean.warcs import crawl_inputs

        cid = self._crawl_id()

        def progress(results: list, total: int, elapsed: float) -> None:
            docs = sum(r["documents_in"] for r in results)
            self._live(f"clean: {len(results)}/{total} WARC units, {docs:,} documents, {docs / max(elapsed, 1e-9):.1f} docs/s")

        summary = run_clean(self.root, self.ray_fn(), crawl_inputs(self.root, cid), cid, self.cfg.clean, on_progress=progress)
        self._end_live()
        return summary

    def _dedup(self) -> dict:
        from webmill.dedup.progress import DedupProgress
        from webmill.dedup.stage import run_dedup

        clean = self._upstream("clean")
        tally = DedupProgress()
        try:
            return run_dedup(
                self.root,
                self.ray_fn(),
                [clean["docs"]],
                clean["run"],
                self.cfg.dedup,
                on_progress=lambda event, info: self._live(tally.update(event, info)),
            )
        finally:
            self._end_live()

    def _shard(self) -> dict:
        from webmill.shards.training import build_shards

        m = build_shards(self.root, self.cfg.shards, ray_fn=self.ray_fn)
        return {
            "name": m["name"],
            "fingerprint": m["fingerprint"],
            **{f"{k}_docs": v["rows"] for k, v in m["splits"].items()},
            **{f"{k}_chars": v["chars"] for k, v in m["splits"].items()},
        }

    def _tokenizer(self) -> dict:
        from webmill.train.tokenizer import train_for_shards

        c = self.cfg.train
        return train_for_shards(
            self.root,
            self._upstream("shard")["name"],
            vocab_size=c.vocab_size,
            max_chars=c.tokenizer_max_chars,
            doc_cap=c.tokenizer_doc_cap,
            ray_fn=self.ray_fn,
        )

    def _train(self) -> dict:
        from webmill.train.launch import run_training
        from webmill.train.plan import RUNS, make_plan, resume_plan

        shards = self._upstream("shard")["name"]
        name = f"{shards}-{self._fp('train')[:8]}"
        if self.root.exists(RUNS, name, "plan.json"):
            plan = resume_plan(self.root, name, self.cfg.train)
        else:
            plan = make_plan(self.root, self.cfg.train, shards=shards, name=name)
        return run_training(plan, ray_fn=self.ray_fn)


def _brief(stage: str, s: dict) -> str:
    if stage == "crawl":
        return f"crawl {s['crawl_id']}" + ("" if s.get("existing") else f": {s['pages_stored']:,} pages stored")
    if stage == "clean":
        return f"{s['kept']:,} of {s['documents_in']:,} documents kept"
    if stage == "dedup":
        return f"{s['kept']:,} kept; {s['exact_dups']:,} exact, {s['near_dups']:,} near duplicates"
    if stage == "shard":
        return f"{s['name']}: {s['train_docs']:,} train / {s['val_docs']:,} val documents"
    if stage == "tokenizer":
        return f"{s['vocab_size']:,} tokens, {s['chars_per_token']:.2f} chars/token"
    if stage == "train":
        val = s.get("val_loss")
        return f"{s['name']}: step {s['step']}, val loss {val:.3f}" if val is not None else f"{s['name']}: step {s['step']}"
    return ""
