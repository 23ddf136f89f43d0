"""The shuffle through the root: each partition's rows come back whole, and only them."""

import numpy as np
import pyarrow as pa

from webmill.dedup.exchange import POINTER_SCHEMA, read_pieces, write_pieces
from webmill.shards import CorpusRoot


def test_each_partition_reads_back_exactly_its_rows_from_every_map_file(tmp_path):
    root = CorpusRoot.open(tmp_path / "root")
    rng = np.random.default_rng(3)
    maps = [
        pa.table({"p": rng.integers(0, 7, 500), "v": rng.integers(0, 1 << 40, 500), "s": [f"row{m}-{i}" for i in range(500)]})
        for m in range(4)
    ]
    pointers = pa.concat_tables([write_pieces(root, "ex", t) for t in maps])
    assert pointers.schema == POINTER_SCHEMA
    assert len(root.listdir("ex")) == 4
    everything = pa.concat_tables(maps)
    for p in range(7):
        mine = pointers.filter(pa.compute.equal(pointers.column("p"), p))
        got = read_pieces(root, "ex", mine)
        want = everything.filter(pa.compute.equal(everything.column("p"), p))
        assert sorted(got.column("s").to_pylist()) == sorted(want.column("s").to_pylist())
        assert set(got.column("p").to_pylist()) == {p}


def test_empty_input_writes_nothing_and_a_named_rewrite_replaces_its_file(tmp_path):
    root = CorpusRoot.open(tmp_path / "root")
    schema = pa.schema([("p", pa.int64()), ("v", pa.int64())])
    assert write_pieces(root, "ex", schema.empty_table()).num_rows == 0
    assert not root.exists("ex")
    assert read_pieces(root, "ex", POINTER_SCHEMA.empty_table(), schema).num_rows == 0
    write_pieces(root, "ex", pa.table({"p": [1, 1], "v": [1, 2]}, schema=schema), name="a000001")
    again = write_pieces(root, "ex", pa.table({"p": [1, 2], "v": [3, 4]}, schema=schema), name="a000001")
    assert root.listdir("ex") == ["a000001.arrows"]  # a retried task replaces, never adds
    assert read_pieces(root, "ex", again).column("v").to_pylist() == [3, 4]
