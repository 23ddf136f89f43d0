"""Bad input and faults on the loopback fixture: the crawl finishes and logs each outcome."""

import socket

from faultserver import FaultHandler
from helpers import crawl_log, last_json, warc_responses, webmill, write_spec


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_faults_each_get_their_outcome(fault_site, tmp_path):
    folder = fault_site.directory
    (folder / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (folder / "private").mkdir()
    (folder / "private" / "secret.html").write_text("<html><body>secret</body></html>")
    (folder / "index.html").write_text(
        "<html><body><a href='/private/secret.html'>s</a> <a href='/_fault/calendar/2020/1'>calendar</a></body></html>"
    )
    u = fault_site.url
    refused = f"http://127.0.0.1:{closed_port()}/index.html"
    seeds = {
        "index": u("index.html"),
        "flaky": u("_fault/flaky/2/crawl-test"),
        "always500": u("_fault/status/503"),
        "stall": u("_fault/stall"),
        "drop": u("_fault/drop"),
        "big": u("_fault/big/52428800"),
        "loop": u("_fault/redirect-loop/0"),
        "cp1252": u("_fault/enc/windows-1252"),
        "sjis": u("_fault/enc/shift_jis"),
        "gzip": u("_fault/gzip"),
        "links": u("_fault/links"),
        "noai": u("_fault/headers/X-Robots-Tag/noai"),
        "noindex": u("_fault/headers/X-Robots-Tag/noindex"),
        "pdf": u("_fault/headers/X-Content/1"),  # stored: text/html
        "refused": refused,
    }
    spec = write_spec(
        tmp_path / "spec.toml",
        seeds=list(seeds.values()),
        allow_private_networks=True,
        timeout=2.0,
        retries=2,
        max_response_bytes=10 << 20,
        max_redirects=5,
        max_depth=200,
    )
    FaultHandler.requested.clear()
    summary = last_json(webmill("--root", tmp_path / "root", "crawl", "run", spec, "--json", timeout=300))
    rows = {r["url"]: r for r in crawl_log(tmp_path / "root", summary["crawl_id"])}

    def outcome(key):
        return rows[seeds[key]]["outcome"]

    assert outcome("index") == "stored"
    assert outcome("flaky") == "stored"  # 500, 500, then 200 after retries with backoff
    assert outcome("always500") == "http_error" and rows[seeds["always500"]]["status"] == 503
    assert outcome("stall") == "timeout"
    assert outcome("drop") in ("connection_dropped", "timeout")
    assert outcome("big") == "too_large"
    assert outcome("loop") == "redirect_loop"
    for key in ("cp1252", "sjis", "gzip", "links", "pdf"):
        assert outcome(key) == "stored", key
    assert outcome("noai") == "opt_out_noai"
    assert outcome("noindex") == "opt_out_noindex"
    assert outcome("refused") == "connection_refused"
    assert rows[u("private/secret.html")]["outcome"] == "robots"
    traps = [r for r in rows.values() if r["outcome"] == "trap_calendar"]
    assert traps, "the infinite calendar is cut off as a trap"
    assert sum(1 for r in rows.values() if "/calendar/" in r["url"] and r["outcome"] == "stored") <= 30
    # nothing outside the allowed hosts was requested, and no file:// URL
    assert not any(r["host"] not in ("127.0.0.1:%d" % fault_site.port, refused.split("/")[2]) for r in rows.values())
    assert not any("etc/passwd" in p or "latest/meta-data" in p for p in FaultHandler.requested)
    # the stored copies are the bytes the server sent (decoded from gzip), readable by warcio
    stored = warc_responses(tmp_path / "root", summary["crawl_id"])
    assert len(stored) == summary["pages_stored"]


def test_private_networks_refused_by_default(fault_site, tmp_path):
    spec = write_spec(
        tmp_path / "spec.toml", seeds=[fault_site.url("index.html"), f"http://localhost:{fault_site.port}/index.html"], timeout=5.0
    )
    summary = last_json(webmill("--root", tmp_path / "root", "crawl", "run", spec, "--json"))
    assert summary["pages_stored"] == 0
    outcomes = {r["url"]: r["outcome"] for r in crawl_log(tmp_path / "root", summary["crawl_id"])}
    assert set(outcomes.values()) == {"private_network"}, outcomes


def test_seed_that_is_not_a_url(tmp_path):
    spec = write_spec(tmp_path / "spec.toml", seeds=["not a url"])
    out = webmill("--root", tmp_path / "root", "crawl", "run", spec, check=False)
    assert out.returncode == 2
    assert "seed 'not a url': not an http(s) URL" in out.stderr
    assert "Traceback" not in out.stderr
    spec = write_spec(tmp_path / "spec2.toml", seeds=["ftp://example.org/x"])
    out = webmill("--root", tmp_path / "root", "crawl", "run", spec, check=False)
    assert out.returncode == 2 and "not an http(s) URL" in out.stderr


def test_seed_file_of_urls(fault_site, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"# seeds\n{fault_site.url('_fault/gzip')}\n{fault_site.url('_fault/enc/shift_jis')}\n")
    spec = write_spec(tmp_path / "spec.toml", seeds=["seeds.txt"], allow_private_networks=True)
    summary = last_json(webmill("--root", tmp_path / "root", "crawl", "run", spec, "--json"))
    assert summary["pages_stored"] == 2
