#!/usr/bin/env bash
# The GPU check (issue #17), one run of at most about 6 minutes on one H100/H200; its CPU parts run anywhere.
#
# Prints, from bench/train.py:
#   - the `small` preset (12 layers x 768, seq 1024, bf16 autocast, torch.compile) in tokens/s and MFU
#     against the peak read from the device, fed by the loader from pre-tokenized shards;
#   - the same model and steps fed from batches already on the device (the limit; target ratio >= 0.97);
#   - the loader's tokens/s from pre-tokenized shards on this machine's CPUs (target >= 3x the trainer's
#     consumption), and tokenizing on the fly, per core.
# Where no CUDA device is visible it runs the CPU parts on the tiny preset, so the script is tested anywhere.
#
# Needs a python3 with torch, pyarrow, tokenizers, numpy, lxml, rich, filelock and safetensors (a bare GPU
# image has them); webmill is used from this checkout without installing it, and without Ray.
# BENCH_ROOT (default .bench-root) keeps the prepared shards: prepare them on another machine with
#   bench/gpu.sh --prepare   and carry that folder, so the GPU's minutes go to the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ROOT=${BENCH_ROOT:-.bench-root}
VOCAB=32768  # the small preset at this vocabulary: about 110M parameters (GPT-2 small: 124M at 50,257)

if ! "$PY" -c "import webmill.train.trainer" 2>/dev/null; then
  # webmill's subpackages are top-level folders (pyproject's package-dir): link them into one package
  pkgs=$(mktemp -d)
  mkdir -p "$pkgs/webmill"
  for f in webmill/*; do ln -s "$PWD/$f" "$pkgs/webmill/"; done
  for d in crawl clean dedup shards train pipeline insight; do ln -s "$PWD/$d" "$pkgs/webmill/$d"; done
  export PYTHONPATH="$pkgs${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--prepare" ]; then
  exec "$PY" bench/train.py --root "$ROOT" --vocab "$VOCAB" --parts 16 --prepare-only
fi

"$PY" - <<'EOF'
import os, torch
print(f"torch {torch.__version__}; {os.cpu_count()} CPU cores;",
      f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no CUDA device")
EOF

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  # 10 steps of 4 x 16 x 1024 tokens per feed and round, six rounds (the six orders of the feeds); the compile happens once, before
  timeout 330 "$PY" bench/train.py --root "$ROOT" --vocab "$VOCAB" --parts 16 --device cuda \
    --preset small --seq-len 1024 --micro-batch 16 --accum 4 --steps 10 --rounds 6
else
  echo "no CUDA device: the CPU parts only (tiny preset); the GPU figures are not measured here"
  "$PY" bench/train.py --root "$ROOT" --vocab "$VOCAB" --parts 16 --device cpu --preset tiny --steps 4 --rounds 6
fi
