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

import json
import time

from webmill.clean.stage import CleanStage
from webmill.config import Config
from webmill.crawl.stage import CrawlStage
from webmill.dedup.stage import DedupStage
from webmill.errors import UserError
from webmill.progress import Progress
from webmill.runtime import take_task_nodes
from webmill.shards import jsonfile, layout
from webmill.shards.root import CorpusRoot
from webmill.shards.stage import ShardStage
from webmill.stage import Chain, fingerprint, is_committed
from webmill.train.stage import TokenizerStage, TrainStage

# the stages in order; each builds itself from the summaries before it (``following``)
CHAIN = (CrawlStage, CleanStage, DedupStage, ShardStage, TokenizerStage, TrainStage)
STAGES = tuple(stage.name for stage in CHAIN)
STATE = "pipeline.json"


def load_state(root: CorpusRoot) -> dict:
    if not root.exists(STATE):
        return {"stages": {}}
    return jsonfile.read(root, STATE, required={"stages": dict})


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
    def __init__(self, root: CorpusRoot, cfg: Config, ray_fn, *, say=print, crawl_spec: dict | None = None, quiet: bool = False):
        self.root, self.cfg, self.ray_fn, self.say, self.quiet = root, cfg, ray_fn, say, quiet
        self.state = load_state(root)
        self.crawl_spec = crawl_spec
        if cfg.run.crawl and not root.is_dir(layout.crawl_warcs(cfg.run.crawl)):
            raise UserError(f"[run] crawl = {cfg.run.crawl!r}: no such crawl in {root.display(layout.CRAWL)}")

    def run(self, stages: list[str]) -> dict:
        t_all = time.time()
        timings = {}
        upstream_fp = None
        for stage_cls in CHAIN:
            name = stage_cls.name
            done = self.state["stages"].get(name)
            if name not in stages:
                if STAGES.index(name) < STAGES.index(stages[0]) and done is None and not (name == "crawl" and self.cfg.run.crawl):
                    raise UserError(
                        f"--from {stages[0]}: stage {name} has no output in {self.root.display()} yet (run without --from first)"
                    )
                upstream_fp = (done or {}).get("fingerprint")
                continue
            if name == "train" and not self.cfg.run.train:
                continue
            upstream = {n: s["summary"] for n, s in self.state["stages"].items()}
            stage = stage_cls.following(Chain(self.root, self.cfg, upstream, upstream_fp, self.crawl_spec))
            fp = upstream_fp = fingerprint(name, stage.settings(self.cfg), upstream_fp)
            if done and done["fingerprint"] == fp and is_committed(self.root, stage, done["summary"]):
                self.say(f"↷ {name}: up to date ({stage.brief(done['summary'])})")
                timings[name] = 0.0
                continue
            self.say(f"▶ {name}")
            t = time.time()
            take_task_nodes()
            with Progress(quiet=self.quiet, indent="  ") as progress:
                summary = stage.run(self.root, self.ray_fn, self.cfg, progress)
            summary.setdefault("nodes", take_task_nodes())  # the Ray nodes its tasks ran on
            timings[name] = round(time.time() - t, 2)
            self.state["stages"][name] = {"fingerprint": fp, "summary": summary, "seconds": timings[name], "finished_at": time.time()}
            save_state(self.root, self.state)
            self.say(f"✓ {name}: {stage.brief(summary)} ({timings[name]:.1f}s)")
        total = round(time.time() - t_all, 2)
        return {
            "stages": {s: self.state["stages"].get(s, {}).get("summary") for s in STAGES},
            "seconds": timings,
            "total_seconds": total,
            "root": self.root.display(),
        }
