"""A hostile colleague with write access to a shared root (#29, findings 3 and 4): symlinks that lead
out of a local root, and paths stored in a run's plan.json, must not make a command write, delete
or read outside the root."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_helpers import last_json, webmill


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "link, argv",
    [
        ("runs/base-sft", ["sft", "base", "--max-steps", "1"]),
        ("shards/evil", ["shard", "--name", "evil"]),
        ("runs", ["train", "--name", "escaped", "--max-steps", "1"]),
    ],
)
def test_a_symlink_out_of_a_local_root_is_refused_naming_it(corpus, tmp_path, small_config, link, argv, hostile):
    """``runs/base-sft -> ../../outside`` made ``webmill sft base`` write there and delete
    ``outside/final/`` before moving its export in."""
    hostile.tried(f"symlink {link} out of the root, then {argv[0]}")
    outside = tmp_path / "outside"
    (outside / "final").mkdir(parents=True)
    (outside / "final" / "keep.txt").write_text("not the root's")
    if (corpus / link).exists():
        shutil.rmtree(corpus / link)
    (corpus / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(outside, (corpus / link).parent), corpus / link)
    before = _tree(outside)
    out = webmill("--root", corpus, "--config", small_config, *argv)
    assert out.returncode == 2, out.stderr[-3000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "symlink" in err[0] and link in err[0], err
    assert _tree(outside) == before


def _foreign_parquet(folder):
    """A readable Parquet file outside the root, of the shape of a shard, with a marker in every row."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"Confidential page {i}. The payroll of the secret project is on this page. It says SECRETMARKER." for i in range(40)]
    ids, urls, titles = [f"s{i}" for i in range(40)], ["http://intranet/"] * 40, ["Payroll — Intranet"] * 40
    table = pa.table({"id": ids, "url": urls, "title": titles, "text": rows})
    pq.write_table(table, folder / "payroll.parquet")
    return str(folder / "payroll.parquet")


def _root_holds(corpus, marker: bytes) -> list[str]:
    return [str(p) for p in corpus.rglob("*") if p.is_file() and marker in p.read_bytes()]


@pytest.mark.parametrize("relative", [True, False])
def test_paths_in_a_crafted_plan_are_read_only_inside_the_root(corpus, tmp_path, small_config, relative, hostile):
    """A plan.json whose shard paths name a file outside the root: ``webmill sft`` (which synthesizes
    conversations from the base run's shards) and ``train --resume`` refuse it with one line, and
    no byte of the file reaches the root."""
    hostile.tried(f"plan.json naming a Parquet file outside the root ({'relative' if relative else 'legacy absolute'} plan)")
    foreign = _foreign_parquet(tmp_path / "elsewhere")
    plan_path = corpus / "runs" / "base" / "plan.json"
    plan = json.loads(plan_path.read_text())
    plan["data"]["train"] = plan["data"]["val"] = [foreign if not relative else os.path.relpath(foreign, corpus)]
    if not relative:
        plan["data"].pop("relative", None)
    plan_path.write_text(json.dumps(plan))
    for argv in (["sft", "base", "--name", "stolen", "--max-steps", "1"], ["train", "--resume", "base", "--max-steps", "6"]):
        out = webmill("--root", corpus, "--config", small_config, *argv)
        assert out.returncode == 2, out.stderr[-3000:]
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and ("outside the corpus root" in err[0] or "leaves the corpus root" in err[0]), err
    assert _root_holds(corpus, b"SECRETMARKER") == []


def test_a_plans_tokenizer_outside_the_root_is_refused(corpus, tmp_path, small_config, hostile):
    hostile.tried("plan.json naming a tokenizer folder outside the root")
    elsewhere = tmp_path / "tok"
    shutil.copytree(corpus / "shards" / "main" / "tokenizer", elsewhere)
    plan_path = corpus / "runs" / "base" / "plan.json"
    plan = json.loads(plan_path.read_text())
    plan["tokenizer"] = str(elsewhere)
    plan_path.write_text(json.dumps(plan))
    out = webmill("--root", corpus, "--config", small_config, "train", "--resume", "base", "--max-steps", "6")
    assert out.returncode == 2 and "outside the corpus root" in out.stderr, out.stderr[-2000:]


def test_a_copied_root_trains_on_its_own_shards(corpus, pretrained_root, small_config):
    """Paths in plans are relative: a root copied elsewhere (a tarball, another disk) resumes on its own
    files, and the original can go."""
    plan = json.loads((corpus / "runs" / "base" / "plan.json").read_text())
    assert plan["data"]["relative"] and not any(os.path.isabs(p) for p in plan["data"]["train"] + plan["data"]["val"])
    assert not os.path.isabs(plan["tokenizer"])
    hidden = str(pretrained_root) + ".hidden"
    os.rename(pretrained_root, hidden)
    try:
        out = webmill("--root", corpus, "--config", small_config, "train", "--resume", "base", "--max-steps", "6", "--json")
    finally:
        os.rename(hidden, pretrained_root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert last_json(out)["step"] == 6
