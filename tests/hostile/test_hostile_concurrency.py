"""Concurrent runs on one root: one writer per stage run, atomic job claims, and a part
changed after its commit refused on read."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from webmill.crawl.catalog import Catalog
from webmill.errors import CorruptPartError
from webmill.locks import RunLocked, run_lock
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter


def test_a_second_run_of_one_stage_run_is_refused_at_once(tmp_path, hostile):
    hostile.tried("a second `webmill clean --name x` while one runs")
    root = CorpusRoot.open(tmp_path / "root")
    warc = tmp_path / "in.warc"
    warc.write_bytes(b"")
    with run_lock(root, "clean", "x"):
        with pytest.raises(RunLocked):
            with run_lock(root, "clean", "x"):
                pass
        out = subprocess.run(
            [sys.executable, "-m", "webmill", "--root", root.base, "clean", "--warc", warc, "--name", "x"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 2 and "being written by another webmill process" in out.stderr, out.stderr
        with run_lock(root, "clean", "y"):  # another run of the stage is free to go
            pass
    with run_lock(root, "clean", "x"):  # released
        pass


def test_lease_on_an_object_store_root(s3, hostile):
    hostile.tried("a second writer of one stage run on an s3:// root")
    root = CorpusRoot.open(s3.uri("leases"))
    with run_lock(root, "dedup", "x"):
        with pytest.raises(RunLocked):
            with run_lock(root, "dedup", "x"):
                pass
        assert root.exists("dedup", "x", ".webmill-lease.json")
    assert not root.exists("dedup", "x", ".webmill-lease.json")
    with run_lock(root, "dedup", "x"):
        pass


def test_job_claims_are_atomic(tmp_path, hostile):
    hostile.tried("two schedulers claiming one job", "a job cancelled before its turn")
    root = CorpusRoot.open(tmp_path / "root")
    a, b = Catalog.open(root), Catalog.open(root)
    a.add_job("j1", {"seeds": []})
    a.add_job("j2", {"seeds": []})
    assert [a.claim("j1"), b.claim("j1")] == [True, False]
    b.set_state("j2", "cancelled")
    assert a.claim("j2") is False and a.job("j2")["state"] == "cancelled"


def test_a_part_rewritten_after_its_commit_is_refused(tmp_path, hostile):
    hostile.tried("a part overwritten after its commit record (two writers)")
    root = CorpusRoot.open(tmp_path / "root")
    schema = pa.schema([("n", pa.int64())])
    w = DatasetWriter(root, "d", schema)
    with w.unit("u", "fp") as out:
        out.write(pa.table({"n": [1]}, schema=schema))
    part = DatasetReader(root, "d").parts[0]
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"n": [1, 2, 3]}, schema=schema), root.path("d", part["path"]))
    with pytest.raises(CorruptPartError, match="checksum"):
        DatasetReader(root, "d", verify=True).read_all()
    with pytest.raises(CorruptPartError, match="checksum"):
        DatasetReader(root, "d").read_all()  # WEBMILL_VERIFY_PARTS=1 in the tests


def test_a_lease_fences_a_run_that_lost_it(s3, hostile):
    """#29 finding 8: a holder stopped past its lease (a paused VM) kept writing checkpoints and
    `latest` after another run took the lease. Every commit point checks the lease first, in this
    process and in every copy of the root sent to a Ray task or a training worker."""
    import json
    import pickle
    import time

    from webmill.locks import LEASE, LeaseLost
    from webmill.train.runfiles import RunFiles

    hostile.tried("a run that lost its lease commits a checkpoint", "a run whose lease ran out commits a record")
    root = CorpusRoot.open(s3.uri())
    with run_lock(root, "runs", "x"):
        root.write_bytes_atomic(b"step-000001", "runs", "x", "checkpoints", "latest")
        task_copy = pickle.loads(pickle.dumps(root))  # what a Ray task or a training worker holds
        files = RunFiles.of({"root": root.uri, "run": "runs/x", "_fences": dict(root.fences)})
        mine = json.loads(root.read_bytes("runs", "x", LEASE))
        # the run stalls past its lease; another run takes the folder over
        root.write_bytes_atomic(json.dumps({"owner": "other", "pid": 4242, "host": "elsewhere", "expires": time.time() + 120}).encode(),
                                "runs", "x", LEASE)  # fmt: skip
        for who in (root, task_copy, files.root):
            with pytest.raises(LeaseLost, match="lost its lease .*pid 4242 on elsewhere"):
                who.write_bytes_atomic(b"step-000002", "runs", "x", "checkpoints", "latest")
        with pytest.raises(LeaseLost):
            DatasetWriter(task_copy, "runs/x/ds", pa.schema([("n", pa.int64())])).write_unit("u", [pa.table({"n": [1]})])
        assert root.read_bytes("runs", "x", "checkpoints", "latest") == b"step-000001"
        assert not root.exists("runs", "x", "ds", "_commits")
        # still its own, but run out (the renewing thread stalled with the process)
        root.write_bytes_atomic(json.dumps({**mine, "expires": time.time() - 1}).encode(), "runs", "x", LEASE)
        with pytest.raises(LeaseLost, match="ran out"):
            task_copy.write_bytes_atomic(b"step-000002", "runs", "x", "summary.json")
        root.write_bytes_atomic(json.dumps({**mine, "expires": time.time() + 120}).encode(), "runs", "x", LEASE)
        task_copy.write_bytes_atomic(b"step-000002", "runs", "x", "checkpoints", "latest")  # its own again: it commits
        root.write_bytes_atomic(b"elsewhere", "runs", "y", "latest")  # outside the leased folder: no check
