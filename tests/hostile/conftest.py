"""What the shared-root tests of the hostile suite start from: a small local root with a shard set,
its tokenizer and a short pretraining run, made once per session and copied per test that alters it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from helpers_train import shard_root
from sites import real_site

# a few steps of the tiny model: enough for a run folder with a checkpoint, final/ and a summary
SMALL_TRAIN = """
[shards]
row_group_rows = 32
val_fraction = 0.1
[train]
vocab_size = 512
seq_len = 64
batch_tokens = 512
micro_batch = 8
warmup = 1
max_steps = 4
eval_every = 2
eval_batches = 1
checkpoint_every = 2
[sft]
synthesize_limit = 60
epochs = 1
micro_batch = 4
eval_every = 1000
"""


def webmill(*args, input=None, env=None, timeout=300, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, timeout=timeout, input=input, env=env, cwd=cwd
    )


@pytest.fixture(scope="session")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile-cfg") / "webmill.toml"
    path.write_text(SMALL_TRAIN)
    return path


@pytest.fixture(scope="session")
def pretrained_root(tmp_path_factory, small_config):
    """A local root: shards/main, its tokenizer and runs/base (4 steps), made once."""
    root = shard_root(tmp_path_factory.mktemp("hostile-root") / "root", real_site("postgresql-15"), limit=150, vocab=512, row_group_rows=32)
    out = webmill("--root", root.base, "--config", small_config, "train", "--name", "base", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    return root.base


@pytest.fixture
def corpus(pretrained_root, tmp_path):
    """A copy of the pretrained root that a test may damage."""
    from pathlib import Path

    dst = tmp_path / "root"
    shutil.copytree(pretrained_root, dst, symlinks=True)
    return Path(dst)


def last_json(out) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])
