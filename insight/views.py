"""The root's Parquet datasets as DuckDB views.

    docs        deduplicated documents (all dedup runs; clean documents where no dedup ran)
    clean_docs  documents kept by the clean stage
    excluded    documents the clean stage dropped, with drop_reason and the signal that tripped
    clusters    every deduplicated document with its cluster, kind of duplicate and whether it was kept
    pairs       verified near-duplicate pairs with their Jaccard similarity
    crawl_log   one row per URL a crawl attempted, with its outcome
    shards      training shards, with the shard set name and split

Only committed parts are read (through the shard store's manifests). Each view
is a pyarrow dataset registered with DuckDB, so it works on any filesystem the
root is on and DuckDB reads only the columns a query names.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from webmill.shards import layout
from webmill.shards.manifest import is_dataset, run_datasets
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot

# view → (stage folder, dataset inside each run folder)
RUN_DATASETS = layout.PER_RUN_DATASETS
VIEWS = ("docs", "clean_docs", "excluded", "clusters", "pairs", "crawl_log", "shards")


def sql_literal(value: str) -> str:
    """A SQL string literal for DuckDB: folder names come from the root, which anyone with
    write access to it shapes, so they are quoted, never pasted."""
    return "'" + str(value).replace("'", "''") + "'"


def arrow_dataset(root: CorpusRoot, names: list[str]) -> pads.Dataset | None:
    per_dataset = [DatasetReader(root, n).paths() for n in names]
    paths = [p for ps in per_dataset for p in ps]
    if not paths:
        return None
    schema = pa.unify_schemas([pq.read_schema(ps[0], filesystem=root.fs) for ps in per_dataset if ps])
    return pads.dataset(paths, filesystem=root.fs, format="parquet", schema=schema)


def connect(root: CorpusRoot):
    """A DuckDB connection with one view per dataset kind that has data; returns (con, {view: source datasets})."""
    import duckdb

    con = duckdb.connect()
    made: dict[str, list[str]] = {}
    for view, (stage, name) in RUN_DATASETS.items():
        names = run_datasets(root, stage, name)
        ds = arrow_dataset(root, names)
        if ds is not None:
            con.register(f"_{view}", ds)
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}")
            made[view] = names
    source = "dedup_docs" if "dedup_docs" in made else "clean_docs" if "clean_docs" in made else None
    if source:
        con.execute(f"CREATE VIEW docs AS SELECT * FROM {source}")
        made["docs"] = made[source]
    selects, shard_sets = [], []
    for set_name in root.listdir(layout.SHARDS):
        for split in ("train", "val"):
            split_ds = layout.shard_split(set_name, split)
            ds = arrow_dataset(root, [split_ds]) if is_dataset(root, split_ds) else None
            if ds is None:
                continue
            key = f"_shards_{len(selects)}"
            con.register(key, ds)
            selects.append(f"SELECT {sql_literal(set_name)} AS shard_set, {sql_literal(split)} AS split, * FROM {key}")
            shard_sets.append(split_ds)
    if selects:
        con.execute("CREATE VIEW shards AS " + " UNION ALL BY NAME ".join(selects))
        made["shards"] = shard_sets
    return con, made
