"""Dedup's scale contract: indices independent of commit order, fingerprints over the whole
[dedup] table, hostile shapes (one huge bucket, every document a near copy), kill -9 in
each phase and rerun giving the uninterrupted result."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_dedup import doc

from webmill.dedup.config import DedupConfig
from webmill.dedup.index import INDEX_DOCS, lsh_fingerprint, sign_part
from webmill.dedup.plan import IndexPlan
from webmill.dedup.stage import run_dedup
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
from webmill.shards.schema import DOC_SCHEMA


def sentences(n_docs: int, seed: int = 0) -> list[str]:
    """Distinct documents of 120 words drawn from Python's own documentation (present on every
    machine); drawn at random rather than cut from it, since its topics repeat passages."""
    from pydoc_data.topics import topics

    words = sorted(set(" ".join(topics.values()).split()))
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, 120)) for _ in range(n_docs)]


def write_units(root, name, texts, per_unit, start=0):
    w = DatasetWriter(root, name, DOC_SCHEMA, row_group_rows=64)
    for u in range(0, len(texts), per_unit):
        rows = [doc(start + i, t) for i, t in enumerate(texts[u : u + per_unit], start=u)]
        w.write_unit(f"unit-{u // per_unit:04d}", [pa.Table.from_pylist(rows, schema=DOC_SCHEMA)])
    w.finalize()
    return name


def outcome(root, run):
    rows = DatasetReader(root, f"dedup/{run}/clusters").read_all(columns=["id", "kept", "representative", "kind"]).to_pylist()
    kept = sorted(r["id"] for r in DatasetReader(root, f"dedup/{run}/docs").read_all(columns=["id"]).to_pylist())
    return kept, sorted((r["id"], r["kept"], r["representative"], r["kind"]) for r in rows)


def near_copy(text: str, k: int) -> str:
    words = text.split()
    words[k % len(words)] = "changed"
    return " ".join(words)


def test_indices_do_not_depend_on_commit_order(tmp_path, ray_local):
    texts = sentences(60)
    texts += [near_copy(t, i) for i, t in enumerate(texts[:20])]
    root = CorpusRoot.open(tmp_path / "root")
    write_units(root, "clean/a/docs", texts, per_unit=10)
    cfg = DedupConfig()
    # an interrupted run: the plan is written, then only the last part's signatures commit
    plan = IndexPlan.load(root, lsh_fingerprint(cfg))
    parts = plan.extend(root, ["clean/a/docs"])
    last = parts[-1]
    sign_part(root, last.unit, last.dataset, last.path, last.offset, cfg)
    s = run_dedup(root, ray_local, ["clean/a/docs"], "a", cfg)
    idx = np.sort(DatasetReader(root, INDEX_DOCS).read_all(columns=["idx"]).column("idx").to_numpy())
    assert np.array_equal(idx, np.arange(len(texts)))  # no index given twice, none skipped
    assert s["near_dups"] == 20 and s["kept"] == 60

    fresh = CorpusRoot.open(tmp_path / "fresh")
    write_units(fresh, "clean/a/docs", texts, per_unit=10)
    run_dedup(fresh, ray_local, ["clean/a/docs"], "a", cfg)
    assert outcome(root, "a") == outcome(fresh, "a")


def test_a_changed_setting_redoes_the_run(tmp_path, ray_local):
    texts = sentences(20)
    texts += texts[:5]  # exact copies
    root = CorpusRoot.open(tmp_path / "root")
    write_units(root, "clean/a/docs", texts, per_unit=10)
    s1 = run_dedup(root, ray_local, ["clean/a/docs"], "a", DedupConfig())
    assert s1["kept"] == 20
    assert run_dedup(root, ray_local, ["clean/a/docs"], "a", DedupConfig()).get("skipped")
    s2 = run_dedup(root, ray_local, ["clean/a/docs"], "a", DedupConfig(exact=False, near=False))
    kept = DatasetReader(root, "dedup/a/docs").num_rows
    assert s2["kept"] == kept == 25


def test_every_document_a_near_copy_of_one_other(tmp_path, ray_local):
    texts = sentences(300, seed=1)
    pairs = [t for i, t in enumerate(texts) for t in (t, near_copy(t, i))]
    root = CorpusRoot.open(tmp_path / "root")
    write_units(root, "clean/a/docs", pairs, per_unit=100)
    s = run_dedup(root, ray_local, ["clean/a/docs"], "a", DedupConfig())
    assert s["kept"] == 300 and s["near_dups"] == 300
    clusters = DatasetReader(root, "dedup/a/clusters").read_all(columns=["id", "cluster", "kept"]).to_pandas()
    sizes = clusters.groupby("cluster").size()
    assert (sizes == 2).all() and len(sizes) == 300
    assert (clusters.groupby("cluster")["kept"].sum() == 1).all()


@pytest.mark.slow
def test_one_bucket_of_100000_identical_documents(tmp_path, ray_local):
    root = CorpusRoot.open(tmp_path / "root")
    same = "the same short page served under a hundred thousand addresses"
    w = DatasetWriter(root, "clean/a/docs", DOC_SCHEMA, row_group_rows=4096)
    for u in range(10):
        rows = [doc(u * 10000 + i, same) for i in range(10000)]
        w.write_unit(f"unit-{u}", [pa.Table.from_pylist(rows, schema=DOC_SCHEMA)])
    w.write_unit("other", [pa.Table.from_pylist([doc(100000 + i, t) for i, t in enumerate(sentences(5))], schema=DOC_SCHEMA)])
    w.finalize()
    s = run_dedup(root, ray_local, ["clean/a/docs"], "a", DedupConfig())
    assert s["kept"] == 6 and s["largest_cluster"] == 100000
    kept = DatasetReader(root, "dedup/a/docs").read_all(columns=["id"]).column("id").to_pylist()
    assert "doc-00000" in kept  # the same fetch time everywhere: the smallest id wins


def _phase_files(root_dir: Path, run: str) -> set[str]:
    work = root_dir / "dedup" / run / "_work"
    return {p.stem for p in work.glob("*.json")} if work.is_dir() else set()


@pytest.mark.slow
def test_kill_9_in_each_phase_then_rerun(tmp_path, ray_local):
    """``webmill dedup`` killed (SIGKILL to its process group) in each phase, then rerun: the
    same kept documents and clusters as one uninterrupted run. A kill lands while signing
    (the first part committed), then as each later phase starts (the one before it committed):
    url, exact, near, components, output."""
    texts = sentences(200, seed=2)
    texts += [near_copy(t, i) for i, t in enumerate(texts[:40])] + texts[40:60]
    ref = CorpusRoot.open(tmp_path / "ref")
    write_units(ref, "clean/a/docs", texts, per_unit=20)
    run_dedup(ref, ray_local, ["clean/a/docs"], "a", DedupConfig())
    expected = outcome(ref, "a")

    root_dir = tmp_path / "root"
    root = CorpusRoot.open(root_dir)
    write_units(root, "clean/a/docs", texts, per_unit=20)
    webmill = str(Path(sys.executable).parent / "webmill")
    cmd = [webmill, "--root", str(root_dir), "-q", "dedup", "--input", "clean/a/docs", "--name", "a"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    killed_after = []
    # (sign-started, in url once the index is finalized, then after each phase's marker)
    for target in ("sign-started", "signed", "url", "exact", "near", "components"):
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline:
            done = _phase_files(root_dir, "a")
            signed = (root_dir / INDEX_DOCS / "_commits").is_dir() and any((root_dir / INDEX_DOCS / "_commits").iterdir())
            finalized = (root_dir / INDEX_DOCS / "_manifest.json").exists()
            if (target == "sign-started" and signed) or (target == "signed" and finalized) or target in done:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_after.append(target)
        proc.wait()
    assert len(killed_after) >= 4, killed_after  # the kills landed before the run finished
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert outcome(root, "a") == expected
    assert not (root_dir / "dedup" / "a" / "_work").exists()
