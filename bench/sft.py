"""Fine-tuning throughput: the same model, micro-batch and row length trained on conversations
(webmill sft: one conversation per row, right-padded, loss on assistant tokens only) vs on
packed pretraining rows (webmill train), through the same optimizer step and device feed.

Shards and tokenizer are bench/train.py's (real pages: ../shared/corpora, else the offline
site); the conversations are synthesized from those pages (webmill.train.conversations), as
`webmill sft` does without --data. The two loops alternate in rounds (A B, B A, ...). Printed:
pretraining tokens/s; fine-tuning positions/s (what the GPU or CPU computes), conversation
tokens/s (positions that are not padding) and assistant tokens/s (the loss's targets); the
share of positions spent on padding and on the prompt (no loss). The ratio compared with the
target is conversation tokens/s over pretraining tokens/s.

    python bench/sft.py [--preset tiny] [--steps 10] [--rounds 8] [--seq-len 256] [--micro-batch 16] [--root DIR]
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from webmill.train import chat as chatlib
from webmill.train import conversations, token_files
from webmill.train.feed import DeviceFeed
from webmill.train.loader import PackedLoader, list_units
from webmill.train.sft import ConversationBatches
from webmill.train.tokenizer import load_from_root, special_ids
from webmill.train.trainer import pick_device


def bench_train():
    """bench/train.py, imported by its own name from this folder, so that the process pool it prepares shards
    with can import its functions in the spawned workers (loaded from a file path under another name, they
    could not: "Can't pickle <function _one_thread>")."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("train")


class Counting:
    """A feed that counts, on the host, the positions, real tokens and loss targets of each batch."""

    def __init__(self, feed, pad_id: int | None):
        self.feed, self.pad_id = feed, pad_id
        self.positions = self.real = self.targets = self.rows = 0

    def __next__(self):
        batch = next(self.feed)
        self.rows += batch.shape[-2]
        if batch.dim() == 3:
            self.positions += batch[0].numel()
            self.real += int((batch[0] != self.pad_id).sum())
            self.targets += int((batch[1] >= 0).sum())
        else:
            n = batch[:, 1:].numel()
            self.positions += n
            self.real += n
            self.targets += n
        return batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=10, help="optimizer steps per round and loop")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--conversations", type=int, default=3000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--root", default=None, help="bench/train.py's prepared shards (kept there), or where to prepare them")
    args = ap.parse_args()
    tmp = None if args.root else tempfile.mkdtemp(prefix="webmill-bench-sft-")
    try:
        bt = bench_train()
        root, manifest = bt.prepare(args.root or os.path.join(tmp, "root"), args.vocab, 8)
        tok = load_from_root(root, bt.TOKENIZER)
        bos, pad = special_ids(tok)["bos"], special_ids(tok)["pad"]
        chatlib.add_chat_tokens(tok)
        entries = token_files.resolved_entries(root, manifest)
        buf = io.BytesIO()
        made = conversations.write_jsonl(conversations.from_parts(root.fs, sorted(entries), args.conversations), buf)
        enc = chatlib.read_conversations(iter(buf.getvalue().splitlines()), tok, seq_len=args.seq_len, val_fraction=0.0)
        device = pick_device(args.device)
        bench = bt.BenchModel(
            args.preset,
            tok.get_vocab_size(),
            bos,
            seq_len=args.seq_len,
            micro_batch=args.micro_batch,
            max_seq_len=max(args.seq_len + 1, 1024),
            device=device,
        )
        model, compiled = bench.model, bench.compiled
        packed = PackedLoader(
            root.fs, list_units(root.fs, list(entries), entries), tok, seq_len=args.seq_len, batch_rows=args.micro_batch, bos_id=bos
        )
        feeds = {
            "pretraining": Counting(DeviceFeed(packed, device), None),
            "fine-tuning": Counting(
                DeviceFeed(ConversationBatches(enc.train, micro_batch=args.micro_batch, seq_len=args.seq_len, seed=0, pad_id=pad), device),
                pad,
            ),
        }

        def run(name: str, steps: int) -> float:
            feed = feeds[name]
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(steps):
                bench.step(feed, 1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t

        for name in feeds:
            run(name, 3)
        for f in feeds.values():
            f.positions = f.real = f.targets = f.rows = 0
        seconds = dict.fromkeys(feeds, 0.0)
        for r in range(args.rounds):
            for name in list(feeds)[:: 1 if r % 2 == 0 else -1]:
                seconds[name] += run(name, args.steps)
        pre, ft = feeds["pretraining"], feeds["fine-tuning"]
        pre_tps = pre.real / seconds["pretraining"]
        lens = np.diff(enc.train["offsets"])
        print(
            f"conversations: {made:,} synthesized, {len(lens):,} kept, {enc.cropped:,} cropped to {args.seq_len + 1} tokens; "
            f"median {int(np.median(lens))} tokens; model {args.preset} ({model.num_params():,} parameters), "
            f"{args.micro_batch} x {args.seq_len}, {device.type}, {compiled}"
        )
        print(f"pretraining (packed rows):          {pre_tps:12,.0f} tokens/s")
        print(f"fine-tuning, positions computed:    {ft.positions / seconds['fine-tuning']:12,.0f} positions/s")
        print(f"fine-tuning, conversation tokens:   {ft.real / seconds['fine-tuning']:12,.0f} tokens/s")
        print(f"fine-tuning, assistant tokens:      {ft.targets / seconds['fine-tuning']:12,.0f} tokens/s  (the loss's targets)")
        print(
            f"of the fine-tuning positions: {1 - ft.real / ft.positions:.1%} padding, "
            f"{(ft.real - ft.targets) / ft.positions:.1%} prompt (no loss), {ft.targets / ft.positions:.1%} assistant; "
            f"rows {ft.positions / ft.rows:.0f} positions wide on average (packed: {args.seq_len})"
        )
        print(f"ratio fine-tuning / pretraining tokens/s: {ft.real / seconds['fine-tuning'] / pre_tps:.3f}  (target >= 0.8)")
        for f in feeds.values():
            f.feed.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
