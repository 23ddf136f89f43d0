"""Concurrent writers of a shared root (#29, findings 7, 9 and 16): `sft`, `sweep` (and each of its
grid runs), the tokenizer stage and the dedup index take locks. The test holds the lock another
process would hold; the command stops at once with one line and writes nothing."""

from __future__ import annotations

import pytest
from hostile_helpers import webmill

from webmill.locks import RunLocked, folder_lock, run_lock
from webmill.shards import CorpusRoot


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".webmill-lock" not in p.name)


@pytest.mark.parametrize(
    "held, argv",
    [
        (("runs", "chat"), ["sft", "base", "--name", "chat", "--max-steps", "1"]),
        (("runs", "base-sft"), ["sft", "base", "--max-steps", "1"]),
        (("sweeps", "grid"), ["sweep", "--name", "grid", "--sizes", "32x1,64x1", "--tokens", "2k,4k,8k"]),
        (("shards", "main"), ["tokenizer", "train"]),
        (("shards", "main"), ["tokenizer", "encode", "--shards", "main"]),
        (("dedup", "_index"), ["dedup", "--input", "dedup/a/docs", "--name", "again"]),
    ],
)
def test_a_second_writer_is_refused_at_once(corpus, small_config, held, argv, hostile):
    hostile.tried(f"`webmill {' '.join(argv[:2])}` while another process writes {'/'.join(held)}")
    root = CorpusRoot.open(corpus)
    with folder_lock(root, "/".join(held)):
        before = _tree(corpus)
        out = webmill("--root", corpus, "--config", small_config, *argv)
    assert out.returncode == 2, out.stderr[-3000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "being written by another webmill process" in err[0] and "/".join(held) in err[0], err
    assert _tree(corpus) == before


def test_a_sft_resume_is_refused_while_the_run_trains(corpus, small_config, hostile):
    hostile.tried("`webmill sft --resume` while the run trains")
    out = webmill("--root", corpus, "--config", small_config, "sft", "base", "--name", "chat", "--max-steps", "4", "--stop-after", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    with run_lock(CorpusRoot.open(corpus), "runs", "chat"):
        out = webmill("--root", corpus, "--config", small_config, "sft", "--resume", "chat")
    assert out.returncode == 2 and "being written by another webmill process" in out.stderr, out.stderr[-3000:]


def test_a_grid_run_holds_its_own_lock(corpus, hostile):
    """A grid run that Ray retried while its first attempt still trains is refused, not trained twice."""
    from webmill.train.sweep import train_point

    hostile.tried("one sweep grid run trained by two tasks at once")
    root = CorpusRoot.open(corpus)
    plan = {"root": root.uri, "run": "sweeps/grid/runs/64x2-250000", "name": "grid-64x2-250000"}
    with run_lock(root, "sweeps/grid/runs", "64x2-250000"):
        with pytest.raises(RunLocked):
            train_point(plan)
