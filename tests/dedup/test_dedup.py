"""Dedup on real near-duplicate pages (accuracy against brute-force Jaccard), bad input, incremental runs."""

import datetime as dt
import itertools
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sites import CORPORA, real_site, sites_folder

from webmill.dedup import shingling
from webmill.dedup.config import DedupConfig
from webmill.dedup.minhash import choose_bands_rows, jaccard, signatures
from webmill.dedup.shingling import python_shingle_hashes, shingle_batch
from webmill.dedup.stage import run_dedup
from webmill.sample import real_docs
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
from webmill.shards.schema import DOC_SCHEMA


def write_docs(root, name, rows):
    table = pa.Table.from_pylist(rows, schema=DOC_SCHEMA) if isinstance(rows, list) else rows
    w = DatasetWriter(root, name, DOC_SCHEMA, row_group_rows=256)
    w.write_unit("all", [table])
    w.finalize()
    return name


def doc(i, text, url=None, day=10):
    return {
        "id": f"doc-{i:05d}",
        "url": url or f"http://a.test/{i}",
        "host": "a.test",
        "fetched_at": dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc),
        "crawl_id": "t",
        "title": "",
        "text": text,
        "lang": "en",
        "lang_score": 1.0,
        "n_chars": len(text),
        "n_words": len(text.split()),
        "source": {"warc": "w", "offset": i, "length": 1},
    }


VARIED = [
    "The quick  brown\tfox jumps over the lazy dog again and again " * 3,
    "",
    "one",
    "two words",
    "一二三四五六七八九十" * 5,
    "Héllo wörld\u00a0non\u2003breaking  spaces here\u3000and there",
    "  lead and trail  ",
    "e\u0301cole (not NFC) is école once normalized, so these match",
    "x" * 50,
    None,
    "\u3000全角\u3000スペース\u3000で区切る日本語の文章です",
    "tab\x1fseparated\x85words and more words here",
]


def test_batch_shingles_equal_the_per_document_definition(monkeypatch):
    texts = VARIED * 3
    monkeypatch.setattr(shingling, "CHUNK_BYTES", 200)  # many slices: their offsets must line up
    got = shingle_batch(pa.array(texts, pa.string()), 5)
    assert len(got) == len(texts)
    for i, text in enumerate(texts):
        assert got.hashes[got.offsets[i] : got.offsets[i + 1]].tolist() == python_shingle_hashes(text or "", 5), repr(text)
    sliced = shingle_batch(pa.array(texts, pa.string()).slice(3, 6), 5)  # an Arrow slice: offsets not at zero
    assert sliced.hashes.tolist() == got.hashes[got.offsets[3] : got.offsets[9]].tolist()
    # exact: the same token sequence whatever the case and spacing; NFC-equal texts are equal
    ex = shingle_batch(pa.array(["A  b\tC", "a b c", "a b d", "école", "e\u0301cole"]), 5).exact
    assert ex[0] == ex[1] != ex[2] and ex[3] == ex[4]


def test_signatures_estimate_jaccard_and_do_not_depend_on_the_batch():
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(5000)]
    base = [" ".join(rng.choice(vocab, 400)) for _ in range(60)]
    copies = []
    for k, text in enumerate(base):  # a copy with a share of the words replaced
        words = text.split()
        for i in rng.choice(len(words), int(len(words) * (k % 6) / 20), replace=False):
            words[i] = "new" + str(i)
        copies.append(" ".join(words))
    sh = shingle_batch(pa.array(base + copies), 5)
    sig = signatures(sh, 112, 1)
    sets = sh.sets32()
    est = (sig[:60] == sig[60:]).mean(axis=1)
    true = np.array([jaccard(sets[i], sets[60 + i]) for i in range(60)])
    assert true.min() < 0.3 and true.max() == 1.0
    assert np.abs(est - true).mean() < 0.05
    alone = signatures(shingle_batch(pa.array([copies[7]]), 5), 112, 1)
    assert np.array_equal(alone[0], sig[67])
    assert np.array_equal(signatures(shingle_batch(pa.array(["", None]), 5), 112, 1), np.full((2, 112), 0xFFFFFFFF))


def test_band_helper_favours_recall_at_threshold():
    b, r = choose_bands_rows(0.8, 112)
    assert b * r <= 112
    p = 1 - (1 - 0.8**r) ** b
    assert p > 0.95


def two_releases(tmp_path) -> Path:
    """Pages of one library in two releases, most identical and some slightly different: the C++
    manual's versions 11 and 12, or where ../shared/corpora is absent the offline site's pages of the
    libraries pip vendors and of their separately installed releases (pip._vendor.rich.* and rich.*)."""
    if CORPORA is not None:
        return CORPORA / "libstdcxx-manual"
    from webmill.pylib_site import VENDORED

    pylib, folder = sites_folder() / "pylib", tmp_path / "two-releases"
    folder.mkdir()
    for name in VENDORED:
        vendored = sorted(pylib.glob(f"pip._vendor.{name}.*html"))
        installed = {p.name for p in pylib.glob(f"{name}.*html")}
        for page in vendored:
            twin = page.name.removeprefix("pip._vendor.")
            if twin in installed:
                shutil.copy(page, folder / page.name)
                shutil.copy(pylib / twin, folder / twin)
    return folder


@pytest.mark.slow
def test_accuracy_on_two_versions_of_a_manual(tmp_path, ray_local):
    docs = real_docs(two_releases(tmp_path))
    root = CorpusRoot.open(tmp_path / "root")
    write_docs(root, "clean/libstdcxx/docs", docs)
    b, r = choose_bands_rows(0.8, 112)
    cfg = DedupConfig(threshold=0.8, bands=b, rows=r, exact=False, url=False)
    s = run_dedup(root, ray_local, ["clean/libstdcxx/docs"], "acc", cfg)
    ids, texts = docs.column("id").to_pylist(), docs.column("text").to_pylist()
    sh = shingle_batch(pa.array(texts), 5).sets32()
    truth = {(ids[i], ids[j]) for i, j in itertools.combinations(range(len(ids)), 2) if jaccard(sh[i], sh[j]) >= 0.8}
    pairs = DatasetReader(root, "dedup/acc/pairs").read_all().to_pylist()
    marked = {tuple(sorted((p["id_a"], p["id_b"]))) for p in pairs}
    truth = {tuple(sorted(t)) for t in truth}
    tp = len(marked & truth)
    precision, recall = tp / max(len(marked), 1), tp / max(len(truth), 1)
    print(f"near-duplicate pairs: truth {len(truth)}, marked {len(marked)}, precision {precision:.3f}, recall {recall:.3f}")
    assert len(truth) > 50
    assert precision >= 0.98 and recall >= 0.95
    assert s["kept"] < s["documents_in"]


def japanese_texts() -> list[str]:
    """Real Japanese prose: the Debian handbook's translation, or where ../shared/corpora is absent
    the paragraph about Python that CPython's own test suite keeps for its codec tests."""
    if CORPORA is not None:
        return real_docs(CORPORA / "debian-handbook" / "ja-JP", limit=40).column("text").to_pylist()
    found = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings" / "euc_jp-utf8.txt"
    return [found.read_text(encoding="utf-8")]


def test_bad_input_and_incremental(tmp_path, ray_local):
    paras = real_docs(real_site("postgresql-15"), limit=60 if CORPORA is not None else 600).column("text").to_pylist()
    base = [p for p in paras if len(p.split()) > 200][:20]
    assert len(base) >= 16
    rows = [doc(0, ""), doc(1, "word"), doc(2, base[0] * 200)]  # empty, one word, a ~5 MB document
    ja = max(japanese_texts(), key=lambda t: sum(ord(c) > 0x3000 for c in t))
    ja = "".join(c for c in ja if ord(c) > 0x3000)  # the Japanese characters only: no spaces at all
    rows += [doc(3, ja), doc(4, ja + "少し違う。")]
    rows += [doc(10 + i, base[1], url=f"http://mirror{i}.test/page") for i in range(1000)]  # one text, 1,000 URLs
    rows += [doc(2000 + i, t) for i, t in enumerate(base[2:12])]
    root = CorpusRoot.open(tmp_path / "root")
    write_docs(root, "clean/a/docs", rows)
    cfg = DedupConfig()
    s = run_dedup(root, ray_local, ["clean/a/docs"], "a", cfg)
    kept = {r["id"] for r in DatasetReader(root, "dedup/a/docs").read_all(columns=["id"]).to_pylist()}
    assert "doc-00002" in kept and "doc-00001" in kept
    assert len([i for i in kept if "doc-0001" <= i < "doc-0101" or "doc-00010" <= i <= "doc-01009"]) == 1
    assert s["exact_dups"] >= 999
    assert ("doc-00003" in kept) != ("doc-00004" in kept)  # character shingles for a script without spaces
    clusters = DatasetReader(root, "dedup/a/clusters").read_all().to_pylist()
    assert len(clusters) == len(rows) and sum(c["kept"] for c in clusters) == len(kept)

    # a second crawl: only the new documents are signed; existing documents win every tie
    new = [doc(5000, base[2], url="http://b.test/copy", day=2)] + [doc(5001 + i, t) for i, t in enumerate(base[12:16])]
    write_docs(root, "clean/b/docs", new)
    s2 = run_dedup(root, ray_local, ["clean/b/docs"], "b", cfg)
    assert s2["new_units"] == 1 and s2["indexed_docs"] == len(rows) + len(new)
    kept_b = {r["id"] for r in DatasetReader(root, "dedup/b/docs").read_all(columns=["id"]).to_pylist()}
    assert "doc-05000" not in kept_b  # an earlier fetch, but the published copy stays
    assert len(kept_b) == 4


def test_dedup_reports_each_phase_and_its_parts_as_it_goes(tmp_path, ray_local):
    from webmill.dedup.progress import DedupProgress

    words = [f"w{i}" for i in range(400)]
    texts = [" ".join(words[i * 7 % 300 : i * 7 % 300 + 90]) for i in range(40)]
    rows = [doc(i, t) for i, t in enumerate(texts)] + [doc(100 + i, texts[i]) for i in range(5)]  # 5 exact copies
    root = CorpusRoot.open(tmp_path / "root")
    write_docs(root, "clean/p/docs", rows)
    events, tally = [], DedupProgress()
    lines = []
    run_dedup(
        root,
        ray_local,
        ["clean/p/docs"],
        "p",
        DedupConfig(),
        on_progress=lambda e, info: (events.append(e), lines.append(tally.update(e, info))),
    )
    assert events[0] == "plan" and events.count("sign") == 1 and "components" in events and events[-1] == "output"
    assert [e for e in events if e in ("url", "exact", "near", "components")] == ["url", "exact", "near", "components"]
    assert "signing (MinHash), 1/1 parts, 45 documents" in lines[events.index("sign")]
    assert lines[-1].startswith("dedup: writing documents, 1/1 parts (")
    assert "exact members" in lines[-1] and "clusters" in lines[-1]
