import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from sites import real_site

from webmill.errors import CorruptPartError, RootError
from webmill.sample import real_docs
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter, Manifest
from webmill.shards.schema import DOC_SCHEMA


@pytest.fixture(scope="module")
def docs():
    return real_docs(real_site("postgresql-15"), limit=400)


def write_in_units(root, docs, n_units=4, **kw):
    w = DatasetWriter(root, "clean/test", DOC_SCHEMA, **kw)
    per = -(-docs.num_rows // n_units)
    for u in range(n_units):
        w.write_unit(f"input-{u}.warc.gz", [docs.slice(u * per, per)], fingerprint="fp1", stats={"docs": min(per, docs.num_rows - u * per)})
    return w


def test_round_trip_real_documents_local(tmp_path, docs):
    root = CorpusRoot.open(tmp_path / "root")
    w = write_in_units(root, docs, target_bytes=64 << 10, row_group_rows=32)
    doc = w.finalize()
    assert doc["rows"] == docs.num_rows and doc["stats"]["docs"] == docs.num_rows
    assert len(doc["parts"]) > 4  # parts rolled at the size target
    r = DatasetReader(root, "clean/test", verify=True)
    back = r.read_all()
    assert back.num_rows == docs.num_rows
    assert sorted(back["id"].to_pylist()) == sorted(docs["id"].to_pylist())
    assert back.sort_by("id").equals(docs.sort_by("id"))
    # row groups are the streaming unit
    sizes = [b.num_rows for b in r.iter_batches(columns=["id"])]
    assert max(sizes) <= 32
    # the ecosystem's own reader sees the same rows
    assert pq.read_table(tmp_path / "root" / "clean" / "test").num_rows == docs.num_rows


def test_round_trip_through_another_filesystem(tmp_path, docs):
    base = tmp_path / "bucket"
    base.mkdir()
    fs = pafs.SubTreeFileSystem(str(base), pafs.LocalFileSystem())
    root = CorpusRoot.from_filesystem(fs, "corpus")
    write_in_units(root, docs, n_units=2, target_bytes=128 << 10).finalize()
    back = DatasetReader(root, "clean/test", verify=True).read_all()
    assert back.sort_by("id").equals(docs.sort_by("id"))
    assert (base / "corpus" / "clean" / "test" / "_manifest.json").exists()


def test_file_uri_root(tmp_path, docs):
    root = CorpusRoot.open(f"file://{tmp_path}/uri-root")
    write_in_units(root, docs.slice(0, 50), n_units=1).finalize()
    assert DatasetReader(root, "clean/test").num_rows == 50


def test_rerun_skips_committed_units(tmp_path, docs):
    root = CorpusRoot.open(tmp_path / "root")
    w = write_in_units(root, docs)
    before = {p["path"]: os.stat(root.path("clean/test", p["path"])).st_mtime_ns for p in w.manifest().parts}
    assert w.write_unit("input-0.warc.gz", [docs.slice(0, 5)], fingerprint="fp1") is None
    after = {p["path"]: os.stat(root.path("clean/test", p["path"])).st_mtime_ns for p in w.manifest().parts}
    assert before == after
    # a changed input fingerprint rewrites that unit only
    w.write_unit("input-0.warc.gz", [docs.slice(0, 5)], fingerprint="fp2")
    m = w.manifest()
    assert m.units["input-0.warc.gz"].rows == 5 and m.units["input-1.warc.gz"].fingerprint == "fp1"
    assert DatasetReader(root, "clean/test").read_all().num_rows == m.rows


def test_failed_unit_leaves_nothing_visible(tmp_path, docs):
    root = CorpusRoot.open(tmp_path / "root")
    w = DatasetWriter(root, "clean/test", DOC_SCHEMA, target_rows=10, row_group_rows=10)
    with pytest.raises(RuntimeError):
        with w.unit("bad") as out:
            out.write(docs.slice(0, 25))
            raise RuntimeError("extractor crashed")
    assert w.manifest().rows == 0
    assert DatasetReader(root, "clean/test").read_all().num_rows == 0


def test_corrupt_part_error_names_the_file(tmp_path, docs):
    root = CorpusRoot.open(tmp_path / "root")
    w = write_in_units(root, docs, n_units=1)
    part = w.manifest().parts[0]["path"]
    path = tmp_path / "root" / "clean" / "test" / part
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CorruptPartError) as e:
        DatasetReader(root, "clean/test").read_all()
    assert part in str(e.value)
    path.write_bytes(b"\0" * len(data))  # same size, garbage
    with pytest.raises(CorruptPartError, match=part):
        DatasetReader(root, "clean/test", verify=True).read_all()


def test_missing_root(tmp_path):
    with pytest.raises(RootError, match="does not exist"):
        CorpusRoot.open(tmp_path / "nope", create=False)
    created = CorpusRoot.open(tmp_path / "new" / "root")
    assert (tmp_path / "new" / "root").is_dir() and created.exists()


def test_unwritable_root(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(RootError, match="cannot create|is a file"):
        CorpusRoot.open(f / "root")
    if os.geteuid() == 0:
        target = "/sys/kernel"  # exists, and root cannot create files in sysfs
        if not os.path.isdir(target):
            pytest.skip("no read-only directory to test with")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = str(ro)
    with pytest.raises(RootError, match="not writable"):
        CorpusRoot.open(target)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from webmill.sample import real_docs
    from webmill.shards import CorpusRoot, DatasetWriter
    from webmill.shards.schema import DOC_SCHEMA
    docs = real_docs(__import__("pathlib").Path({site!r}), limit=120)
    root = CorpusRoot.open({root!r})
    w = DatasetWriter(root, "clean/kill", DOC_SCHEMA, target_rows=10, row_group_rows=10)
    for u in range(4):
        unit = f"unit-{{u}}"
        if w.is_committed(unit):
            continue
        with w.unit(unit) as out:
            out.write(docs.slice(u * 30, 15))
            if {pause} and u == 2:
                print("PART-RENAMED-NOT-COMMITTED", flush=True)
                time.sleep(60)
            out.write(docs.slice(u * 30 + 15, 15))
    w.finalize()
    print("DONE", flush=True)
""")


def test_kill_between_part_write_and_commit_then_rerun(tmp_path):
    site = real_site("postgresql-15")
    tests = os.path.dirname(os.path.dirname(__file__))
    root = str(tmp_path / "root")

    def script(pause):
        return KILL_SCRIPT.format(tests=tests, site=str(site), root=root, pause=pause)

    p = subprocess.Popen([sys.executable, "-c", script(True)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "PART-RENAMED" not in line:
        line = p.stdout.readline()
    assert "PART-RENAMED" in line
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    r = CorpusRoot.open(root)
    m = Manifest.load(r, "clean/kill")
    assert set(m.units) == {"unit-0", "unit-1"}
    # a part of unit-2 is on disk, but no reader sees it
    on_disk = [n for n in os.listdir(os.path.join(root, "clean/kill")) if n.endswith(".parquet")]
    assert len(on_disk) > sum(len(u.parts) for u in m.units.values())
    assert DatasetReader(r, "clean/kill").num_rows == 60
    out = subprocess.run([sys.executable, "-c", script(False)], capture_output=True, text=True, timeout=120)
    assert "DONE" in out.stdout, out.stderr
    table = DatasetReader(r, "clean/kill", verify=True).read_all()
    assert table.num_rows == 120
    assert len(set(table["id"].to_pylist())) == 120
    on_disk = [n for n in os.listdir(os.path.join(root, "clean/kill")) if n.endswith(".parquet")]
    assert len(on_disk) == len(Manifest.load(r, "clean/kill").parts)
