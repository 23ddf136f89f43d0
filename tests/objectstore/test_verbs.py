"""Every verb on an ``s3://`` root (a real moto server on 127.0.0.1), on a site the project renders offline.

The verbs run one after another as a user would run them, each in its own process,
from a working directory and a HOME that must stay empty: everything goes to the
object store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pipeline_config import write_config

from webmill.shards import CorpusRoot, DatasetReader


class S3Verbs:
    def __init__(self, s3, base, seed):
        self.s3 = s3
        self.uri = s3.uri()
        self.prefix = self.uri.split("corpus/", 1)[1].split("?")[0]
        self.cwd = base / "cwd"
        self.home = base / "home"
        self.cwd.mkdir()
        self.home.mkdir()
        self.config = base / "webmill.toml"
        write_config(self.config, seed, max_steps=6, eval_every=3, checkpoint_every=3, crawl="warc_max_bytes = 200000")
        self.out: dict[str, dict] = {}

    def run(self, *args, check=True, json_out=True):
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("RAY_ADDRESS", None)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "webmill",
                "--root",
                self.uri,
                "--config",
                str(self.config),
                *map(str, args),
                *(["--json"] if json_out else []),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.cwd,
            env=env,
        )
        if check:
            assert out.returncode == 0, out.stderr[-3000:]
        return out

    def json(self, *args):
        return json.loads(self.run(*args).stdout.strip().splitlines()[-1])

    def keys(self, sub=""):
        return [k[len(self.prefix) + 1 :] for k in self.s3.keys(f"{self.prefix}/{sub}")]

    def root(self):
        return CorpusRoot.open(self.uri, create=False)


@pytest.fixture(scope="module")
def verbs(s3, pydoc_site, tmp_path_factory):
    v = S3Verbs(s3, tmp_path_factory.mktemp("s3verbs"), pydoc_site.url("pydoc/index.html"))
    v.out["crawl"] = v.json("crawl", "run")
    v.out["clean"] = v.json("clean")
    v.out["dedup"] = v.json("dedup")
    v.out["shard"] = v.json("shard")
    v.out["tokenizer"] = v.json("tokenizer", "train")
    v.out["train_part"] = v.json("train", "--name", "run1", "--stop-after", "3")
    v.out["train"] = v.json("train", "--resume", "run1")
    return v


@pytest.mark.slow
def test_crawl_writes_warcs_and_state_to_the_bucket_and_resumes_from_anywhere(verbs):
    c = verbs.out["crawl"]
    assert c["pages_stored"] == 80
    warcs = [k for k in verbs.keys("crawl/") if k.endswith(".warc.gz")]
    assert len(warcs) == len(c["warc_files"]) > 1  # files rolled at 200 kB, each uploaded
    assert any(k.endswith("state/worker-0000.jsonl") for k in verbs.keys("crawl/"))
    assert "catalog.sqlite" in verbs.keys()
    # the crawl's state is in the root: a resume from a fresh working directory fetches nothing again
    again = verbs.json("crawl", "resume", c["crawl_id"])
    assert again["pages_stored"] == 80
    assert verbs.json("crawl", "status", c["crawl_id"])["state"] == "done"


@pytest.mark.slow
def test_clean_reads_the_roots_crawl_and_warc_uris(verbs):
    c = verbs.out["clean"]
    assert 0 < c["kept"] <= 80 and c["records"] > 0
    # --warc s3://… with the endpoint options, as a user points clean at any bucket
    warc_uri = verbs.uri.replace("?", f"/crawl/{verbs.out['crawl']['crawl_id']}/warc/*.warc.gz?")
    other = verbs.json("clean", "--warc", warc_uri, "--name", "fromuri")
    assert other["kept"] == c["kept"]


@pytest.mark.slow
def test_dedup_shard_tokenizer_on_the_bucket(verbs):
    d, s, t = verbs.out["dedup"], verbs.out["shard"], verbs.out["tokenizer"]
    assert d["kept"] == s["splits"]["train"]["rows"] + s["splits"]["val"]["rows"] > 0
    assert t["vocab_size"] == 512
    assert any(k.startswith("shards/main/tokenizer/tokenizer.json") for k in verbs.keys("shards/"))
    assert DatasetReader(verbs.root(), "shards/main/train").num_rows == s["splits"]["train"]["rows"]


@pytest.mark.slow
def test_train_streams_shards_and_checkpoints_to_the_bucket_and_resumes(verbs):
    first, done = verbs.out["train_part"], verbs.out["train"]
    assert first["step"] == 3 and not first["finished"]
    assert done["step"] == 6 and done["finished"]
    keys = verbs.keys("runs/run1/")
    for name in (
        "checkpoints/latest",
        "checkpoints/step-000003/model.safetensors",
        "checkpoints/step-000006/optimizer.pt",
        "final/model.safetensors",
        "final/training.json",
        "final/tokenizer.json",
        "metrics.jsonl",
        "plan.json",
        "summary.json",
    ):
        assert f"runs/run1/{name}" in keys, name
    root = verbs.root()
    assert root.read_bytes("runs/run1/checkpoints/latest").decode() == "step-000006"
    steps = [json.loads(x)["step"] for x in root.read_bytes("runs/run1/metrics.jsonl").decode().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # one continuous history across the resume


@pytest.mark.slow
def test_generate_from_a_run_on_the_bucket(verbs):
    out = verbs.run("generate", "run1", "--prompt", "The", "--max-new-tokens", "8", json_out=False)
    assert out.stdout.startswith("The") and len(out.stdout.strip()) > 3


@pytest.mark.slow
def test_stats_report_query_on_the_bucket(verbs):
    st = verbs.json("stats")
    assert st["dedup"]["kept"] == verbs.out["dedup"]["kept"]
    assert "run1" in st["training"]
    report = verbs.cwd.parent / "report.html"
    r = verbs.json("report", "-o", report)
    assert report.exists() and any("run1" in c for c in r["charts"])
    q = verbs.run("query", "SELECT count(*) AS n FROM docs", json_out=False)
    assert str(verbs.out["dedup"]["kept"]) in q.stdout


@pytest.mark.slow
def test_nothing_was_written_to_the_working_directory_or_home(verbs):
    assert list(verbs.cwd.iterdir()) == []
    assert [p.name for p in verbs.home.iterdir()] in ([], [".ray"])  # Ray keeps its cluster token there
