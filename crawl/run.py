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
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from webmill.crawl.catalog import Catalog
from webmill.crawl.config import CrawlConfig
from webmill.crawl.log import LOG_SCHEMA, log_rows
from webmill.crawl.spider import canonical, host_of
from webmill.crawl.worker import WorkerState, owner_of
from webmill.errors import UserError, first_line
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter, layout


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
HANDOFF = "state/handoff"


def run_worker(job: dict, root: CorpusRoot) -> dict:
    """Body of one worker task: gather its inbox and conditional-GET data, run the scrapy
    process, then commit its log unit and hand its links for other hosts on through the root."""
    import tempfile

    k, rel = job["worker"], layout.crawl(job["crawl_id"])
    inbox, bad_links = _inbox(root, rel, job["round"], k, job["workers"])
    job = {
        **job,
        "root": root.uri,
        "inbox": inbox,
        "conditional": _conditional_for(root, job.get("previous"), k, job["workers"]),
    }
    state = WorkerState(job, root)
    state.fetch_events()
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"webmill-job-{job['crawl_id']}-{k:04d}-", delete=False) as f:
        json.dump(job, f)
        job_path = f.name
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmill.crawl.worker", job_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    summary = None
    last_progress = 0.0
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "progress" in msg and time.time() - last_progress >= 2.0:
            last_progress = time.time()
            try:
                root.write_bytes_atomic(json.dumps(msg).encode(), rel, "state", f"progress-{k:04d}.json")
            except OSError:
                pass  # progress is for the user's eyes; a failed write must not fail the worker
        elif "summary" in msg:
            summary = msg["summary"]
    err = proc.stderr.read()
    os.unlink(job_path)
    if proc.wait() != 0 or summary is None:
        raise RuntimeError(f"crawl worker {k} exited with {proc.returncode}: {err[-2000:]}")
    state.publish_events()
    events = state.events()
    table = log_rows(state.open_warc, state.warc_files(), events, f"{rel}/warc", k)
    writer = DatasetWriter(root, layout.crawl_log(job["crawl_id"]), LOG_SCHEMA, row_group_rows=4096)
    counts = dict(Counter(table.column("outcome").to_pylist()))
    writer.write_unit(
        f"worker-{k:04d}",
        [table],
        fingerprint=f"round-{job['round']}",
        stats={"outcomes": counts, "bytes": int(sum(b or 0 for b in table.column("bytes").to_pylist()))},
    )
    summary["handoff_count"] = _hand_on(root, rel, job["round"], k, job["workers"], events)
    summary["handoff_bad"] = bad_links
    summary["log_counts"] = counts
    summary["node"] = _node_id()
    return summary


def _hand_on(root: CorpusRoot, rel: str, round_: int, k: int, workers: int, events: list[dict]) -> int:
    """This round's links for hosts other workers own, one file per owner:
    ``state/handoff/r<round>/to-<owner>/from-<k>.jsonl``. The owner drops the ones it has seen."""
    by_owner: dict[int, list[dict]] = {}
    for e in events:
        if e.get("kind") == "handoff" and e.get("round", round_) == round_:
            by_owner.setdefault(owner_of(host_of(e["url"]), workers), []).append(
                {"url": e["url"], "depth": e.get("depth", 0), "referrer": e.get("referrer")}
            )
    for owner, links in by_owner.items():
        body = "".join(json.dumps(x) + "\n" for x in links).encode()
        root.write_bytes_atomic(body, rel, HANDOFF, f"r{round_:04d}", f"to-{owner:04d}", f"from-{k:04d}.jsonl")
    return sum(map(len, by_owner.values()))


def _inbox(root: CorpusRoot, rel: str, round_: int, k: int, workers: int) -> tuple[list[dict], int]:
    """(the links other workers handed to worker k last round, how many lines were refused). The
    files lie in the root, where anyone who can write it can edit them: each entry is rebuilt from
    what ``handoff_entry`` accepts, never taken as written."""
    if round_ == 0:
        return [], 0
    folder = (rel, HANDOFF, f"r{round_ - 1:04d}", f"to-{k:04d}")
    out: list[dict] = []
    bad = 0
    for name in root.listdir(*folder):
        if name.endswith(".jsonl"):
            for line in root.read_bytes(*folder, name).splitlines():
                if line.strip():
                    entry = handoff_entry(line, k, workers)
                    if entry is None:
                        bad += 1
                    else:
                        out.append(entry)
    return out, bad


MAX_URL = 4096


def handoff_entry(line: bytes, k: int, workers: int) -> dict | None:
    """One handoff line as the link it names, or None where it is not one worker k should crawl: not
    JSON, a URL that is not http(s), a host another worker owns (one owner per host keeps a
    host's politeness in one place), a depth that is not a count (a negative one would lift
    max_depth), a referrer that is not a URL."""
    try:
        e = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(e, dict):
        return None
    url, depth, referrer = e.get("url"), e.get("depth", 0), e.get("referrer")
    if not isinstance(url, str) or len(url) > MAX_URL or not url.lower().startswith(("http://", "https://")):
        return None
    try:
        host = host_of(url)
    except ValueError:  # urlsplit refuses some netlocs (an unclosed IPv6 bracket)
        return None
    if not host or owner_of(host, workers) != k:
        return None
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 1_000_000:
        return None
    if referrer is not None and (
        not isinstance(referrer, str) or len(referrer) > MAX_URL or not referrer.lower().startswith(("http://", "https://"))
    ):
        return None
    try:
        url = canonical(url)
    except ValueError:
        return None
    return {"url": url, "depth": depth, "referrer": referrer}


def _conditional_for(root: CorpusRoot, previous: dict | None, k: int, workers: int) -> dict:
    """URL → ETag / Last-Modified / stored copy, for the hosts worker k owns, from the previous
    finished crawl's log. With the same worker count only worker k's own unit is read."""
    if not previous:
        return {}
    from webmill.shards import Manifest

    dataset = layout.crawl_log(previous["id"])
    manifest = Manifest.load(root, dataset)
    unit = manifest.units.get(f"worker-{k:04d}") if previous.get("workers") == workers else None
    parts = unit.parts if unit is not None else None
    reader = DatasetReader(root, dataset)
    out = {}
    cols = ["url", "outcome", "etag", "last_modified", "warc_file", "warc_offset"]
    for batch in reader.iter_batches(columns=cols, parts=parts):
        for r in batch.to_pylist():
            if r["outcome"] == "stored" and (r["etag"] or r["last_modified"]) and owner_of(host_of(r["url"]), workers) == k:
                out[r["url"]] = {"etag": r["etag"], "last_modified": r["last_modified"], "warc": r["warc_file"], "offset": r["warc_offset"]}
    return out


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


# ---------------------------------------------------------------- the driver
def run_crawl(root: CorpusRoot, ray, crawl_id: str, spec: dict, *, catalog: Catalog | None = None, on_progress=None) -> dict:
    """Run (or resume) crawl ``crawl_id`` to the end; returns its summary.

    The driver holds no per-URL state: each round's links travel between workers through
    the root, and each worker reads its own share of the previous crawl's log."""
    from webmill.locks import run_lock

    with run_lock(root, layout.CRAWL, crawl_id):
        return _run_crawl_locked(root, ray, crawl_id, spec, catalog=catalog, on_progress=on_progress)


def _run_crawl_locked(root: CorpusRoot, ray, crawl_id: str, spec: dict, *, catalog: Catalog | None = None, on_progress=None) -> dict:
    rel = layout.crawl(crawl_id)
    root.write_bytes_atomic(json.dumps(spec, indent=1).encode(), rel, "spec.json")
    workers = spec["workers"]
    hosts = allowed_hosts(spec)
    page_budget = -(-spec["max_pages"] // workers) if spec["max_pages"] else 0

    task = ray.remote(max_retries=3, retry_exceptions=True)(run_worker)
    base = {
        "crawl_id": crawl_id,
        "spec": spec,
        "workers": workers,
        "allowed_hosts": hosts,
        "page_budget": page_budget,
        "previous": _previous(root, catalog, spec, crawl_id),
    }
    seeds_by_worker: dict[int, list[dict]] = {k: [] for k in range(workers)}
    for s in spec["seeds"]:
        seeds_by_worker[owner_of(host_of(s), workers)].append({"url": s, "depth": 0, "referrer": None})

    t0 = time.time()
    round_ = 0
    summaries: list[dict] = []
    last_progress = 0.0
    while True:
        refs = [
            task.remote({**base, "worker": k, "round": round_, "seeds": seeds_by_worker[k] if round_ == 0 else []}, root)
            for k in range(workers)
        ]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, timeout=1.0)
            if time.time() - last_progress < 2.0 and pending:
                continue
            last_progress = time.time()
            if on_progress:
                on_progress(_progress(root, rel, workers), time.time() - t0)
            if catalog is not None and catalog.job(crawl_id)["state"] == "cancelled":
                for r in refs:
                    ray.cancel(r, force=True)
                raise CrawlCancelled(crawl_id)
        results = ray.get(refs)
        summaries.extend(results)
        round_ += 1
        if not sum(r["handoff_count"] for r in results):
            break

    manifest = DatasetWriter(root, layout.crawl_log(crawl_id), LOG_SCHEMA).finalize(crawl_id=crawl_id, rounds=round_)
    reader = DatasetReader(root, layout.crawl_log(crawl_id))
    outcomes = dict(Counter(reader.read_all(columns=["outcome"]).column("outcome").to_pylist()))
    warcs = [p for p in root.listdir(rel, "warc") if p.endswith(".warc.gz")]
    return {
        "crawl_id": crawl_id,
        "outcomes": outcomes,
        "pages_stored": outcomes.get("stored", 0),
        "urls_attempted": manifest["rows"],
        "bytes": manifest["stats"].get("bytes", 0),
        "rounds": round_,
        "workers": workers,
        "seconds": round(time.time() - t0, 2),
        "warc_files": [f"{rel}/warc/{w}" for w in warcs],
        "log": layout.crawl_log(crawl_id),
        "repaired": [r for s in summaries for r in s.get("repaired", [])],
        "nodes": sorted({s["node"] for s in summaries if s.get("node")}),
        "handoff_refused": sum(s.get("handoff_bad", 0) for s in summaries),
    }


class CrawlCancelled(Exception):
    pass


class NotClaimed(Exception):
    """The job left the state it was to be started from (cancelled, or taken by another scheduler)."""


def run_catalogued(
    root: CorpusRoot, ray, crawl_id: str, spec: dict, catalog: Catalog, *, on_progress=None, claim_from: tuple[str, ...] | None = None
) -> dict:
    """``run_crawl`` with the catalog job's state kept: running, then done, cancelled or failed.
    With ``claim_from`` the job starts only if it is still in one of those states (an atomic
    claim); else NotClaimed."""
    if claim_from is not None:
        if not catalog.claim(crawl_id, claim_from):
            raise NotClaimed(crawl_id)
    else:
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


def _progress(root: CorpusRoot, rel: str, workers: int) -> dict:
    total: dict = {}
    nbytes = 0
    for k in range(workers):
        try:
            msg = json.loads(root.read_bytes(rel, "state", f"progress-{k:04d}.json"))
        except (OSError, ValueError):
            continue
        for o, n in msg["progress"].items():
            total[o] = total.get(o, 0) + n
        nbytes += msg.get("bytes", 0)
    return {"counts": total, "bytes": nbytes}


def _previous(root: CorpusRoot, catalog: Catalog | None, spec: dict, crawl_id: str) -> dict | None:
    """The last finished crawl of the same seeds (its id and worker count), whose log workers read."""
    if catalog is None:
        return None
    prev = catalog.previous_done(spec, crawl_id)
    if prev is None or not root.exists(layout.crawl_log(prev["id"])):
        return None
    return {"id": prev["id"], "workers": prev["spec"].get("workers")}
