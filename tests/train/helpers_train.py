"""A corpus root with real documents, training shards and a tokenizer, for the train tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from webmill.sample import real_docs
from webmill.shards import CorpusRoot, DatasetWriter
from webmill.shards.config import ShardsConfig
from webmill.shards.schema import DOC_SCHEMA
from webmill.shards.training import build_shards
from webmill.train.tokenizer import train_for_shards

TEST_TRAIN = """
[shards]
row_group_rows = 64
val_fraction = 0.05
[train]
vocab_size = 1024
seq_len = 128
batch_tokens = 4096
micro_batch = 16
lr = 3e-3
warmup = 10
max_steps = 350
eval_every = 175
eval_batches = 4
checkpoint_every = 175
[sft]
synthesize_limit = 500
epochs = 3
eval_every = 1000
"""


def docs_root(path: Path, site: Path, limit: int | None = None, run: str = "a") -> CorpusRoot:
    root = CorpusRoot.open(str(path))
    dw = DatasetWriter(root, f"dedup/{run}/docs", DOC_SCHEMA, row_group_rows=256)
    dw.write_unit("docs", [real_docs(site, limit)])
    dw.finalize()
    return root


def shard_root(path: Path, site: Path, *, limit: int | None = None, vocab: int = 1024, row_group_rows: int = 64) -> CorpusRoot:
    root = docs_root(path, site, limit)
    build_shards(root, ShardsConfig(row_group_rows=row_group_rows, val_fraction=0.05))
    train_for_shards(root, None, vocab_size=vocab, max_chars=3_000_000, doc_cap=20_000)
    return root


def write_docs(root: CorpusRoot, dataset: str, texts: list[str]) -> None:
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    DatasetWriter(root, dataset, table.schema, row_group_rows=8).write_unit("u", [table])
