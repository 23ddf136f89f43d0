"""What the shared-root tests of the hostile suite start from: a small local root with a shard set,
its tokenizer and a short pretraining run, made once per session and copied per test that alters it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers_train import shard_root
from hostile_helpers import SMALL_TRAIN, webmill
from sites import real_site


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
    dst = tmp_path / "root"
    shutil.copytree(pretrained_root, dst, symlinks=True)
    return Path(dst)
