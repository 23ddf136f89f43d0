"""Files a crash leaves half written: a torn metrics line, a torn commit-record temp file."""

from __future__ import annotations

import json

from webmill.shards import CorpusRoot, Manifest
from webmill.train.runfiles import RunFiles, read_metrics


def test_a_torn_metrics_line_is_skipped_on_resume_and_in_the_report(tmp_path, hostile):
    hostile.tried("metrics.jsonl with a torn last line", "metrics.jsonl with a foreign line")
    root = CorpusRoot.open(tmp_path / "root")
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in (1, 2, 3)]
    root.write_bytes_atomic(("\n".join(lines) + '\n["not a record"]\n{"step": 4, "lo').encode(), "runs", "r", "metrics.jsonl")
    assert [r["step"] for r in read_metrics(root.read_bytes("runs", "r", "metrics.jsonl"))] == [1, 2, 3]
    files = RunFiles(root, "runs/r")
    files.truncate_metrics(2)  # what `train --resume` does first
    assert [r["step"] for r in read_metrics(root.read_bytes("runs", "r", "metrics.jsonl"))] == [1, 2]
    from webmill.insight.report import _loss_curves as loss_curves

    assert loss_curves(root)["r"]["step"] == [1, 2]


def test_a_leftover_temp_file_is_not_a_commit_record(tmp_path, hostile):
    hostile.tried("an empty temp file beside the commit records (a crash before the rename)")
    root = CorpusRoot.open(tmp_path / "root")
    root.write_bytes_atomic(json.dumps({"unit": "u", "parts": []}).encode(), "d", "_commits", "u.json")
    (tmp_path / "root" / "d" / "_commits" / ".u.json.0123.tmp").write_bytes(b"")
    assert list(Manifest.load(root, "d").units) == ["u"]
