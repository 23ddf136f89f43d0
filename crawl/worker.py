"""One crawl worker: a scrapy process that crawls the hosts it owns.

Run as ``python -m webmill.crawl.worker JOB.json`` (Twisted's reactor cannot be
restarted, so every worker gets its own process). The worker's durable state is
what it wrote: its WARC files (pages stored) and its event file (every other
outcome, and links handed to the workers that own other hosts). Started again
after a crash, it repairs a torn WARC, rebuilds its frontier from the stored
pages, and fetches nothing twice.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from urllib.parse import urljoin

from webmill.crawl.spider import canonical, host_of
from webmill.crawl.warc import OPEN_SUFFIX, RollingWarcWriter, iter_responses, repair
from webmill.shards import layout


def owner_of(host: str, workers: int) -> int:
    return zlib.crc32(host.encode()) % workers


def spool_dir(crawl_id: str) -> str:
    """Where a worker on this node writes before its files reach an object-store root."""
    return os.path.join(tempfile.gettempdir(), "webmill-spool", crawl_id)


class WorkerState:
    """Paths and recovered state of worker k of a crawl.

    The worker writes into a local folder: the crawl's own folder on a local root, or a
    spool in the node's temp dir on an object-store root. What is committed lives in the
    root: a WARC file once it is closed (``publish`` uploads it and drops the spooled copy),
    the event file when the worker ends. A retry on another node starts from the root.
    """

    def __init__(self, job: dict, root=None):
        self.job = job
        self.k = job["worker"]
        self.root = root if root is not None else open_root(job["root"])
        self.rel = layout.crawl(job["crawl_id"])
        self.local = self.root.is_local
        self.crawl_dir = self.root.local_path(self.rel) if self.local else spool_dir(job["crawl_id"])
        self.warc_dir = os.path.join(self.crawl_dir, "warc")
        self.events_name = f"worker-{self.k:04d}.jsonl"
        self.events_path = os.path.join(self.crawl_dir, "state", self.events_name)
        self.prefix = f"{job['crawl_id']}-w{self.k:04d}"
        os.makedirs(os.path.dirname(self.events_path), exist_ok=True)
        os.makedirs(self.warc_dir, exist_ok=True)

    # the root's copy -----------------------------------------------------
    def fetch_events(self) -> None:
        """On an object-store root, start from the root's event file unless this node's spool
        extends it (an attempt that died here, after the last one that published). A spool an
        attempt on another node has since overtaken is dropped, its half-written WARC too, so
        no page is stored twice."""
        if self.local:
            return
        published = (
            self.root.read_bytes(self.rel, "state", self.events_name) if self.root.exists(self.rel, "state", self.events_name) else b""
        )
        if os.path.exists(self.events_path):
            with open(self.events_path, "rb") as f:
                if f.read().startswith(published):
                    return
        for name in os.listdir(self.warc_dir):
            if name.startswith(self.prefix):
                os.remove(os.path.join(self.warc_dir, name))
        with open(self.events_path, "wb") as f:
            f.write(published)

    def publish_events(self) -> None:
        if not self.local and os.path.exists(self.events_path):
            with open(self.events_path, "rb") as f:
                self.root.write_bytes_atomic(f.read(), self.rel, "state", self.events_name)

    def publish(self, name: str, path: str) -> None:
        """A closed WARC file into the root (a no-op where the root is this folder)."""
        if self.local:
            return
        dest = self.root.path(self.rel, "warc", name)
        with open(path, "rb") as src, self.root.fs.open_output_stream(dest, compression=None) as out:
            while chunk := src.read(8 << 20):
                out.write(chunk)
        os.remove(path)

    def repair_open_warcs(self) -> list[dict]:
        fixed = []
        for name in sorted(os.listdir(self.warc_dir)):
            if name.startswith(self.prefix) and name.endswith(OPEN_SUFFIX):
                kept, cut = repair(os.path.join(self.warc_dir, name))
                fixed.append({"file": name, "records_kept": kept, "bytes_cut": cut})
        for name in sorted(os.listdir(self.warc_dir)):  # closed but not yet uploaded when the worker died
            if not self.local and name.startswith(self.prefix) and name.endswith(".warc.gz"):
                self.publish(name, os.path.join(self.warc_dir, name))
        return fixed

    def warc_files(self) -> list[str]:
        return [n for n in self.root.listdir(self.rel, "warc") if n.startswith(self.prefix) and n.endswith(".warc.gz")]

    def open_warc(self, name: str):
        return self.root.fs.open_input_stream(self.root.path(self.rel, "warc", name), compression=None)

    def events(self) -> list[dict]:
        out = []
        if os.path.exists(self.events_path):
            with open(self.events_path, "rb") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # the torn last line of a killed worker
        return out


def open_root(uri: str):
    from webmill.shards import CorpusRoot

    return CorpusRoot.open(uri, create=False, writable=False)


def recover(state: WorkerState, with_links: bool):
    """(seen urls, stored count per host, frontier of links from stored pages)."""
    seen: set[str] = set()
    stored: dict[str, int] = {}
    frontier: list[dict] = []
    for name in state.warc_files():
        for record, body, _, _ in iter_responses(state.open_warc(name)):
            h = record.rec_headers
            url = h.get_header("WARC-Webmill-Requested-URI") or h.get_header("WARC-Target-URI")
            seen.add(url)
            seen.add(canonical(h.get_header("WARC-Target-URI")))
            stored[host_of(url)] = stored.get(host_of(url), 0) + 1
            if with_links:
                depth = int(h.get_header("WARC-Webmill-Depth") or 0)
                frontier.extend(
                    {"url": link, "depth": depth + 1, "referrer": url} for link in _links(h.get_header("WARC-Target-URI"), body)
                )
    for ev in state.events():
        if ev.get("url"):
            seen.add(ev["url"])
    return seen, stored, frontier


def _links(base: str, body: bytes) -> list[str]:
    import lxml.html

    try:
        tree = lxml.html.fromstring(body)
    except Exception:
        return []
    return [urljoin(base, href.strip()) for href in tree.xpath("//a/@href")]


def scrapy_settings(spec: dict) -> dict:
    s = {
        "ROBOTSTXT_OBEY": spec["obey_robots"],
        "USER_AGENT": spec["user_agent"],
        "CONCURRENT_REQUESTS": spec["concurrency"],
        "CONCURRENT_REQUESTS_PER_DOMAIN": spec["concurrency_per_host"],
        "DOWNLOAD_DELAY": spec["download_delay"],
        "AUTOTHROTTLE_ENABLED": spec["autothrottle"],
        "DEPTH_LIMIT": spec["max_depth"] + 1,
        "DOWNLOAD_MAXSIZE": spec["max_response_bytes"],
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": spec["timeout"],
        "RETRY_ENABLED": spec["retries"] > 0,
        "RETRY_TIMES": spec["retries"],
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": spec["max_redirects"],
        "HTTPERROR_ALLOW_ALL": True,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # no control endpoint, and no job files under the user's HOME
        "LOG_LEVEL": "ERROR",
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
        "WEBMILL_ALLOW_PRIVATE_NETWORKS": spec["allow_private_networks"],
        "WEBMILL_PRIVATE_HOSTS": spec.get("private_hosts") or [],
        "DOWNLOADER_MIDDLEWARES": {
            "webmill.crawl.safety.NetworkGuardMiddleware": 50,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "webmill.crawl.middlewares.BackoffRetryMiddleware": 550,
            "webmill.crawl.middlewares.BackoffDelayMiddleware": 560,
        },
    }
    if not spec["allow_private_networks"]:
        from webmill.crawl.safety import resolver_setting

        s[resolver_setting()] = "webmill.crawl.safety.PublicOnlyResolver"
    return s


class Recorder:
    """Writes stored pages to WARC and every other outcome to the event file."""

    def __init__(self, state: WorkerState, spec: dict):
        self.state = state
        self.warc = RollingWarcWriter(
            state.warc_dir, state.prefix, spec["warc_max_bytes"], on_close=state.publish, taken=state.warc_files()
        )
        self.round = state.job["round"]
        self.events = open(state.events_path, "ab")
        self.counts: dict[str, int] = {}
        self.progress_every = 2.0
        self._last = time.time()
        self._bytes = 0

    def __call__(self, item: dict) -> None:
        kind = item.pop("kind")
        if kind == "stored":
            response = item.pop("response")
            headers = item.pop("headers")
            req = response.request
            req_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, vs in req.headers.items() for v in vs]
            extra = {
                "WARC-Webmill-Requested-URI": item["url"],
                "WARC-Webmill-Depth": str(item["depth"]),
                # as Common Crawl records it; readers (datatrove's among them) select HTML by it
                "WARC-Identified-Payload-Type": (item.get("content_type") or "").split(";")[0].strip().lower(),
            }
            if item.get("referrer"):
                extra["WARC-Webmill-Referrer"] = item["referrer"]
            self.warc.write(
                response.url,
                status=response.status,
                reason=_reason(response.status),
                headers=headers,
                body=response.body,
                request_headers=req_headers,
                method=req.method,
                ip=str(response.ip_address) if response.ip_address else None,
                fetched_at=datetime.now(timezone.utc),
                extra=extra,
            )
            outcome = "stored"
            self._bytes += len(response.body)
        else:
            item["fetched_at"] = time.time()
            item["kind"] = kind
            item["round"] = self.round
            self.events.write(json.dumps(item, default=str).encode() + b"\n")
            self.events.flush()
            outcome = item.get("outcome", kind)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        now = time.time()
        if now - self._last >= self.progress_every:
            self._last = now
            print(json.dumps({"progress": self.counts, "bytes": self._bytes}), flush=True)

    def count(self, what: str, n: int) -> None:
        """A count with no event line (links a page offered past the frontier's caps)."""
        self.counts[what] = self.counts.get(what, 0) + n

    def close(self) -> None:
        self.warc.close()
        self.events.close()


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def run(job: dict) -> dict:
    from scrapy.crawler import CrawlerProcess

    from webmill.crawl.spider import SiteSpider

    state = WorkerState(job)
    spec = job["spec"]
    lock = _exclusive(state.events_path + ".lock")  # an older copy of this worker (orphaned by a crash) must be gone
    repaired = state.repair_open_warcs()
    events = state.events()
    finished_rounds = {e["round"] for e in events if e.get("kind") == "round_done"}
    round_ = job["round"]
    # State from an unfinished run of this round: rebuild the frontier from the stored pages.
    interrupted = round_ not in finished_rounds and bool(repaired or events or state.warc_files())
    seen, stored, frontier = recover(state, with_links=interrupted)
    start = [*job["seeds"], *job["inbox"], *frontier] if round_ not in finished_rounds else []
    # links handed on to this worker are de-duplicated here, against its own seen set
    start = [s for s in start if s["url"] not in seen]

    workers = job["workers"]
    recorder = Recorder(state, spec)
    process = CrawlerProcess(settings=scrapy_settings(spec), install_root_handler=False)
    t0 = time.time()
    if start:
        process.crawl(
            SiteSpider,
            job=job,
            owns=lambda h: owner_of(h, workers) == state.k,
            record=recorder,
            start=start,
            seen=seen,
            stored_count=stored,
            open_blob=lambda rel: state.root.fs.open_input_file(state.root.path(rel)),
        )
        process.start()
    recorder.close()
    lock.close()
    with open(state.events_path, "ab") as f:
        f.write(json.dumps({"kind": "round_done", "round": round_}).encode() + b"\n")
    return {
        "worker": state.k,
        "round": round_,
        "counts": recorder.counts,
        "repaired": repaired,
        "seconds": time.time() - t0,
        "resumed": interrupted,
    }


def _exclusive(path: str, wait: float = 120.0):
    import fcntl

    f = open(path, "a")
    deadline = time.time() + wait
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.time() > deadline:
                raise SystemExit(f"crawl worker: {path} is held by another live worker") from None
            time.sleep(0.5)


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    _die_with_parent()
    summary = run(job)
    print(json.dumps({"summary": summary}), flush=True)


def _die_with_parent() -> None:
    """A worker whose parent (the Ray task) is gone must not crawl on alone."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


if __name__ == "__main__":
    main()
