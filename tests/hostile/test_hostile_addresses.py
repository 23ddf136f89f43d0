"""Disguised private addresses: refused by the crawler before any connection, redirects and
robots.txt included, and behind a proxy too; every server here is on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from webmill.crawl.safety import NetworkGuardMiddleware, PrivateNetworkRefused, is_public
from webmill.serve import QuietHandler, SiteServer

PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "100.64.0.1",
    "100.100.100.200",
    "169.254.169.254",
    "192.168.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "198.18.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2001::1",
    "2001:db8::1",
    "ff02::1",
    "not an address",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]


def test_special_purpose_and_embedded_addresses(hostile):
    hostile.tried(*(f"address {a}" for a in PRIVATE))
    assert [a for a in PRIVATE if is_public(a)] == []
    assert [a for a in PUBLIC if not is_public(a)] == []


def test_the_target_is_checked_behind_a_proxy(monkeypatch, hostile):
    """Behind a proxy the resolver sees only the proxy's name: the guard resolves the target
    itself (in a thread, as a Deferred) and refuses a private one."""
    import scrapy
    from twisted.internet.defer import Deferred

    from webmill.crawl.safety import behind_proxy, check_resolves_public

    hostile.tried("http_proxy set, target resolving to loopback")
    monkeypatch.setenv("http_proxy", "http://8.8.8.8:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    request = scrapy.Request("http://localhost:9/secret")
    assert behind_proxy(request, "http", "localhost")
    assert isinstance(NetworkGuardMiddleware(allow_private=False).process_request(request), Deferred)
    with pytest.raises(PrivateNetworkRefused):
        check_resolves_public("localhost")
    monkeypatch.delenv("http_proxy")
    assert NetworkGuardMiddleware(allow_private=False).process_request(request) is None  # the resolver checks it


class _Counting(QuietHandler):
    hits: list[str] = []

    def do_GET(self):
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "30")
        self.end_headers()
        self.wfile.write(b"<html><body>secret</body></html>"[:30])


class _Entry(QuietHandler):
    target = ""

    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", _Entry.target + "secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        links = "".join(f"<a href='/p{i}.html'>p{i}</a>" for i in range(50_000))
        body = f"<html><head><title>links</title></head><body>{links}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.slow
def test_disguised_private_seeds_and_redirects_never_connect(tmp_path, hostile):
    secret = SiteServer(tmp_path, handler=_Counting).start()
    entry = SiteServer(tmp_path, handler=_Entry).start()
    try:
        p = secret.port
        _Entry.target = secret.base
        disguised = [
            f"http://[::1]:{p}/",
            f"http://[::ffff:127.0.0.1]:{p}/",
            f"http://2130706433:{p}/",
            f"http://0x7f000001:{p}/",
            f"http://0177.0.0.1:{p}/",
            f"http://127.1:{p}/",
            f"http://localhost:{p}/",
            f"http://127.0.0.1:{p}/",
        ]
        seeds = [entry.url("redirect"), entry.url("links.html"), *disguised]
        hostile.tried(
            "redirect to a private address",
            "robots.txt on a private address",
            "a page with 50,000 links",
            *(f"seed {u}" for u in disguised),
        )
        spec = tmp_path / "spec.toml"
        spec.write_text(
            "[crawl]\n" + f"seeds = {json.dumps(seeds)}\n"
            f'private_hosts = ["127.0.0.1:{entry.port}"]\nmax_pages = 30\nmax_links_per_page = 200\n'
            "max_depth = 2\nretries = 0\ntimeout = 5\n"
        )
        out = subprocess.run(
            [sys.executable, "-m", "webmill", "--root", tmp_path / "root", "crawl", "run", spec, "--json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        s = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        secret.stop()
        entry.stop()
    assert _Counting.hits == [], _Counting.hits
    o = s["outcomes"]
    assert o.get("private_network", 0) >= len(disguised) + 1, o  # every disguise, and the redirect
    assert s["urls_attempted"] <= 30 + len(seeds) + 5, s  # the budget bounds the requests, not the links


def _metadata_stand_in(folder):
    """A page on 127.0.0.1 standing in for a cloud's metadata endpoint (169.254.169.254)."""
    folder.mkdir()
    (folder / "index.html").write_text(
        "<html><head><title>latest/meta-data</title></head><body><p>iam/security-credentials/role: "
        + "INSTANCE-ROLE-SECRET " * 60
        + "</p></body></html>"
    )
    return folder


def _root_holds(root, marker: bytes) -> list[str]:
    import gzip

    found = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix == ".gz":
                try:
                    data = gzip.decompress(data)
                except OSError:
                    pass
            if marker in data:
                found.append(str(p))
    return found


def test_a_stored_spec_never_opens_private_networks_to_the_scheduler(tmp_path, hostile):
    """Anyone who can write the root can queue a job whose spec says allow_private_networks = true:
    the scheduler runs it with its own policy (no flag: private addresses refused). With
    `webmill scheduler --allow-private-networks` the operator opens them (tests/crawl/test_crawl_schedule.py)."""
    from faultserver import fault_server
    from helpers import last_json, write_spec

    hostile.tried("queued spec with allow_private_networks = true")
    root = tmp_path / "root"
    with fault_server(_metadata_stand_in(tmp_path / "metadata")) as server:
        spec = write_spec(tmp_path / "spec.toml", seeds=[server.url("index.html")], allow_private_networks=True, max_pages=5, retries=0)
        out = _run("--root", root, "crawl", "submit", spec, "--json")
        assert out.returncode == 0, out.stderr[-2000:]
        out = _run("--root", root, "scheduler", "--once", "--json")
        assert out.returncode == 0, out.stderr[-2000:]
        ran = last_json(out)["ran"]
        assert len(ran) == 1 and ran[0]["pages_stored"] == 0, ran
        status = last_json(_run("--root", root, "crawl", "status", ran[0]["id"], "--json"))
        assert status["counts"].get("private_network", 0) >= 1, status
        assert _root_holds(root, b"INSTANCE-ROLE-SECRET") == []


def _run(*args):
    return subprocess.run([sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, timeout=300)
