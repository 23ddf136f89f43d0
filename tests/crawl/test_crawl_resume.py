"""Kill -9 the driver or a worker mid-crawl; resume; every page is stored exactly once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import crawl_log, last_json, reachable_pages, warc_responses, webmill, write_spec
from sites import CORPORA, real_site

pytestmark = pytest.mark.slow


def start_crawl(spec, root):
    return subprocess.Popen(
        [sys.executable, "-m", "webmill", "--root", str(root), "crawl", "run", str(spec), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_stored(root: Path, n: int, timeout=120) -> str:
    """Wait until a worker's open WARC holds about n pages; return the crawl id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in root.glob("crawl/*/state/progress-*.json"):
            import json

            try:
                if json.loads(p.read_text())["progress"].get("stored", 0) >= n:
                    return p.parent.parent.name
            except (ValueError, KeyError, OSError):
                pass
        time.sleep(0.2)
    raise AssertionError("crawl made no progress")


def worker_procs(crawl_id):
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and "webmill.crawl.worker" in " ".join(p.info["cmdline"]) and crawl_id in " ".join(p.info["cmdline"])
    ]


# postgresql-15 (1,169 pages), or where ../shared/corpora is absent the offline library (~6,000 pages)
SITE = "postgresql-15" if CORPORA is not None else "pylib"


def check_exactly_once(root, crawl_id, site):
    folder = real_site("postgresql-15")
    expected = {site.url(f"{SITE}/{p}") for p in reachable_pages(folder, ["index.html"])}
    stored = warc_responses(root, crawl_id)
    assert len(stored) == len(set(stored)), "a page was stored twice"
    assert set(stored) == expected
    log = crawl_log(root, crawl_id)
    assert len(log) == len({r["url"] for r in log})
    assert sum(r["outcome"] == "stored" for r in log) == len(expected)
    assert not list((root / "crawl" / crawl_id / "warc").glob("*.open"))


def spec_for(tmp_path, site):
    return write_spec(
        tmp_path / "spec.toml",
        seeds=[site.url(f"{SITE}/index.html")],
        allow_private_networks=True,
        # slow enough that the kill lands mid-crawl; the offline site is five times larger and can go faster
        concurrency=2 if SITE == "postgresql-15" else 16,
        concurrency_per_host=2 if SITE == "postgresql-15" else 16,
        download_delay=0.01 if SITE == "postgresql-15" else 0,
        warc_max_bytes=1 << 20,
    )


def test_kill_driver_then_resume(site, tmp_path):
    root = tmp_path / "root"
    p = start_crawl(spec_for(tmp_path, site), root)
    crawl_id = wait_for_stored(root, 150)
    os.killpg(p.pid, signal.SIGKILL)  # the driver and everything in its session
    p.wait()
    deadline = time.time() + 60
    while worker_procs(crawl_id) and time.time() < deadline:
        time.sleep(0.5)
    assert list((root / "crawl" / crawl_id / "warc").glob("*.open")), "the crash left a half-written WARC"
    status = last_json(webmill("--root", root, "crawl", "status", crawl_id, "--json"))
    assert status["state"] == "running"
    summary = last_json(webmill("--root", root, "crawl", "resume", crawl_id, "--allow-private-networks", "--json"))
    assert summary["repaired"], "the torn WARC was repaired"
    check_exactly_once(root, crawl_id, site)
    assert last_json(webmill("--root", root, "crawl", "status", crawl_id, "--json"))["state"] == "done"


def test_kill_worker_ray_retries_and_resumes(site, tmp_path):
    root = tmp_path / "root"
    p = start_crawl(spec_for(tmp_path, site), root)
    crawl_id = wait_for_stored(root, 150)
    procs = worker_procs(crawl_id)
    assert len(procs) == 1
    procs[0].send_signal(signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    summary = last_json(subprocess.CompletedProcess([], 0, out, err))
    assert summary["repaired"]
    check_exactly_once(root, crawl_id, site)
