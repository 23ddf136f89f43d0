"""``webmill shard``: mixed, split, globally shuffled training shards with a manifest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from sites import STAND_IN_PAGES, real_site

from webmill.errors import UserError
from webmill.sample import real_docs
from webmill.shards import CorpusRoot, DatasetWriter
from webmill.shards.config import ShardsConfig
from webmill.shards.schema import DOC_SCHEMA
from webmill.shards.training import build_shards


def add_source(root, name, table):
    dw = DatasetWriter(root, f"dedup/{name}/docs", DOC_SCHEMA, row_group_rows=128)
    dw.write_unit("docs", [table])
    dw.finalize()


@pytest.fixture
def root(tmp_path):
    root = CorpusRoot.open(str(tmp_path / "root"))
    add_source(root, "pg", real_docs(real_site("postgresql-15"), STAND_IN_PAGES))
    add_source(root, "sq", real_docs(real_site("sqlite-3")))
    return root


def ids(root, name, split):
    return pq.read_table(root.path("shards", name, split), columns=["id"]).column("id").to_pylist()


def test_shuffled_split_sized_and_described(root):
    docs = [pq.read_table(root.path("dedup", ds, "docs"), columns=["n_chars"]) for ds in ("pg", "sq")]
    chars = int(sum(t.column("n_chars").to_numpy().sum() for t in docs))
    cfg = ShardsConfig(target_bytes=min(2 << 20, chars // 5), row_group_rows=100, val_fraction=0.05, seed=7)  # five shards at least
    m = build_shards(root, cfg)
    src = [r for ds in ("pg", "sq") for r in pq.read_table(root.path("dedup", ds, "docs"), columns=["id"]).column("id").to_pylist()]
    train, val = ids(root, "main", "train"), ids(root, "main", "val")
    assert sorted(train + val) == sorted(src)  # nothing lost, nothing doubled
    assert 0.02 < len(val) / len(src) < 0.09  # the held-out share
    assert m["buckets"] > 3 and len(m["splits"]["train"]["shards"]) == m["buckets"]  # sized by the target
    # globally shuffled: both sources are spread through the first shard
    first = pq.read_table(root.path("shards", "main", m["splits"]["train"]["shards"][0]["path"]))
    assert set(first.column("source_dataset").to_pylist()) == {"dedup/pg/docs", "dedup/sq/docs"}
    assert pq.ParquetFile(root.path("shards", "main", m["splits"]["train"]["shards"][0]["path"])).metadata.row_group(0).num_rows == 100
    on_disk = json.loads(root.read_bytes("shards", "main", "manifest.json"))
    for shard in on_disk["splits"]["train"]["shards"]:
        data = open(root.path("shards", "main", shard["path"]), "rb").read()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == shard["bytes"]
    assert on_disk["seed"] == 7 and not root.exists("shards", "main", "_buckets")


def test_same_seed_same_shards_and_a_rerun_is_skipped(root):
    cfg = ShardsConfig(target_bytes=4 << 20, seed=3)
    build_shards(root, cfg, name="a")
    build_shards(root, cfg, name="b")
    assert ids(root, "a", "train") == ids(root, "b", "train")
    assert build_shards(root, cfg, name="a").get("skipped")
    other = build_shards(root, ShardsConfig(target_bytes=4 << 20, seed=4), name="c")
    assert ids(root, "c", "train") != ids(root, "a", "train") and not other.get("skipped")


def test_mixture_weights_set_the_character_shares(root):
    cfg = ShardsConfig(mix={"pg": 0.5, "sq": 0.5}, val_fraction=0.0)
    m = build_shards(root, cfg, name="mix")
    t = pq.read_table(root.path("shards", "mix", "train"), columns=["source_dataset", "n_chars"]).to_pylist()
    pg = sum(r["n_chars"] for r in t if r["source_dataset"] == "dedup/pg/docs")
    sq = sum(r["n_chars"] for r in t if r["source_dataset"] == "dedup/sq/docs")
    assert 0.4 < pg / (pg + sq) < 0.6
    probs = sorted(v["keep_probability"] for v in m["sources"].values())
    assert probs[-1] == 1.0 and probs[0] < 1.0  # the smaller source is used whole, the larger one sampled


def test_bad_sources_are_one_line(tmp_path, root):
    with pytest.raises(UserError, match="not found"):
        build_shards(root, ShardsConfig(mix={"nope": 1.0}))
    out = subprocess.run(
        [sys.executable, "-m", "webmill", "--root", str(tmp_path / "empty"), "shard"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "no deduplicated documents" in out.stderr and "Traceback" not in out.stderr


def test_a_crash_after_the_map_pass_resumes_without_redoing_it(root, monkeypatch):
    """Pass 1 runs as one Ray task per input part; a crash before pass 2 keeps its files,
    and the rerun skips them and writes the shards an uninterrupted run writes."""
    from webmill.shards import training

    cfg = ShardsConfig(target_bytes=2 << 20, row_group_rows=64, seed=5)
    build_shards(root, cfg, name="ref")

    def crash(*args, **kwargs):
        raise RuntimeError("killed between the passes")

    real_reduce = training._reduce_pass
    monkeypatch.setattr(training, "_reduce_pass", crash)
    with pytest.raises(RuntimeError):
        build_shards(root, cfg, name="resumed")
    maps = sorted(p for p in root.listdir("shards", "resumed", "_buckets") if p.endswith(".parquet"))
    assert maps and all(root.exists("shards", "resumed", "_buckets", p[:-8] + ".json") for p in maps)
    before = {p: root.fs.get_file_info(root.path("shards", "resumed", "_buckets", p)).mtime for p in maps}
    seen = []
    monkeypatch.setattr(
        training,
        "_reduce_pass",
        lambda *a, **k: (
            seen.append({p: root.fs.get_file_info(root.path("shards", "resumed", "_buckets", p)).mtime for p in maps}),
            real_reduce(*a, **k),
        ),
    )
    build_shards(root, cfg, name="resumed")
    assert seen == [before]  # the map files were not written again
    assert ids(root, "resumed", "train") == ids(root, "ref", "train") and ids(root, "resumed", "val") == ids(root, "ref", "val")
    first = json.loads(root.read_bytes("shards", "resumed", "manifest.json"))["splits"]["train"]["shards"][0]["path"]
    shard = root.path("shards", "resumed", first)
    groups = [pq.ParquetFile(shard).metadata.row_group(g).num_rows for g in range(pq.ParquetFile(shard).num_row_groups)]
    assert all(n == 64 for n in groups[:-1])  # full row groups of row_group_rows
