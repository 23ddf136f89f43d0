"""Run a crawl on Ray: hosts split over N worker tasks, in rounds, resumable.

Each host belongs to exactly one worker (crc32 of the host mod N), so per-host
politeness holds across a cluster. A worker hands links to hosts it does not own
to the driver, which routes them to their owners in the next round; the crawl
ends when a round hands nothing new on. Every worker task runs scrapy in its own
process; Ray retries a task that dies, and the retry resumes from what the
worker wrote.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from webmill.crawl.catalog import Catalog
from webmill.crawl.config import CrawlConfig
from webmill.crawl.log import LOG_SCHEMA, log_rows
from webmill.crawl.spider import canonical, host_of
from webmill.crawl.worker import WorkerState, owner_of
from webmill.errors import UserError, first_line
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter


# ---------------------------------------------------------------- the spec
def resolve_seeds(cfg: CrawlConfig, base_dir: str | None = None) -> list[str]:
    """Seeds as canonical URLs; a seed may be a URL or a file with one URL a line."""
    out: list[str] = []
    for seed in cfg.seeds:
        s = seed.strip()
        if s.lower().startswith(("http://", "https://")):
            out.append(_check_url(s))
            continue
        path = Path(base_dir or ".", s) if not os.path.isabs(s) else Path(s)
        if path.is_file():
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(_check_url(line, where=str(path)))
            continue
        raise UserError(f"seed {s!r}: not an http(s) URL, nor a file of URLs")
    if not out:
        raise UserError("crawl: no seeds ([crawl] seeds is empty)")
    return out


def _check_url(url: str, where: str | None = None) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"seed {url!r}{' in ' + where if where else ''}: not an http(s) URL")
    return canonical(url)


def spec_dict(cfg: CrawlConfig, base_dir: str | None = None) -> dict:
    spec = dataclasses.asdict(cfg)
    spec["seeds"] = resolve_seeds(cfg, base_dir)
    return spec


def allowed_hosts(spec: dict) -> list[str]:
    hosts = {h.lower() for h in spec["allowed_domains"]}
    return sorted(hosts or {host_of(s) for s in spec["seeds"]})


# ---------------------------------------------------------------- the task
def crawl_dir_of(root: CorpusRoot, crawl_id: str) -> str:
    local = root.local_path("crawl", crawl_id)
    if local is None:
        raise UserError(f"corpus root {root.uri}: crawls write WARC files to a local root; "
                        "crawl to a local root and copy it, or run clean on --warc URIs")
    return local


def run_worker(job: dict, root: CorpusRoot) -> dict:
    """Body of one worker task: run the scrapy process, then commit its log unit."""
    crawl_dir = job["crawl_dir"]
    os.makedirs(os.path.join(crawl_dir, "state"), exist_ok=True)
    job_path = os.path.join(crawl_dir, "state", f"job-{job['worker']:04d}-r{job['round']}.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    progress_path = os.path.join(crawl_dir, "state", f"progress-{job['worker']:04d}.json")
    proc = subprocess.Popen([sys.executable, "-m", "webmill.crawl.worker", job_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summary = None
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "progress" in msg:
            tmp = progress_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(msg, f)
            os.replace(tmp, progress_path)
        elif "summary" in msg:
            summary = msg["summary"]
    err = proc.stderr.read()
    if proc.wait() != 0 or summary is None:
        raise RuntimeError(f"crawl worker {job['worker']} exited with {proc.returncode}: {err[-2000:]}")
    state = WorkerState(job)
    events = state.events()
    table = log_rows(state.warc_dir, state.warc_files(), events, f"crawl/{job['crawl_id']}/warc", job["worker"])
    writer = DatasetWriter(root, f"crawl/{job['crawl_id']}/log", LOG_SCHEMA, row_group_rows=4096)
    counts = dict(Counter(table.column("outcome").to_pylist()))
    writer.write_unit(f"worker-{job['worker']:04d}", [table], fingerprint=f"round-{job['round']}",
                      stats={"outcomes": counts, "bytes": int(sum(b or 0 for b in table.column("bytes").to_pylist()))})
    summary["handoffs"] = [e for e in events if e.get("kind") == "handoff"]
    summary["log_counts"] = counts
    return summary


# ---------------------------------------------------------------- the driver
def run_crawl(root: CorpusRoot, ray, crawl_id: str, spec: dict, *, catalog: Catalog | None = None,
              on_progress=None) -> dict:
    """Run (or resume) crawl ``crawl_id`` to the end; returns its summary."""
    crawl_dir = crawl_dir_of(root, crawl_id)
    os.makedirs(crawl_dir, exist_ok=True)
    spec_path = os.path.join(crawl_dir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    workers = spec["workers"]
    hosts = allowed_hosts(spec)
    conditional = _conditional_map(root, catalog, spec, crawl_id)
    page_budget = -(-spec["max_pages"] // workers) if spec["max_pages"] else 0

    task = ray.remote(max_retries=3, retry_exceptions=True)(run_worker)
    base = {"crawl_id": crawl_id, "crawl_dir": crawl_dir, "spec": spec, "workers": workers,
            "allowed_hosts": hosts, "page_budget": page_budget, "conditional": conditional}
    seeds_by_worker: dict[int, list[dict]] = {k: [] for k in range(workers)}
    for s in spec["seeds"]:
        seeds_by_worker[owner_of(host_of(s), workers)].append({"url": s, "depth": 0, "referrer": None})

    t0 = time.time()
    routed: set[str] = set()
    inbox: dict[int, list[dict]] = {k: [] for k in range(workers)}
    round_ = 0
    summaries: list[dict] = []
    while True:
        refs = [task.remote({**base, "worker": k, "round": round_, "seeds": seeds_by_worker[k] if round_ == 0 else [],
                             "inbox": inbox[k]}, root) for k in range(workers)]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, timeout=1.0)
            if on_progress:
                on_progress(_progress(crawl_dir, workers), time.time() - t0)
            if catalog is not None and catalog.job(crawl_id)["state"] == "cancelled":
                for r in refs:
                    ray.cancel(r, force=True)
                raise CrawlCancelled(crawl_id)
        results = ray.get(refs)
        summaries.extend(results)
        inbox = {k: [] for k in range(workers)}
        new = 0
        for res in results:
            for h in res["handoffs"]:
                if h["url"] not in routed:
                    routed.add(h["url"])
                    inbox[owner_of(host_of(h["url"]), workers)].append(h)
                    new += 1
        round_ += 1
        if not new:
            break

    manifest = DatasetWriter(root, f"crawl/{crawl_id}/log", LOG_SCHEMA).finalize(crawl_id=crawl_id, rounds=round_)
    reader = DatasetReader(root, f"crawl/{crawl_id}/log")
    outcomes = dict(Counter(reader.read_all(columns=["outcome"]).column("outcome").to_pylist()))
    warcs = sorted(p for p in os.listdir(os.path.join(crawl_dir, "warc")) if p.endswith(".warc.gz"))
    return {
        "crawl_id": crawl_id,
        "outcomes": outcomes,
        "pages_stored": outcomes.get("stored", 0),
        "urls_attempted": manifest["rows"],
        "bytes": manifest["stats"].get("bytes", 0),
        "rounds": round_,
        "workers": workers,
        "seconds": round(time.time() - t0, 2),
        "warc_files": [f"crawl/{crawl_id}/warc/{w}" for w in warcs],
        "log": f"crawl/{crawl_id}/log",
        "repaired": [r for s in summaries for r in s.get("repaired", [])],
    }


class CrawlCancelled(Exception):
    pass


def run_catalogued(root: CorpusRoot, ray, crawl_id: str, spec: dict, catalog: Catalog, *, on_progress=None) -> dict:
    """``run_crawl`` with the catalog job's state kept: running, then done, cancelled or failed."""
    catalog.set_state(crawl_id, "running", started=time.time())
    try:
        summary = run_crawl(root, ray, crawl_id, spec, catalog=catalog, on_progress=on_progress)
    except CrawlCancelled:
        catalog.set_state(crawl_id, "cancelled", ended=time.time())
        raise
    except BaseException as e:
        catalog.set_state(crawl_id, "failed", ended=time.time(), error=first_line(e)[:500])
        raise
    catalog.set_state(crawl_id, "done", ended=time.time(), counts=summary["outcomes"])
    return summary


def _progress(crawl_dir: str, workers: int) -> dict:
    total: dict = {}
    nbytes = 0
    for k in range(workers):
        try:
            with open(os.path.join(crawl_dir, "state", f"progress-{k:04d}.json")) as f:
                msg = json.load(f)
        except (OSError, ValueError):
            continue
        for o, n in msg["progress"].items():
            total[o] = total.get(o, 0) + n
        nbytes += msg.get("bytes", 0)
    return {"counts": total, "bytes": nbytes}


def _conditional_map(root: CorpusRoot, catalog: Catalog | None, spec: dict, crawl_id: str) -> dict:
    """URL → ETag / Last-Modified / stored copy from the last finished crawl of the same seeds."""
    if catalog is None:
        return {}
    prev = catalog.previous_done(spec, crawl_id)
    if prev is None or not root.exists("crawl", prev["id"], "log"):
        return {}
    table = DatasetReader(root, f"crawl/{prev['id']}/log").read_all(
        columns=["url", "outcome", "etag", "last_modified", "warc_file", "warc_offset"])
    out = {}
    for r in table.to_pylist():
        if r["outcome"] == "stored" and (r["etag"] or r["last_modified"]):
            out[r["url"]] = {"etag": r["etag"], "last_modified": r["last_modified"],
                             "warc": root.path(r["warc_file"]), "offset": r["warc_offset"]}
    return out
