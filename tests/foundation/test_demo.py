import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_goes_from_nothing_to_a_model_a_report_and_a_sample(tmp_path, corpora):
    out = subprocess.run([sys.executable, "-m", "webmill", "--root", str(tmp_path / "root"), "demo",
                          "--sites", "libstdcxx-manual", "--train-steps", "20", "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert s["crawl"]["pages_stored"] == 194
    assert 0 < s["clean"]["kept"] <= 194
    assert s["dedup"]["exact_dups"] > 0  # versions 11 and 12 share pages
    assert s["shard"]["train_docs"] + s["shard"]["val_docs"] == s["dedup"]["kept"]
    assert s["train"]["finished"] and (tmp_path / "root" / "runs" / s["train"]["name"] / "final" / "model.safetensors").exists()
    assert (tmp_path / "root" / "report.html").stat().st_size > 100_000
    assert len(s["sample"]) > len("The") + 10
    for stage in ("crawl", "clean", "dedup", "shard", "tokenizer", "train"):
        assert stage in s["pipeline"]["seconds"]


@pytest.mark.slow
def test_demo_without_corpora_serves_pythons_own_docs(tmp_path):
    import os

    env = {**os.environ, "WEBMILL_CORPORA": str(tmp_path / "absent")}
    out = subprocess.run([sys.executable, "-m", "webmill", "--root", str(tmp_path / "root"), "demo",
                          "--train-steps", "5", "--json"], capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pydoc_data" in out.stderr
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert s["crawl"]["pages_stored"] > 50 and s["clean"]["kept"] > 20 and s["train"]["finished"]
