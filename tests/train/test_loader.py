"""The streaming loader: deterministic split over ranks × workers, packing, exact resume, bad documents."""

from __future__ import annotations

import itertools

import pyarrow.fs as pafs
import pytest
import torch
from helpers_train import shard_root, write_docs
from sites import real_site

from webmill.errors import UserError
from webmill.shards import CorpusRoot, DatasetReader
from webmill.shards.training import read_manifest
from webmill.train.feed import DeviceFeed
from webmill.train.loader import PackedLoader, list_units
from webmill.train.token_files import resolved_entries
from webmill.train.tokenizer import load, special_ids

FS = pafs.LocalFileSystem()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = shard_root(tmp_path_factory.mktemp("loader"), real_site("sqlite-3"), limit=80, row_group_rows=16)
    tok = load(root.path("shards", "main", "tokenizer"))
    units = list_units(FS, DatasetReader(root, "shards/main/train").paths())
    return root, tok, units


def loader(shards, units=None, **kw):
    _, tok, text_units = shards
    args = dict(seq_len=32, batch_rows=4, bos_id=special_ids(tok)["bos"], seed=3)
    return PackedLoader(FS, units or text_units, tok, **{**args, **kw})


def encoded_units(root):
    """The same row groups, read from the token files `webmill tokenizer train` wrote."""
    return list_units(FS, DatasetReader(root, "shards/main/train").paths(), resolved_entries(root, read_manifest(root, "main")))


def test_every_row_group_read_once_whatever_the_layout(shards):
    _, _, units = shards
    assert len(units) >= 4
    one = loader(shards, loop=False)
    list(one)
    parts = [loader(shards, rank=r, world_size=2, workers=2, loop=False) for r in range(2)]
    for p in parts:
        list(p)
    # no overlap, no gap: the four streams' row groups partition the set, so they tokenize the same documents
    streams = [set(p._stream_units(w, 0)) for p in parts for w in range(2)]
    assert set().union(*streams) == set(units)
    assert sum(len(s) for s in streams) == len(units)
    assert sum(p.stats["doc_tokens"] for p in parts) == one.stats["doc_tokens"]
    assert sum(p.stats["docs"] for p in parts) == one.stats["docs"]


def test_a_single_pass_ends_with_the_rows_left_over(shards):
    _, tok, units = shards
    one = loader(shards, loop=False, batch_rows=100_000)  # more rows than the split holds
    batches = list(one)
    assert len(batches) == 1 and 0 < batches[0].shape[0] < 100_000 and batches[0].shape[1] == 33
    assert batches[0].shape[0] == one.stats["rows"] == (one.stats["doc_tokens"] - one.stats["cropped_tokens"]) // 33


def test_rows_are_packed_with_a_bos_at_each_document_start(shards):
    _, tok, _ = shards
    bos = special_ids(tok)["bos"]
    first = next(iter(loader(shards)))
    assert first.shape == (4, 33) and first.dtype == torch.int64
    assert first[0, 0].item() == bos  # the stream starts at a document start
    batches = list(itertools.islice(iter(loader(shards, loop=False)), 50))
    assert sum(int((b == bos).sum()) for b in batches) > 1  # rows span documents


def test_resume_gives_the_batch_the_uninterrupted_run_would_see(shards):
    straight = loader(shards, workers=2, batch_rows=32, seq_len=64)
    it = iter(straight)
    for _ in range(17):
        next(it)
    state = straight.state_dict()
    expected = [next(it) for _ in range(60)]  # runs over an epoch boundary of the small set
    resumed = loader(shards, workers=2, batch_rows=32, seq_len=64)
    resumed.load_state_dict(state)
    got = list(itertools.islice(iter(resumed), 60))
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    assert any(s["epoch"] > 0 for s in resumed.state_dict()["streams"])


def test_state_from_another_layout_is_refused(shards):
    a = loader(shards)
    with pytest.raises(UserError, match="different layout"):
        loader(shards, workers=2).load_state_dict(a.state_dict())


def test_empty_and_very_long_documents(tmp_path, shards):
    _, tok, _ = shards
    root = CorpusRoot.open(str(tmp_path))
    long_doc = "The planner estimates the cost of each plan. " * 2000
    write_docs(root, "docs", ["", "short text here", long_doc, "", "another document"] * 2)
    units = list_units(FS, DatasetReader(root, "docs").paths())
    ld = PackedLoader(FS, units, tok, seq_len=128, batch_rows=1, bos_id=0, loop=False)
    rows = sum(b.shape[0] for b in ld)
    assert ld.stats["empty_docs"] == 4
    assert ld.stats["doc_tokens"] > 2 * 100 * 129 and ld.stats["cropped_tokens"] == 0  # split over rows, not lost
    assert rows == ld.stats["doc_tokens"] // 129
    cropped = PackedLoader(FS, units, tok, seq_len=32, batch_rows=2, bos_id=0, max_doc_tokens=100 * 32, loop=False)
    list(cropped)
    assert cropped.stats["cropped_tokens"] > 0  # a document longer than the crop loses only its tail


def test_no_shards_and_no_text_column(tmp_path, shards):
    _, tok, _ = shards
    with pytest.raises(UserError, match="no shards"):
        list_units(FS, [])
    root = CorpusRoot.open(str(tmp_path))
    import pyarrow as pa

    from webmill.shards import DatasetWriter

    DatasetWriter(root, "notext", pa.schema([("id", pa.string())])).write_unit("u", [pa.table({"id": ["a"]})])
    with pytest.raises(UserError, match="no text column"):
        list_units(FS, DatasetReader(root, "notext").paths())


def test_pretokenized_shards_give_the_rows_tokenizing_gives(shards):
    root, _, _ = shards
    units = encoded_units(root)
    assert all(u.tokens is not None for u in units)
    for kw in ({}, {"workers": 2, "rank": 1, "world_size": 2}, {"seq_len": 64, "max_doc_tokens": 100}):
        text, tokens = loader(shards, loop=False, **kw), loader(shards, units, loop=False, **kw)
        a, b = list(text), list(tokens)
        assert len(a) == len(b) > 0 and all(torch.equal(x, y) for x, y in zip(a, b))
        assert text.stats == tokens.stats and tokens.pretokenized and not text.pretokenized
    manifest = read_manifest(root, "main")
    one = loader(shards, units, loop=False)
    list(one)
    assert one.stats["doc_tokens"] - one.stats["docs"] == manifest["splits"]["train"]["tokens"]
    # exact resume from token files, across an epoch boundary
    straight = loader(shards, units, workers=2, batch_rows=32, seq_len=64)
    it = iter(straight)
    for _ in range(13):
        next(it)
    state = straight.state_dict()
    expected = [next(it) for _ in range(50)]
    resumed = loader(shards, units, workers=2, batch_rows=32, seq_len=64)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(expected, itertools.islice(iter(resumed), 50), strict=True))


def test_the_device_feed_keeps_the_position_of_the_batch_it_handed_on(shards):
    fed_loader, plain = loader(shards, workers=2), loader(shards, workers=2)
    feed, it = DeviceFeed(fed_loader, torch.device("cpu")), iter(plain)
    for _ in range(7):
        assert torch.equal(next(feed), next(it))
    assert fed_loader.state_dict() == plain.state_dict()
    feed.close()
