"""Crawling the real websites served on 127.0.0.1 stores exactly the reachable pages."""

import re

import pytest
from helpers import crawl_log, last_json, reachable_pages, warc_responses, webmill, write_spec
from sites import CORPORA, sites_folder

SITES = {
    "libstdcxx-manual": ["11/index.html", "12/index.html"],
    "postgresql-15": ["index.html"],
    "sqlite-3": ["index.html"],
    "debian-handbook": [f"{l}/index.html" for l in ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP", "ko-KR", "ar-MA")],
    # where ../shared/corpora is absent: the offline site's reference topics (80 pages) and library (~6,000)
    "pydoc": ["index.html"],
    "pylib": ["index.html"],
}
SLOW = pytest.mark.slow
PARAMS = (
    ["libstdcxx-manual", *(pytest.param(n, marks=SLOW) for n in ("postgresql-15", "sqlite-3", "debian-handbook"))]
    if CORPORA is not None
    else ["pydoc", pytest.param("pylib", marks=SLOW)]
)


@pytest.mark.parametrize("name", PARAMS)
def test_crawl_stores_every_reachable_page(name, site, tmp_path):
    folder = sites_folder() / name
    expected = {f"{site.url(name)}/{p}" for p in reachable_pages(folder, SITES[name])}
    spec = write_spec(
        tmp_path / "spec.toml", seeds=[site.url(f"{name}/{s}") for s in SITES[name]], allow_private_networks=True, concurrency=16, workers=1
    )
    summary = last_json(webmill("--root", tmp_path / "root", "crawl", "run", spec, "--json"))
    stored = warc_responses(tmp_path / "root", summary["crawl_id"])
    assert len(stored) == len(set(stored)), "a URL was stored twice"
    # a link to a folder ("\\" in one sqlite page) is a real URL that serves the folder's index.html
    files = {re.sub(r"(?<!:)//+", "/", u) + ("index.html" if u.endswith("/") else "") for u in stored}
    assert files == expected
    assert len(stored) - len(files) <= 1
    log = crawl_log(tmp_path / "root", summary["crawl_id"])
    assert len({r["url"] for r in log}) == len(log), "one log row per URL"
    stored_rows = [r for r in log if r["outcome"] == "stored"]
    assert len(stored_rows) == len(stored) == summary["pages_stored"]
    assert all(r["warc_file"] and r["warc_offset"] is not None for r in stored_rows)
    if name == "sqlite-3":
        assert summary["outcomes"].get("http_error", 0) > 0  # its links to pages not shipped are real 404s
