"""Clean units are byte ranges of a WARC file: every record lands in exactly one unit, whatever the size."""

import os

import pyarrow.fs as pafs
import pytest
from warcfiles import prose_page, write_warc

from webmill.clean.warcs import WarcInput, iter_records, unit_ranges


def _inp(path):
    return WarcInput(pafs.LocalFileSystem(), str(path), path.name, None, os.path.getsize(path))


@pytest.fixture
def warc(tmp_path):
    path = tmp_path / "a.warc.gz"
    write_warc(path, [(f"http://s.test/{i}", prose_page(f"Page {i}", 4), "text/html") for i in range(60)])
    return path


@pytest.mark.parametrize("unit_bytes", [1 << 12, 10_000, 1 << 16, 1 << 30])
def test_every_record_in_exactly_one_unit(warc, unit_bytes):
    inp = _inp(warc)
    whole = [(r["url"], r["source"]["offset"]) for r in iter_records(inp, {})]
    stats, got = {}, []
    for rg in unit_ranges(inp.size, unit_bytes, True):
        got += [(r["url"], r["source"]["offset"]) for r in iter_records(inp, stats, rg)]
    assert got == whole and len(whole) == 60
    assert stats.get("warc_truncated", 0) == 0 and stats["responses"] == 60


def test_a_torn_file_is_counted_once_across_units(warc, tmp_path):
    torn = tmp_path / "torn.warc.gz"
    data = warc.read_bytes()
    torn.write_bytes(data[: len(data) - 300])
    inp = _inp(torn)
    stats, n = {}, 0
    for rg in unit_ranges(inp.size, 10_000, True):
        n += sum(1 for _ in iter_records(inp, stats, rg))
    assert n == 59 and stats["warc_truncated"] == 1


def test_a_plain_warc_is_one_unit():
    assert unit_ranges(10 << 20, 1 << 20, gzipped=False) == [(0, 10 << 20)]
