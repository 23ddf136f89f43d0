"""Helpers of the shared-root tests of the hostile suite (a plain module: see
tests/foundation/test_suite_layout.py for why tests never import from a conftest)."""

from __future__ import annotations

import json
import subprocess
import sys

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


def last_json(out) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])
