"""``webmill run`` end to end on a served real site; stats, report and query over what it made."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import reachable_pages
from pipeline_config import write_config
from sites import SMALL_SITE, sites_folder

WEBMILL = [sys.executable, "-m", "webmill"]
KILL_AFTER = {"crawl": 2.0, "clean": 4.0, "dedup": 3.0, "shard": 0.02, "tokenizer": 0.02, "train": 6.0}


def webmill(*args, timeout=600):
    return subprocess.run([*WEBMILL, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def last_json(out):
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


SEED = f"{SMALL_SITE[0]}/{SMALL_SITE[1][0]}"


@pytest.fixture(scope="module")
def served():
    from webmill.serve import SiteServer

    with SiteServer(sites_folder()) as server:
        yield server


@pytest.fixture(scope="module")
def pipeline_root(tmp_path_factory, served):
    base = tmp_path_factory.mktemp("pipeline")
    cfg = write_config(base / "webmill.toml", served.url(SEED))
    summary = last_json(webmill("--root", base / "root", "run", cfg, "--json"))
    return base / "root", cfg, summary


@pytest.mark.slow
def test_run_makes_every_stage_and_a_rerun_skips_them(pipeline_root):
    root, cfg, s = pipeline_root
    reachable = len(reachable_pages(sites_folder() / SMALL_SITE[0], SMALL_SITE[1]))
    assert s["stages"]["crawl"]["pages_stored"] == reachable  # every page reachable from the seed
    assert 0 < s["stages"]["clean"]["kept"] <= reachable
    assert s["stages"]["dedup"]["kept"] == s["stages"]["shard"]["train_docs"] + s["stages"]["shard"]["val_docs"]
    assert s["stages"]["tokenizer"]["vocab_size"] == 512
    assert s["stages"]["train"]["finished"] and s["stages"]["train"]["step"] == 12
    again = webmill("--root", root, "run", cfg, "--json")
    r = last_json(again)
    assert all(v == 0.0 for v in r["seconds"].values())
    assert again.stderr.count("up to date") == 6


@pytest.mark.slow
def test_run_killed_in_each_stage_completes_with_nothing_lost_or_doubled(tmp_path, served, pipeline_root):
    straight = pipeline_root[2]["stages"]
    # enough steps that the kill lands in training, after some checkpoints
    cfg = write_config(tmp_path / "webmill.toml", served.url(SEED), max_steps=150)
    root = tmp_path / "root"
    killed_in: list[str] = []
    for _ in range(len(KILL_AFTER) + 1):  # each run is killed in the first stage not killed in before
        p = subprocess.Popen(
            [*WEBMILL, "--root", str(root), "run", cfg],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        for line in p.stderr:
            stage = line[2:].split()[0] if line.startswith("▶ ") else None
            if stage and stage not in killed_in:
                time.sleep(KILL_AFTER[stage])
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    killed_in.append(stage)
                break
        p.wait()
        _wait_for_ray_to_exit(p.pid)
        if p.returncode == 0:
            break
    s = last_json(webmill("--root", root, "run", cfg, "--json"))["stages"]
    assert s["crawl"]["pages_stored"] == straight["crawl"]["pages_stored"]
    assert s["clean"]["kept"] == straight["clean"]["kept"]
    assert s["dedup"]["kept"] == straight["dedup"]["kept"]
    assert s["shard"]["train_docs"] + s["shard"]["val_docs"] == s["dedup"]["kept"]
    assert s["train"]["finished"] and s["train"]["step"] == 150
    steps = [json.loads(x)["step"] for x in open(f"{s['train']['run_dir']}/metrics.jsonl")]
    assert steps == list(range(1, 151))  # resumed from a checkpoint: one continuous history
    crawl_id = s["crawl"]["crawl_id"]
    log = pq.read_table(root / "crawl" / crawl_id / "log").to_pylist()
    assert len(log) == len({r["url"] for r in log})
    ids = pq.read_table(root / "shards" / "main" / "train", columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == s["shard"]["train_docs"]


def _wait_for_ray_to_exit(pid: int, timeout: float = 30) -> None:
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and any("raylet" in c or "gcs_server" in c for c in p.info["cmdline"][:1]) and p.ppid() in (pid, 1)
        ]
        if not alive:
            return
        time.sleep(0.5)


def test_stages_that_do_not_connect_and_an_unwritable_root(tmp_path):
    cfg = write_config(tmp_path / "webmill.toml", "http://127.0.0.1:9/x", run='crawl = "no-such-crawl"')
    out = webmill("--root", tmp_path / "root", "run", cfg)
    assert out.returncode == 2 and "[run] crawl = 'no-such-crawl': no such crawl" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = webmill("--root", "/proc/webmill-root", "run", cfg)
    assert out.returncode == 2 and "corpus root /proc/webmill-root" in out.stderr and "Traceback" not in out.stderr
    out = webmill("--root", tmp_path / "root2", "run", cfg, "--from", "clean")
    assert out.returncode == 2 and "no such crawl" in out.stderr
    cfg2 = write_config(tmp_path / "b.toml", "http://127.0.0.1:9/x")
    out = webmill("--root", tmp_path / "root3", "run", cfg2, "--from", "dedup")
    assert out.returncode == 2 and "stage crawl has no output" in out.stderr


# statistics, report, query ---------------------------------------------------------
@pytest.mark.slow
def test_stats_json_agrees_with_the_parquet_files(pipeline_root):
    root, _, s = pipeline_root
    st = last_json(webmill("stats", root, "--json"))
    crawl_id = s["stages"]["crawl"]["crawl_id"]
    log = pq.read_table(root / "crawl" / crawl_id / "log")
    outcomes = {r["outcome"]: r["count_all"] for r in log.group_by("outcome").aggregate([([], "count_all")]).to_pylist()}
    assert st["crawl"]["pages_by_outcome"] == outcomes
    assert st["clean"]["kept"] == pq.read_table(root / "clean" / crawl_id / "docs").num_rows
    excluded = pq.read_table(root / "clean" / crawl_id / "excluded")
    assert st["clean"]["excluded"] == excluded.num_rows
    reasons = {r["drop_reason"]: r["count_all"] for r in excluded.group_by("drop_reason").aggregate([([], "count_all")]).to_pylist()}
    for reason, n in reasons.items():
        assert st["clean"]["drop_reasons"].get(reason, 0) >= n  # excluded holds the HTML documents dropped
    docs = pq.read_table(root / "dedup" / crawl_id / "docs")
    assert st["dedup"]["kept"] == st["docs"]["documents"] == docs.num_rows
    assert st["docs"]["chars"] == pa.compute.sum(docs["n_chars"]).as_py()
    train = pq.read_table(root / "shards" / "main" / "train")
    assert st["shards"]["main"]["train"]["documents"] == train.num_rows
    assert st["shards"]["main"]["train"]["tokens_exact"]
    hosts = {r["host"]: r["count_all"] for r in docs.group_by("host").aggregate([([], "count_all")]).to_pylist()}
    assert st["docs"]["top_hosts"] == hosts


@pytest.mark.slow
def test_report_renders_its_charts_in_headless_chromium(pipeline_root, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt can)")
    root, _, _ = pipeline_root
    r = last_json(webmill("report", root, "-o", tmp_path / "report.html", "--json"))
    page = (tmp_path / "report.html").read_text()
    assert "<script src=" not in page and "<link " not in page  # plotly.js inlined: nothing fetched, opens offline
    titles = r["charts"]
    assert any(t.startswith("Funnel") for t in titles) and any("loss" in t for t in titles)
    assert any("dropped" in t for t in titles) and "Document length" in titles and "Top hosts" in titles
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            (tmp_path / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for i in range(len(titles)):
        chart = dom.split(f'id="chart-{i}"', 1)[1][:200_000].split('id="chart-', 1)[0]
        assert 'class="main-svg"' in chart, f"chart {i} ({titles[i]}) did not render"
        assert data_marks(chart) >= 1, f"chart {i} ({titles[i]}) drew no data"
    assert dom.count('class="trace') >= len(titles)


def data_marks(svg: str) -> int:
    """Bars, funnel steps and line traces plotly drew with a real extent (not a zero-size path)."""
    paths = re.findall(r'<g class="point"[^>]*>\s*<path d="([^"]+)"', svg) + re.findall(r'<path class="js-line" d="([^"]+)"', svg)
    return sum(1 for d in paths if len(set(re.findall(r"-?\d+(?:\.\d+)?", d))) >= 3)


def test_report_on_an_empty_root_says_there_is_nothing_yet(tmp_path):
    (tmp_path / "root").mkdir()
    out = webmill("report", tmp_path / "root", "-o", tmp_path / "report.html", "--json")
    assert out.returncode == 0, out.stderr
    assert last_json(out)["charts"] == []
    assert 'id="nothing-yet"' in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_query_answers_why_a_page_was_dropped(pipeline_root):
    root, _, s = pipeline_root
    rows = json.loads(webmill("query", root, "SELECT url, drop_reason FROM excluded ORDER BY url LIMIT 1", "--format", "json").stdout)
    assert rows and rows[0]["drop_reason"]
    url = rows[0]["url"]
    again = json.loads(webmill("query", root, f"SELECT drop_reason FROM excluded WHERE url = '{url}'", "--format", "json").stdout)
    assert again[0]["drop_reason"] == rows[0]["drop_reason"]
    dup = webmill("query", root, "SELECT host, count(*) FILTER (WHERE NOT kept) AS dups FROM clusters GROUP BY 1")
    assert dup.returncode == 0 and "127.0.0.1" in dup.stdout
    shards = json.loads(webmill("query", root, "SELECT split, count(*) AS n FROM shards GROUP BY 1 ORDER BY 1", "--format", "json").stdout)
    assert {r["split"]: r["n"] for r in shards}["train"] == s["stages"]["shard"]["train_docs"]


def test_query_with_invalid_sql_is_one_line_and_exit_2(tmp_path):
    out = webmill("--root", tmp_path, "query", "SELEC nothing FROM docs")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Parser Error" in out.stderr and "Traceback" not in out.stderr


def query_json(root, sql):
    out = webmill("query", root, sql, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_trace_follows_a_document_from_its_fetch_to_the_run_that_learned_from_it(pipeline_root):
    root, _, s = pipeline_root
    run = s["stages"]["train"]["name"]
    doc = query_json(root, "SELECT id, url FROM shards WHERE split = 'train' ORDER BY id LIMIT 1")[0]
    t = last_json(webmill("--root", root, "trace", doc["id"], "--json"))
    assert [c["outcome"] for c in t["crawl"]] == ["stored"] and t["crawl"][0]["url"] == doc["url"]
    (d,) = t["documents"]
    assert d["id"] == doc["id"] and [c["kept"] for c in d["clean"]] == [True]
    assert d["dedup"] and d["dedup"][0]["kept"]
    (shard,) = d["shards"]
    assert shard["split"] == "train" and shard["shard"].startswith("train/")
    assert {"run": run, "finished": True, "shard": shard["shard"], "role": "trained on"} in d["runs"]
    # by URL, for people: the same path, one line per stage
    text = webmill("--root", root, "trace", doc["url"])
    assert text.returncode == 0, text.stderr
    for word in ("crawl ", "clean ", "kept", "dedup ", "shards ", f"run {run}: trained on"):
        assert word in text.stdout, text.stdout


@pytest.mark.slow
def test_trace_of_a_dropped_page_names_the_reason_and_raw_prints_its_record(pipeline_root):
    root, _, _ = pipeline_root
    ex = query_json(root, "SELECT id, url, drop_reason FROM excluded ORDER BY url LIMIT 1")[0]
    text = webmill("--root", root, "trace", ex["id"])
    assert text.returncode == 0, text.stderr
    assert f"dropped, {ex['drop_reason']}" in text.stdout
    raw = subprocess.run([*WEBMILL, "--root", str(root), "trace", ex["url"], "--raw"], capture_output=True, timeout=600)
    assert raw.returncode == 0, raw.stderr[-2000:]
    assert raw.stdout.startswith(b"WARC/1.")
    assert f"WARC-Target-URI: {ex['url']}".encode() in raw.stdout
    assert b"\r\nHTTP/1." in raw.stdout and b"<html" in raw.stdout.lower()
    cut = subprocess.run(
        [*WEBMILL, "--root", str(root), "trace", ex["url"], "--raw", "--max-bytes", "100"], capture_output=True, timeout=600
    )
    assert cut.returncode == 0 and b"[payload cut at 100 bytes" in cut.stdout and len(cut.stdout) < len(raw.stdout)


@pytest.mark.slow
def test_trace_of_a_run_lists_its_shards_with_checksums_and_documents(pipeline_root):
    root, _, s = pipeline_root
    run = s["stages"]["train"]["name"]
    t = last_json(webmill("--root", root, "trace", f"runs/{run}", "--json"))
    assert t["finished"] and t["dataset"].startswith("shards/")
    assert t["documents"] == s["stages"]["shard"]["train_docs"] + s["stages"]["shard"]["val_docs"]
    assert t["shards"] and all(x["status"] == "unchanged" and len(x["sha256"]) == 64 for x in t["shards"])
    assert last_json(webmill("--root", root, "trace", run, "--json"))["shards"] == t["shards"]


def test_trace_of_an_unknown_id_url_or_run_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "root").mkdir()
    for target in ("0123456789abcdef", "http://nowhere.test/page.html", "runs/nothing"):
        out = webmill("--root", tmp_path / "root", "trace", target)
        assert out.returncode == 2, (target, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
