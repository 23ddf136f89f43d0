"""Training throughput: the same model and batch fed by webmill's streaming loader
vs from one pre-built in-memory tensor (the limit), and the loader on its own.

The shards are the pages of the real sites in ../shared/corpora (text straight
from the HTML), written as training shards with a trained BPE tokenizer. Both
training loops are the trainer's step (forward, backward, clip, AdamW) on the
preset model; they alternate (A B A B) so drift on a shared machine hits both.
On a CUDA machine it also prints the MFU.

    python bench/train.py [--preset tiny] [--steps 40] [--seq-len 256] [--micro-batch 16] [--device auto]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time

import pyarrow as pa
import torch

from webmill.sample import real_docs
from webmill.serve import find_corpora
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
from webmill.shards.config import ShardsConfig
from webmill.shards.schema import DOC_SCHEMA
from webmill.shards.training import build_shards
from webmill.train.flops import peak_flops
from webmill.train.loader import PackedLoader, list_units
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.tokenizer import load, special_ids, train_for_shards
from webmill.train.trainer import pick_device

SITES = ["postgresql-15", "sqlite-3", "libstdcxx-manual", "debian-handbook"]


def make_root(path: str, vocab: int) -> CorpusRoot:
    root = CorpusRoot.open(path)
    docs = pa.concat_tables([real_docs(find_corpora() / s) for s in SITES])
    dw = DatasetWriter(root, "dedup/bench/docs", DOC_SCHEMA)
    dw.write_unit("docs", [docs])
    dw.finalize()
    build_shards(root, ShardsConfig(row_group_rows=256))
    train_for_shards(root, "main", vocab_size=vocab, max_chars=20_000_000, doc_cap=10_000)
    return root


def train_steps(model, opt, batches, steps: int, device, autocast) -> float:
    """Run ``steps`` trainer steps; returns seconds (batches are fetched inside the timed loop)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        batch = next(batches).to(device, non_blocking=True)
        with autocast:
            loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if find_corpora() is None:
        raise SystemExit("bench/train.py: ../shared/corpora not found")
    tmp = tempfile.mkdtemp(prefix="webmill-bench-train-")
    try:
        root = make_root(os.path.join(tmp, "root"), args.vocab)
        tok = load(root.path("shards", "main", "tokenizer"))
        device = pick_device(args.device)
        units = list_units(root.fs, DatasetReader(root, "shards/main/train").paths())
        bos = special_ids(tok)["bos"]
        print(f"shards: {len(units)} row groups; device {device.type}, {torch.get_num_threads()} torch threads")

        def loader():
            return PackedLoader(root.fs, units, tok, seq_len=args.seq_len, batch_rows=args.micro_batch, bos_id=bos, seed=0)

        # the loader alone
        n_batches = 300
        alone = loader()
        t = time.perf_counter()
        for _ in itertools.islice(iter(alone), n_batches):
            pass
        loader_tps = n_batches * args.micro_batch * (args.seq_len + 1) / (time.perf_counter() - t)
        whole = loader()
        whole.loop = False
        for _ in whole:
            pass
        st = whole.stats
        print(
            f"packing: {st['docs']:,} documents, {st['doc_tokens']:,} tokens, {st['cropped_tokens']:,} cropped "
            f"({st['cropped_tokens'] / max(st['doc_tokens'], 1):.2%}) at max_doc_tokens = 1024 x {args.seq_len}"
        )

        mcfg = ModelConfig.preset(args.preset, tok.get_vocab_size(), bos_id=bos)
        model = LlamaLM(mcfg)
        model.init_weights(0)
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), fused=device.type == "cuda")
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
        in_memory = torch.stack(list(itertools.islice(iter(loader()), args.steps)))  # the same batches, pre-built
        mem_batches = itertools.cycle(in_memory)
        stream = iter(loader())
        train_steps(model, opt, mem_batches, 5, device, autocast)  # warm-up (allocator, kernels)
        train_steps(model, opt, stream, 5, device, autocast)
        t_loader = t_mem = 0.0
        for _ in range(args.rounds):
            t_loader += train_steps(model, opt, stream, args.steps, device, autocast)
            t_mem += train_steps(model, opt, mem_batches, args.steps, device, autocast)
        tokens = args.rounds * args.steps * args.micro_batch * args.seq_len
        fed, limit = tokens / t_loader, tokens / t_mem
        print(f"model {args.preset}: {model.num_params():,} parameters, batch {args.micro_batch} x {args.seq_len}")
        print(f"trainer fed from an in-memory tensor:  {limit:12,.0f} tokens/s  (the limit)")
        print(f"trainer fed by webmill's loader:       {fed:12,.0f} tokens/s")
        print(f"ratio loader-fed / in-memory:          {fed / limit:12.3f}  (target >= 0.95)")
        print(
            f"webmill loader alone:                  {loader_tps:12,.0f} tokens/s  "
            f"= {loader_tps / fed:.1f}x the trainer's consumption (target >= 20x)"
        )
        peak = peak_flops(device)
        if device.type == "cuda" and peak:
            print(
                f"MFU (loader-fed):                      {fed * model.flops_per_token(args.seq_len) / peak:12.1%}  "
                f"(peak {peak / 1e12:.0f} TFLOP/s from the device)"
            )
        elif peak:
            print(
                f"(CPU: {fed * model.flops_per_token(args.seq_len) / peak:.1%} of an estimated {peak / 1e9:.0f} GFLOP/s "
                "fp32 peak; MFU is reported on CUDA machines)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
