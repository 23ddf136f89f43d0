"""Where every stage keeps its datasets in a corpus root: each path is named here and only here.

::

    crawl/ID/warc/            the WARC files of crawl ID                      (crawl)
    crawl/ID/log              one row per URL tried, with its outcome          (crawl)
    crawl/ID/state/           the workers' frontiers and progress              (crawl)
    clean/RUN/docs            the documents kept                               (clean)
    clean/RUN/excluded        the documents dropped, each with its reason      (clean)
    dedup/RUN/docs            the documents kept                               (dedup)
    dedup/RUN/clusters        every document's cluster and representative      (dedup)
    dedup/RUN/pairs           the near-duplicate pairs found                   (dedup)
    dedup/RUN/_work/          the run's intermediate files                     (dedup)
    dedup/_index/             every run's signatures, for incremental runs     (dedup)
    shards/NAME/              a shard set: manifest.json, train/, val/, tokenizer/, tokens/  (shard, tokenizer)
    runs/NAME/                a training run: checkpoints, metrics.jsonl, final/    (train, sft)
    sweeps/NAME/              a scaling-law sweep: sweep.json, runs/<point>/        (sweep)

Names (crawl ids, run names, shard-set names) are validated where users give them
(``webmill.names``); ``CorpusRoot.path`` refuses any path that would leave the root.
"""

from __future__ import annotations

CRAWL, CLEAN, DEDUP, SHARDS, RUNS, SWEEPS = "crawl", "clean", "dedup", "shards", "runs", "sweeps"


def crawl(crawl_id: str) -> str:
    return f"{CRAWL}/{crawl_id}"


def crawl_warcs(crawl_id: str) -> str:
    return f"{crawl(crawl_id)}/warc"


def crawl_log(crawl_id: str) -> str:
    return per_run("crawl_log", crawl_id)


# the datasets every run of a stage makes, by the name the SQL views give them: (stage folder, dataset)
PER_RUN_DATASETS = {
    "clean_docs": (CLEAN, "docs"),
    "excluded": (CLEAN, "excluded"),
    "dedup_docs": (DEDUP, "docs"),
    "clusters": (DEDUP, "clusters"),
    "pairs": (DEDUP, "pairs"),
    "crawl_log": (CRAWL, "log"),
}


def per_run(view: str, run: str) -> str:
    """``<stage>/<run>/<dataset>`` of one of PER_RUN_DATASETS."""
    stage, name = PER_RUN_DATASETS[view]
    return f"{stage}/{run}/{name}"


def clean_docs(run: str) -> str:
    return per_run("clean_docs", run)


def clean_excluded(run: str) -> str:
    return per_run("excluded", run)


def dedup_docs(run: str) -> str:
    return per_run("dedup_docs", run)


def dedup_clusters(run: str) -> str:
    return per_run("clusters", run)


def dedup_pairs(run: str) -> str:
    return per_run("pairs", run)


def dedup_work(run: str) -> str:
    return f"{DEDUP}/{run}/_work"


DEDUP_INDEX = f"{DEDUP}/_index"
DEDUP_INDEX_DOCS = f"{DEDUP_INDEX}/docs"
DEDUP_INDEX_BANDS = f"{DEDUP_INDEX}/bands"
DEDUP_PLAN = f"{DEDUP_INDEX}/_plan.json"

SHARD_MANIFEST = "manifest.json"
SHARD_TOKENS = "tokens"  # a shard set's pre-tokenized parts (webmill.train.token_files)


def shard_set(name: str) -> str:
    return f"{SHARDS}/{name}"


def shard_split(name: str, split: str) -> str:
    return f"{shard_set(name)}/{split}"


def shard_manifest(name: str) -> str:
    return f"{shard_set(name)}/{SHARD_MANIFEST}"


def shard_tokens(name: str) -> str:
    return f"{shard_set(name)}/{SHARD_TOKENS}"


def tokenizer(shard_set_name: str) -> str:
    return f"{shard_set(shard_set_name)}/tokenizer"


def run(name: str) -> str:
    return f"{RUNS}/{name}"


def run_name(text: str) -> str:
    """A run as a user names it, ``NAME`` or ``runs/NAME`` as the root shows it → ``NAME``."""
    name = text.strip("/")
    return name[len(RUNS) + 1 :] if name.startswith(f"{RUNS}/") else name


def sweep(name: str) -> str:
    return f"{SWEEPS}/{name}"


def sweep_run(name: str, point: str) -> str:
    return f"{sweep(name)}/runs/{point}"
