"""The shard store's cost per unit on a store where every request counts (an object store):
starting or checking a unit reads that unit's record only, finalizing U units reads O(U),
a reader of a finalized dataset reads the manifest instead of every record."""

import hashlib
from collections import Counter

import pyarrow as pa
import pyarrow.fs as pafs
from fshandler import DelegatingHandler

from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter, Manifest
from webmill.shards import manifest as manifest_mod


class CountingHandler(DelegatingHandler):
    """A local filesystem that counts reads, listings and stats by kind (and by folder for listings)."""

    def __init__(self, base: str):
        super().__init__(pafs.SubTreeFileSystem(base, pafs.LocalFileSystem()))
        self.calls: Counter = Counter()

    def get_file_info(self, paths):
        self.calls["stat"] += len(paths)
        return super().get_file_info(paths)

    def get_file_info_selector(self, selector):
        self.calls["list"] += 1
        self.calls["list:" + selector.base_dir.rstrip("/").rsplit("/", 1)[-1]] += 1
        return super().get_file_info_selector(selector)

    def open_input_stream(self, path):
        self.calls["read"] += 1
        if "/_commits/" in path:
            self.calls["read:commit"] += 1
        return super().open_input_stream(path)

    def open_input_file(self, path):
        self.calls["read"] += 1
        return super().open_input_file(path)


SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])


def test_unit_checks_and_commits_cost_constant_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_mod, "FRESH_SECONDS", 0.0)
    handler = CountingHandler(str(tmp_path))
    root = CorpusRoot.from_filesystem(pafs.PyFileSystem(handler), "root")
    w = DatasetWriter(root, "ds", SCHEMA, row_group_rows=8)
    per_unit = []
    for u in range(120):
        before = handler.calls.copy()
        table = pa.table({"id": [f"{u}-{i}" for i in range(10)], "n": list(range(10))}, schema=SCHEMA)
        w.write_unit(f"unit-{u}", [table], fingerprint="fp")
        per_unit.append(handler.calls - before)
    # the last unit costs what the first did: its own record only, and no listing of the dataset
    assert per_unit[-1]["read:commit"] == per_unit[0]["read:commit"] <= 2
    assert per_unit[-1]["list"] == per_unit[0]["list"] == 0
    assert max(c["stat"] for c in per_unit) == per_unit[0]["stat"]

    before = handler.calls.copy()
    assert w.is_committed("unit-7", "fp") and not w.is_committed("unit-7", "other") and not w.is_committed("nope")
    assert (handler.calls - before)["read:commit"] == 3  # one read of one record per check

    before = handler.calls.copy()
    doc = w.finalize()
    cost = handler.calls - before
    assert doc["rows"] == 1200 and cost["read:commit"] == 120 and cost["list"] <= 3

    before = handler.calls.copy()
    r = DatasetReader(root, "ds")
    cost = handler.calls - before
    assert r.num_rows == 1200 and cost["read:commit"] == 0 and cost["list"] == 1

    # a unit committed after the manifest is still seen, read on its own
    w.write_unit("late", [pa.table({"id": ["x"], "n": [1]}, schema=SCHEMA)], fingerprint="fp")
    before = handler.calls.copy()
    m = Manifest.load(root, "ds")
    assert m.rows == 1201 and (handler.calls - before)["read:commit"] == 1


def test_part_checksum_is_the_file_sha256(tmp_path):
    root = CorpusRoot.open(tmp_path / "root")
    w = DatasetWriter(root, "ds", SCHEMA, row_group_rows=4, target_rows=8)
    w.write_unit("u", [pa.table({"id": [str(i) for i in range(30)], "n": list(range(30))}, schema=SCHEMA)])
    parts = w.manifest().parts
    assert len(parts) == 4
    for p in parts:
        data = (tmp_path / "root" / "ds" / p["path"]).read_bytes()
        assert p["sha256"] == hashlib.sha256(data).hexdigest() and p["bytes"] == len(data)
    assert DatasetReader(root, "ds", verify=True).read_all().num_rows == 30


def test_rewrite_removes_a_killed_attempts_parts_without_listing(tmp_path):
    root = CorpusRoot.open(tmp_path / "root")
    w = DatasetWriter(root, "ds", SCHEMA, row_group_rows=4, target_rows=4)
    out = w.unit("u").__enter__()
    out.write(pa.table({"id": [str(i) for i in range(12)], "n": list(range(12))}, schema=SCHEMA))
    # killed here: three parts renamed into place, no commit record
    assert len([p for p in (tmp_path / "root" / "ds").iterdir() if p.name.startswith("part-")]) == 3
    w.write_unit("u", [pa.table({"id": ["a"], "n": [0]}, schema=SCHEMA)])
    on_disk = [p for p in (tmp_path / "root" / "ds").iterdir() if p.name.startswith("part-")]
    assert len(on_disk) == 1 and DatasetReader(root, "ds").num_rows == 1
