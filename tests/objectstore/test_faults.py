"""Object-store faults during a stage: a server that vanishes for seconds, a sick filesystem, a persistent error."""

from __future__ import annotations

import time

import pyarrow.fs as pafs
import pytest
from flaky import FlakyHandler
from s3server import PausableProxy
from warcfiles import prose_page, write_warc

from webmill.clean.config import CleanConfig
from webmill.clean.stage import run_clean
from webmill.clean.warcs import crawl_inputs
from webmill.runtime import TasksFailed
from webmill.shards import CorpusRoot, DatasetReader


def _put_crawl(root: CorpusRoot, tmp_path, files: int = 3, pages: int = 40) -> None:
    """A crawl's WARC files in the root, as `webmill crawl` leaves them."""
    for k in range(files):
        local = tmp_path / f"c-w0000-{k:05d}.warc.gz"
        write_warc(
            local, [(f"http://site.test/{k}/{i}.html", prose_page(f"Page {k} {i} of the manual", 6), "text/html") for i in range(pages)]
        )
        root.write_bytes_atomic(local.read_bytes(), "crawl", "c", "warc", local.name)


def _kept_urls(root, run) -> set[str]:
    return set(DatasetReader(root, f"clean/{run}/docs").read_all(columns=["url"]).column("url").to_pylist())


CFG = CleanConfig(unit_bytes=1 << 16, min_words=20)


@pytest.fixture(scope="module")
def s3_crawl(s3, tmp_path_factory, ray_local):
    uri = s3.uri()
    root = CorpusRoot.open(uri)
    _put_crawl(root, tmp_path_factory.mktemp("warcs"))
    base = run_clean(root, ray_local, crawl_inputs(root, "c"), "base", CFG)
    assert base["kept"] > 60 and base["warc_truncated"] == 0
    return uri, base, _kept_urls(root, "base")


@pytest.mark.slow
def test_server_gone_for_seconds_mid_clean_is_retried_and_nothing_is_lost(s3, s3_crawl, ray_local):
    uri, base, urls = s3_crawl
    proxy = PausableProxy(s3.port)
    try:
        root = CorpusRoot.open(uri.replace(f":{s3.port}", f":{proxy.port}"))
        t0 = time.time()
        proxy.pause_later(after=1.0, seconds=4.0)
        s = run_clean(root, ray_local, crawl_inputs(root, "c"), "outage", CFG)
        assert time.time() - t0 > 5.0  # the outage fell inside the stage
    finally:
        proxy.close()
    assert s["warc_truncated"] == 0 and s["kept"] == base["kept"]
    assert _kept_urls(CorpusRoot.open(uri), "outage") == urls


@pytest.mark.slow
def test_every_fifth_read_failing_is_retried(s3_crawl, ray_local):
    uri, base, urls = s3_crawl
    s3root = CorpusRoot.open(uri)
    flaky = CorpusRoot.from_filesystem(pafs.PyFileSystem(FlakyHandler(s3root.fs, every=5)), s3root.base)
    s = run_clean(flaky, ray_local, crawl_inputs(flaky, "c"), "flaky", CFG)
    assert s["warc_truncated"] == 0 and s["kept"] == base["kept"]
    assert _kept_urls(s3root, "flaky") == urls


@pytest.mark.slow
def test_persistent_error_fails_its_units_naming_the_object_and_the_rerun_completes(s3_crawl, ray_local):
    uri, base, urls = s3_crawl
    s3root = CorpusRoot.open(uri)
    sick = CorpusRoot.from_filesystem(pafs.PyFileSystem(FlakyHandler(s3root.fs, fail_on="-00001.warc.gz")), s3root.base)
    with pytest.raises(TasksFailed) as e:
        run_clean(sick, ray_local, crawl_inputs(sick, "c"), "sick", CFG)
    msg = str(e.value)
    assert "\n" not in msg and "c-w0000-00001.warc.gz" in msg and "tasks failed" in msg
    again = run_clean(s3root, ray_local, crawl_inputs(s3root, "c"), "sick", CFG)
    assert again["units_skipped"] > 0 and again["units_run"] > 0  # only the failed units ran again
    assert again["kept"] == base["kept"] and _kept_urls(s3root, "sick") == urls
