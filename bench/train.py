"""Training throughput: the trainer's step fed by webmill's loader — from pre-tokenized shards and
tokenizing on the fly — vs from batches already on the device (the limit), and the loader alone.

The shards are real pages: ../shared/corpora where it is present, else the offline site webmill
renders from the Python library (text straight from the HTML), written as Parquet parts with a
trained BPE tokenizer and encoded into token files (webmill.train.token_files). It needs
neither Ray nor a network, so it runs on a bare GPU machine too (bench/gpu.sh). The training
loops are the trainer's own optimizer_step (device feed, loss summed on the device, clip, AdamW,
torch.compile where the trainer would compile) on the preset model. They alternate in short
rounds through the six orders of the three feeds (each as often in each place and after each
other), so the drift of a shared machine hits all three alike; the ratios are of the
totals, and each feed's median and range over the rounds are printed. It also measures the
two token-file layouts considered (flat files with an index vs a token column in Parquet).
On CUDA it prints the MFU against the device's peak (read from the device).

    python bench/train.py [--preset tiny] [--steps 10] [--rounds 12] [--seq-len 256] [--micro-batch 16] [--accum 1]
                          [--device auto] [--root DIR]   (DIR: keep the prepared shards there, or reuse them)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter
from webmill.shards.schema import DOC_SCHEMA
from webmill.train import token_files
from webmill.train.config import TrainConfig
from webmill.train.feed import DeviceFeed
from webmill.train.flops import peak_flops
from webmill.train.loader import PackedLoader, list_units
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.tokenizer import load_from_root, sample_texts, save, special_ids, train_bpe
from webmill.train.trainer import Distributed, make_optimizer, optimizer_step, pick_device, wrap_model

SITES = ["postgresql-15", "sqlite-3", "libstdcxx-manual", "debian-handbook"]
SET = "bench"
TOKENIZER = f"shards/{SET}/tokenizer"


def site_docs() -> pa.Table:
    from webmill.sample import real_docs
    from webmill.serve import find_corpora

    corpora = find_corpora()
    if corpora is not None:
        return pa.concat_tables([real_docs(corpora / s) for s in SITES])
    from webmill.pylib_site import offline_corpora

    offline = offline_corpora(say=print)
    return pa.concat_tables([real_docs(offline / s) for s in ("pylib", "pydoc")])


def prepare(path: str, vocab: int, parts: int) -> tuple[CorpusRoot, dict]:
    """Parquet parts of real pages, a tokenizer, and token files; (root, the manifest of the encoding)."""
    root = CorpusRoot.open(path)
    if root.exists(f"shards/{SET}/bench.json"):
        return root, json.loads(root.read_bytes(f"shards/{SET}/bench.json"))
    docs = site_docs()
    dw = DatasetWriter(root, f"shards/{SET}/train", DOC_SCHEMA, row_group_rows=256)
    step = -(-docs.num_rows // parts)
    for i in range(parts):
        dw.write_unit(f"u{i:03d}", [docs.slice(i * step, step)])
    dw.finalize()
    reader = DatasetReader(root, f"shards/{SET}/train")
    tok = train_bpe(sample_texts(reader.iter_batches(columns=["text"]), 20_000_000, 10_000), vocab)
    with tempfile.TemporaryDirectory() as tmp:
        save(tok, tmp)
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb") as f:
                root.write_bytes_atomic(f.read(), TOKENIZER, name)
    sha = token_files.tokenizer_sha256(root.read_bytes(TOKENIZER, "tokenizer.json"))
    rel = [os.path.relpath(p, root.path("shards", SET)) for p in reader.paths()]
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        shards = list(pool.map(token_files.encode_part, *zip(*[(root, SET, r, TOKENIZER, sha) for r in rel])))
    seconds = time.perf_counter() - t
    manifest = {
        "name": SET,
        "encoding": {"dtype": token_files.dtype_for(tok.get_vocab_size()), "tokenizer_sha256": sha},
        "splits": {"train": {"shards": shards}},
        "encode_seconds": seconds,
    }
    root.write_bytes_atomic(json.dumps(manifest).encode(), f"shards/{SET}/bench.json")
    return root, manifest


def _one_thread() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one encoding process per core, one thread each


def format_rates(root: CorpusRoot, manifest: dict, repeat: int = 5) -> tuple[float, float]:
    """Tokens/s reading every row group's ids (the median of ``repeat`` passes): from the flat token
    files, and from the same ids stored as a list<uint16> column in Parquet (the layout not taken)."""
    entries = token_files.resolved_entries(root, manifest)
    units = list_units(root.fs, list(entries), entries)

    def flat_pass() -> int:
        return sum(len(token_files.read_slice(root.fs, u.tokens)[0]) for u in units)

    columns = []
    for u in units:  # the same groups as a token column (written once, untimed)
        ids, lens = token_files.read_slice(root.fs, u.tokens)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
        columns.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids.astype(np.uint16))))
    path = root.path("shards", SET, "token-column.parquet")
    with pq.ParquetWriter(path, pa.schema([("tokens", pa.list_(pa.uint16()))])) as w:
        for col in columns:
            w.write_table(pa.table({"tokens": col}))

    def column_pass() -> int:
        pf, n = pq.ParquetFile(path), 0
        for g in range(pf.num_row_groups):
            col = pf.read_row_group(g, columns=["tokens"]).column("tokens").combine_chunks()
            n += len(col.flatten().to_numpy().astype(np.int64))
            np.diff(col.offsets.to_numpy())
        return n

    def rate(one_pass) -> float:
        rates = []
        for _ in range(repeat):
            t = time.perf_counter()
            n = one_pass()
            rates.append(n / (time.perf_counter() - t))
        return float(np.median(rates))

    return rate(flat_pass), rate(column_pass)


class BenchModel:
    """The model, its optimizer and one optimizer step, made as the trainer makes them (compile, autocast,
    fused AdamW), for a benchmark that feeds it batches (this one and bench/sft.py)."""

    def __init__(self, preset: str, vocab: int, bos: int, *, seq_len: int, micro_batch: int, max_seq_len: int, device):
        self.cfg = {**TrainConfig().__dict__, "compile": "auto", "micro_batch": micro_batch, "seq_len": seq_len}
        self.model = LlamaLM(ModelConfig.preset(preset, vocab, bos_id=bos, max_seq_len=max_seq_len))
        self.model.init_weights(0)
        self.model.to(device)
        self.device, self.dd = device, Distributed()
        self.opt = make_optimizer(self.model, self.cfg, device)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
        self.train_model, self.compiled = wrap_model(self.model, self.cfg, self.dd, device, self.autocast)

    def step(self, batches, accum: int) -> float:
        """One optimizer step over ``accum`` batches from ``batches``; its loss."""
        m = self
        return m.dd.mean(optimizer_step(m.train_model, m.model, m.opt, batches, 1e-3, accum, m.cfg, m.dd, m.device, m.autocast))


def timed_steps(step, steps: int, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=10, help="optimizer steps per round and feed")
    ap.add_argument("--rounds", type=int, default=12, help="rounds of all three feeds (a multiple of 6: every order as often)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--root", default=None, help="prepare the shards here (kept), or reuse the ones prepared there")
    ap.add_argument("--prepare-only", action="store_true", help="prepare the shards in --root and stop")
    args = ap.parse_args()
    tmp = None if args.root else tempfile.mkdtemp(prefix="webmill-bench-train-")
    try:
        root, manifest = prepare(args.root or os.path.join(tmp, "root"), args.vocab, args.parts)
        if args.prepare_only:
            print(f"prepared {root.display()}: {sum(s['tokens'] for s in manifest['splits']['train']['shards']):,} tokens")
            return
        tok = load_from_root(root, TOKENIZER)
        device = pick_device(args.device)
        entries = token_files.resolved_entries(root, manifest)
        text_units = list_units(root.fs, list(entries))
        token_units = list_units(root.fs, list(entries), entries)
        bos = special_ids(tok)["bos"]
        cores = os.cpu_count() or 1
        tokens_total = sum(s["tokens"] for s in manifest["splits"]["train"]["shards"])
        print(
            f"shards: {len(text_units)} row groups, {tokens_total:,} tokens, encoded in {manifest['encode_seconds']:.1f} s "
            f"({tokens_total / manifest['encode_seconds'] / cores:,.0f} tokens/s per core); device {device.type}, "
            f"{torch.get_num_threads()} torch threads, {cores} cores"
        )
        flat, column = format_rates(root, manifest)
        print(f"token ids read, flat file + index:        {flat:14,.0f} tokens/s")
        print(f"token ids read, Parquet list<uint16>:      {column:14,.0f} tokens/s   (flat / column {flat / column:.2f})")

        def loader(units):
            return PackedLoader(root.fs, units, tok, seq_len=args.seq_len, batch_rows=args.micro_batch, bos_id=bos, seed=0)

        rates = {}
        for name, units in (("on the fly", text_units), ("pre-tokenized", token_units)):
            it, n = iter(loader(units)), 300
            next(it)
            t = time.perf_counter()
            for _ in itertools.islice(it, n):
                pass
            rates[name] = n * args.micro_batch * (args.seq_len + 1) / (time.perf_counter() - t)

        bench = BenchModel(
            args.preset,
            tok.get_vocab_size(),
            bos,
            seq_len=args.seq_len,
            micro_batch=args.micro_batch,
            max_seq_len=max(args.seq_len, 1024),
            device=device,
        )
        model, compiled = bench.model, bench.compiled
        in_memory = [b.to(device) for b in itertools.islice(iter(loader(token_units)), args.steps * args.accum)]
        feeds = {
            "in-memory": itertools.cycle(in_memory),
            "pre-tokenized": DeviceFeed(loader(token_units), device),
            "on the fly": DeviceFeed(loader(text_units), device),
        }

        def step(batches):
            return lambda: bench.step(batches, args.accum)

        for batches in feeds.values():  # warm-up: allocator, kernels, the feeds' first batches
            timed_steps(step(batches), 3, device)
        seconds, per_round = dict.fromkeys(feeds, 0.0), {}
        # the rounds go through the six orders of the three feeds: each feed runs as often first, second
        # and last, and after each of the others, so neither a place nor a neighbour favours one
        orders = list(itertools.permutations(feeds))
        for r in range(args.rounds):
            for name in orders[r % len(orders)]:
                took = timed_steps(step(feeds[name]), args.steps, device)
                seconds[name] += took
                per_round.setdefault(name, []).append(args.steps * args.accum * args.micro_batch * args.seq_len / took)
        tokens = args.rounds * args.steps * args.accum * args.micro_batch * args.seq_len
        tps = {name: tokens / s for name, s in seconds.items()}
        limit = tps["in-memory"]
        print(
            f"model {args.preset}: {model.num_params():,} parameters, "
            f"{args.accum} x {args.micro_batch} x {args.seq_len} tokens per step, {compiled}"
        )
        print(f"trainer fed from batches on the device:   {limit:14,.0f} tokens/s  (the limit)")
        print(f"trainer fed from pre-tokenized shards:     {tps['pre-tokenized']:14,.0f} tokens/s")
        print(f"trainer fed tokenizing on the fly:         {tps['on the fly']:14,.0f} tokens/s")
        for name, r in per_round.items():
            print(f"  {name + ', rounds:':24} median {np.median(r):10,.0f}   min {min(r):,.0f}   max {max(r):,.0f}   ({len(r)} rounds)")
        print(f"ratio pre-tokenized-fed / in-memory:       {tps['pre-tokenized'] / limit:14.3f}  (target >= 0.97)")
        print(f"ratio on-the-fly-fed / in-memory:          {tps['on the fly'] / limit:14.3f}")
        for name in ("pre-tokenized", "on the fly"):
            print(
                f"loader alone, {name + ':':15}             {rates[name]:14,.0f} tokens/s = {rates[name] / cores:,.0f} per core, "
                f"{rates[name] / limit:.1f}x the trainer's consumption" + ("  (target >= 3x)" if name == "pre-tokenized" else "")
            )
        peak = peak_flops(device)
        flops = model.flops_per_token(args.seq_len)
        if device.type == "cuda" and peak:
            print(
                f"MFU, pre-tokenized-fed / in-memory:        {tps['pre-tokenized'] * flops / peak:13.1%} / {limit * flops / peak:.1%}  "
                f"(peak {peak / 1e12:.0f} TFLOP/s from the device; target >= 45%)"
            )
        elif peak:
            print(
                f"(CPU: {tps['pre-tokenized'] * flops / peak:.1%} of an estimated {peak / 1e9:.0f} GFLOP/s fp32 peak; "
                "MFU is reported on CUDA)"
            )
        for f in feeds.values():
            if isinstance(f, DeviceFeed):
                f.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
