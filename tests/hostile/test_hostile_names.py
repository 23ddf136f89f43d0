"""Hostile names and records: paths that would leave the root, SQL in folder names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from webmill.errors import CorruptPartError
from webmill.shards import CorpusRoot, Manifest
from webmill.shards.root import PathOutsideRoot


def webmill(*args):
    return subprocess.run([sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "argv",
    [
        ["clean", "--warc", "{warc}", "--name", "../../escaped"],
        ["clean", "--crawl", "../../etc"],
        ["dedup", "--input", "../outside/docs"],
        ["dedup", "--input", "clean/x/docs", "--name", "/tmp/escaped"],
        ["train", "--shards", "../../outside", "--name", "x"],
        ["train", "--resume", "../../escaped"],
        ["crawl", "status", "../../escaped"],
        ["crawl", "cancel", "..%2F..%2Fescaped"],
    ],
)
def test_names_that_leave_the_root_get_one_line_and_exit_2(tmp_path, argv, hostile):
    hostile.tried("name " + " ".join(argv))
    warc = tmp_path / "in.warc.gz"
    warc.write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = webmill("--root", tmp_path / "root", *[a.format(warc=warc) for a in argv])
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in out.stderr, out.stderr
    assert {p.name for p in tmp_path.iterdir()} <= set(before) | {"root"}
    assert not (tmp_path / "escaped").exists()


def test_root_paths_never_leave_the_root(tmp_path, hostile):
    hostile.tried("'..' path part", "absolute path part", "NUL in a path part")
    root = CorpusRoot.open(tmp_path / "root")
    for parts in [("..", "x"), ("shards", "../../x"), ("shards", "/etc/passwd"), ("a\x00b",)]:
        with pytest.raises(PathOutsideRoot):
            root.path(*parts)
    assert root.path("shards", "a/../b") == root.path("shards", "b")


def test_a_crafted_commit_record_is_corrupt_and_deletes_nothing(tmp_path, hostile):
    hostile.tried("commit record whose part path climbs out of the root")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    root = CorpusRoot.open(tmp_path / "root")
    for split in ("train", "val"):
        rec = {
            "unit": "bucket-99999",
            "parts": [{"path": "../../../../victim", "rows": 1, "bytes": 1, "sha256": "x"}],
            "fingerprint": "f",
            "stats": {},
            "committed_at": 1.0,
        }
        root.write_bytes_atomic(json.dumps(rec).encode(), f"shards/main/{split}", "_commits", "bucket-99999.json")
    with pytest.raises(CorruptPartError):
        Manifest.load(root, "shards/main/train")
    assert (victim / "keep.txt").read_text() == "precious"


def test_sql_in_shard_set_folder_names_is_data(tmp_path, hostile):
    """A folder name is quoted, never pasted into the SQL of the read-only verbs."""
    import pyarrow as pa

    from webmill.insight.views import connect
    from webmill.shards import DatasetWriter
    from webmill.shards.training import SHARD_SCHEMA

    evil = ["it's", "x' AS shard_set, 1 AS split FROM range(1); COPY (SELECT 42) TO 'pwned.csv'; --"]
    hostile.tried("apostrophe in a shard-set folder name", "SQL in a shard-set folder name")
    root = CorpusRoot.open(tmp_path / "root")
    row = {f.name: None for f in SHARD_SCHEMA} | {"id": "a", "text": "hello", "n_chars": 5}
    for name in evil:
        w = DatasetWriter(root, f"shards/{name}/train", SHARD_SCHEMA)
        with w.unit("u", "fp") as out:
            out.write(pa.Table.from_pylist([row], schema=SHARD_SCHEMA))
    con, made = connect(root)
    got = sorted(r[0] for r in con.execute("SELECT shard_set FROM shards").fetchall())
    assert got == sorted(evil)
    for cwd in (tmp_path, tmp_path / "root"):
        assert not (cwd / "pwned.csv").exists()
    out = webmill("--root", tmp_path / "root", "stats", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
