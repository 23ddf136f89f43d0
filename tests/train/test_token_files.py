"""Bad pre-tokenized shards: a truncated token file, token files of another tokenizer, --device cuda
without a GPU. Each is one line naming what is wrong, and a non-zero exit from the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow.fs as pafs
import pytest
from helpers_train import shard_root
from sites import real_site

from webmill.errors import UserError
from webmill.shards import CorpusRoot, DatasetReader
from webmill.shards.training import read_manifest
from webmill.train.config import TrainConfig
from webmill.train.loader import list_units
from webmill.train.plan import make_plan
from webmill.train.token_files import read_slice, resolved_entries
from webmill.train.tokenizer import save, train_bpe

FS = pafs.LocalFileSystem()


def webmill(*args):
    return subprocess.run([sys.executable, "-m", "webmill", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    return shard_root(tmp_path_factory.mktemp("tokens"), real_site("sqlite-3"), limit=60, row_group_rows=16)


@pytest.fixture
def root(encoded, tmp_path):
    """A copy of the encoded root that a test may damage."""
    shutil.copytree(encoded.base, tmp_path / "root")
    return CorpusRoot.open(str(tmp_path / "root"))


def first_token_file(root) -> str:
    shard = read_manifest(root, "main")["splits"]["train"]["shards"][0]
    return root.path("shards/main", shard["token_file"])


def test_a_truncated_token_file_is_named(root):
    path = first_token_file(root)
    units = list_units(FS, DatasetReader(root, "shards/main/train").paths(), resolved_entries(root, read_manifest(root, "main")))
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)
    with pytest.raises(UserError, match="truncated") as e:
        list_units(FS, DatasetReader(root, "shards/main/train").paths(), resolved_entries(root, read_manifest(root, "main")))
    assert path in str(e.value)
    # truncated after the run listed its units: the read names the file too
    last = [u for u in units if u.path == units[0].path][-1]
    with pytest.raises(UserError, match="truncated") as e:
        read_slice(FS, last.tokens)
    assert path in str(e.value)
    out = webmill("--root", root.uri, "train", "--max-steps", "1")
    assert out.returncode == 2 and path in out.stderr and "Traceback" not in out.stderr
    # what the message says to do mends it
    tokens = read_manifest(root, "main")["splits"]["train"]["tokens"]
    out = webmill("--root", root.uri, "tokenizer", "encode", "--shards", "main", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["tokens"]["train"] == tokens
    list_units(FS, DatasetReader(root, "shards/main/train").paths(), resolved_entries(root, read_manifest(root, "main")))


def test_token_files_of_another_tokenizer_are_refused_naming_both(root, tmp_path):
    other = tmp_path / "other-tokenizer"
    save(train_bpe(iter(["select the rows of a table where the index applies"] * 50), 300), str(other))
    with pytest.raises(UserError) as e:
        make_plan(root, TrainConfig(), shards="main", name="x", tokenizer_path=str(other))
    message = str(e.value)
    assert "encoded with" in message and root.display("shards/main/tokenizer") in message and str(other) in message


def test_device_cuda_without_a_gpu_is_one_line(root):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = webmill("--root", root.uri, "train", "--max-steps", "1", "--device", "cuda")
    assert out.returncode == 2 and "no CUDA device" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
