"""Files of a shared root edited by a hostile colleague (#29, findings 10, 12 and 13): JSON files that
are not JSON, nested past the recursion limit or of the wrong shape; model sizes that would
allocate anything; token files that train on the wrong data or crash the step. Each is one line
naming the file and exit 2 (or, for one run's summary, a line in stats and the rest shown)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hostile_helpers import webmill

DEEP = b"[" * 100_000
DAMAGE = {"deeply nested": DEEP, "a list": b"[1, 2, 3]", "not JSON": b'{"name": ', "wrong types": b'{"name": 5, "splits": "x"}'}

FILES = {
    "runs/base/plan.json": ["train", "--resume", "base", "--max-steps", "6"],
    "runs/base/final/training.json": ["generate", "runs/base", "--prompt", "The", "--max-new-tokens", "2"],
    "runs/base/checkpoints/step-000004/state.json": ["train", "--resume", "base", "--max-steps", "6"],
    "shards/main/manifest.json": ["train", "--name", "fresh", "--max-steps", "1"],
    "shards/main/tokenizer/tokenizer.json": ["tokenizer", "encode", "--shards", "main"],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_root_json_loader_turns_every_damage_into_one_line(damage, hostile):
    from webmill.shards.jsonfile import DamagedFile, parse

    hostile.tried(f"a root JSON file: {damage}")
    with pytest.raises(DamagedFile, match="runs/x/plan.json: damaged file"):
        parse(DAMAGE[damage], "runs/x/plan.json", required={"name": str, "splits": dict})


# each file through the command that reads it, with one of the damages in turn
@pytest.mark.parametrize("rel, damage", list(zip(FILES, itertools.cycle(DAMAGE))))
def test_a_damaged_json_file_is_one_line_naming_it(corpus, small_config, rel, damage, hostile):
    hostile.tried(f"{rel}: {damage}")
    (corpus / rel).write_bytes(DAMAGE[damage])
    out = webmill("--root", corpus, "--config", small_config, *FILES[rel])
    assert out.returncode == 2, out.stderr[-3000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "damaged file" in err[0] and rel.rsplit("/", 1)[-1] in err[0], err


def test_a_damaged_run_summary_is_skipped_by_stats_and_report(corpus, tmp_path, small_config, hostile):
    """A consolidated _manifest.json is a cache of the commit records: a damaged one is read past."""
    hostile.tried("runs/X/summary.json nested 100,000 deep, then stats and report", "a dataset's _manifest.json nested 100,000 deep")
    (corpus / "runs" / "base" / "summary.json").write_bytes(DEEP)
    (corpus / "shards" / "main" / "train" / "_manifest.json").write_bytes(DEEP)
    out = webmill("--root", corpus, "stats")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "shards main" in out.stdout and "skipped" in out.stdout and "summary.json: damaged file" in out.stdout, out.stdout
    out = webmill("--root", corpus, "report", "--output", tmp_path / "report.html")
    assert out.returncode == 0 and (tmp_path / "report.html").stat().st_size > 1000, out.stderr[-3000:]


def test_model_configs_are_checked_before_anything_is_allocated():
    from webmill.shards.jsonfile import DamagedFile
    from webmill.train.model import ModelConfig

    good = ModelConfig.preset("tiny", 512).to_dict()
    assert ModelConfig.from_dict(good, "x").dim == 128
    for edit, expect in [
        ({"vocab_size": 10**12}, "is not an integer in"),
        ({"dim": "128"}, "is not an integer in"),
        ({"dim": 130}, "not a multiple"),
        ({"n_layers": 0}, "a size of 0"),
        ({"eos_id": 600}, "past the vocabulary"),
        ({"norm_eps": "x"}, "not a positive number"),
    ]:
        with pytest.raises(DamagedFile, match=expect):
            ModelConfig.from_dict({**good, **edit}, "x")


@pytest.mark.parametrize(
    "edit, expect",
    [
        ({"dim": 1 << 15, "n_layers": 1024, "ffn_dim": 1 << 17}, "parameters, more than"),
        ({"dim": 256, "n_heads": 4, "n_kv_heads": 4}, "does not match the model config"),
        ({"vocab_size": 10**12, "evil": 1}, "unknown key"),
    ],
)
def test_model_sizes_from_the_root_are_bounded_and_checked_against_the_weights(corpus, small_config, edit, expect, hostile):
    """An edited final/training.json once made generate (and sft, and chat) allocate any model size."""
    hostile.tried(f"final/training.json model edited: {sorted(edit)}")
    path = corpus / "runs" / "base" / "final" / "training.json"
    doc = json.loads(path.read_text())
    doc["webmill_model"].update(edit)
    path.write_text(json.dumps(doc))
    commands = [["generate", "runs/base", "--prompt", "The", "--max-new-tokens", "2"]]
    if "dim" in edit and edit["dim"] == 256:
        commands.append(["sft", "base", "--max-steps", "1"])
    for argv in commands:
        out = webmill("--root", corpus, "--config", small_config, *argv)
        assert out.returncode == 2, out.stderr[-3000:]
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and expect in err[0] and ("training.json" in err[0] or "model.safetensors" in err[0]), err


def _token_files(corpus):
    """(token file, token index) of every train shard."""
    shards = json.loads((corpus / "shards" / "main" / "manifest.json").read_text())["splits"]["train"]["shards"]
    base = corpus / "shards" / "main"
    return [(base / s["token_file"], base / s["token_index"]) for s in shards]


def _train(corpus, small_config, **env):
    import os

    args = ("--root", corpus, "--config", small_config, "train", "--name", "on-tokens", "--max-steps", "1")
    return webmill(*args, env={**os.environ, **env})


def test_a_token_index_that_decreases_or_overruns_is_refused(corpus, small_config, hostile):
    hostile.tried("token index with decreasing offsets", "token index pointing a terabyte past its file")
    indexes = [index for _, index in _token_files(corpus)]
    good = [index.read_bytes() for index in indexes]
    for edit in ("decrease", "overrun"):
        for index, data in zip(indexes, good):
            o = np.frombuffer(data, dtype="<u8").copy()
            if edit == "decrease":
                o[1:] = o[1:][::-1]  # every group's offsets run backwards
            else:
                o[1:] = 1 << 40  # a terabyte past the file
            index.write_bytes(o.tobytes())
        out = _train(corpus, small_config)
        assert out.returncode == 2, out.stderr[-3000:]
        assert "token index is damaged" in out.stderr and "Traceback" not in out.stderr, out.stderr[-3000:]


def test_token_ids_are_checked(corpus, small_config, hostile):
    """An id past the vocabulary crashed the step; the manifest's token_sha256 was written and never read."""
    hostile.tried("token file with ids past the vocabulary", "token file rewritten (same size, other ids)")
    for file, _ in _token_files(corpus):
        ids = np.frombuffer(file.read_bytes(), dtype="<u2").copy()
        ids[::7] = 65_000
        file.write_bytes(ids.tobytes())
    out = _train(corpus, small_config, WEBMILL_VERIFY_PARTS="1")
    assert out.returncode == 2 and "does not match its sha256" in out.stderr, out.stderr[-3000:]
    out = _train(corpus, small_config, WEBMILL_VERIFY_PARTS="0")
    assert out.returncode == 2 and "past the tokenizer's vocabulary" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr


class _RunsCode:
    """A pickle that runs a command when loaded: what a crafted optimizer.pt holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_optimizer_file_runs_no_code(corpus, tmp_path, small_config, hostile):
    """#29 finding 17: torch.load(weights_only=True) ran code from a crafted file before torch 2.6;
    the dependency floor is 2.6, and the file is refused with one line."""
    import pickle

    from packaging.requirements import Requirement

    hostile.tried("optimizer.pt pickle that runs a command (train --resume)")
    import tomllib
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(Requirement(d) for d in deps if d.startswith("torch"))
    assert not torch_req.specifier.contains("2.5.1") and torch_req.specifier.contains("2.6.0")
    marker = tmp_path / "ran"
    (corpus / "runs" / "base" / "checkpoints" / "step-000004" / "optimizer.pt").write_bytes(pickle.dumps(_RunsCode(marker)))
    out = webmill("--root", corpus, "--config", small_config, "train", "--resume", "base", "--max-steps", "6")
    assert out.returncode == 2 and "optimizer.pt: corrupt checkpoint file" in out.stderr, out.stderr[-3000:]
    assert not marker.exists()
