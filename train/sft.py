"""``webmill sft``: a pretrained run fine-tuned on conversations into an assistant.

The run's tokenizer gets the chat markers (``webmill.train.chat``) as new special tokens;
the model's embedding rows (and an untied output layer's) grow by as many rows, each new
row the mean of the pretrained ones, and every other weight is the pretrained run's.

**Padding, not packing.** Each row of a micro-batch is one conversation, right-padded to
the longest in the batch (rounded up to 16 positions). Attention is causal, so no token
sees a later one: a conversation never attends to padding, and no row holds two
conversations. Padding and the prompt's positions have target -1: the loss is the mean
over assistant tokens only. Batches are cut from windows of 16 micro-batches' worth of
conversations sorted by length, so rows in a batch are of similar length; the share of
positions computed on padding is counted and shown (``padding_share``). The order is
drawn from (seed, epoch), and the position is (epoch, batch): resume is exact.

The run lives in ``runs/<name>/`` like a pretraining run (plan, checkpoints, metrics,
``final/``); ``final/`` also carries ``chat_template`` in ``tokenizer_config.json``, so
``transformers``' ``apply_chat_template`` and ``generate`` chat with it as
``webmill chat`` does, and ``training.json`` names the pretrained run and the
conversations' file and sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from webmill.errors import UserError
from webmill.names import check_name
from webmill.progress import Progress
from webmill.shards import layout
from webmill.shards.root import CorpusRoot
from webmill.train import accel
from webmill.train import chat as chatlib
from webmill.train import checkpoint as ckpt
from webmill.train import tokenizer as toklib
from webmill.train.feed import DeviceFeed
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.runfiles import RunFiles, tensors_bytes

DATA = "data"
TOKENIZER = "tokenizer"
SYNTHESIZED = "conversations.jsonl"
PAD_MULTIPLE = 16
WINDOW_BATCHES = 16


# the plan ------------------------------------------------------------------------
def sft_run_name(root: CorpusRoot, base: str, name: str | None) -> str:
    """The fine-tuned run's name: ``--name``, else the pretrained run's name + ``-sft``."""
    from webmill.train.plan import run_of

    return check_name(name or f"{os.path.basename(run_of(root, base))}-sft", "run name")


def sft_lock(root: CorpusRoot, *, resume: str | None, base: str | None, name: str | None):
    """The run lock (``webmill.locks``) of the run a ``webmill sft`` writes."""
    from webmill.locks import run_lock
    from webmill.train.plan import run_of

    folder, run = os.path.split(run_of(root, resume)) if resume else (layout.RUNS, sft_run_name(root, base, name))
    return run_lock(root, folder, run)


def make_sft_plan(root: CorpusRoot, cfg: dict, *, base: str, data: str | None, name: str | None, say=lambda _m: None) -> dict:
    from webmill.train.generate import load_run
    from webmill.train.plan import run_of

    base_files = RunFiles(root, run_of(root, base))
    base_model, tok = load_run(base_files, torch.device("cpu"))
    name = sft_run_name(root, base, name)
    run = RunFiles(root, layout.run(name))
    if run.exists("plan.json"):
        raise UserError(f"run {name} exists ({run.display()}); `webmill sft --resume {name}` continues it")
    seq_len = cfg["seq_len"] or _base_seq_len(base_files)
    if seq_len + 1 > base_model.cfg.max_seq_len:
        raise UserError(f"[sft] seq_len = {seq_len} is longer than the model's context ({base_model.cfg.max_seq_len - 1})")
    added = chatlib.add_chat_tokens(tok)
    ids = chatlib.ChatIds.of(tok)
    digest = hashlib.sha256()
    source, lines = _conversation_source(root, run, base_files, data, cfg, say, chatlib.line_cap(seq_len), digest)
    enc = chatlib.read_conversations(lines, tok, seq_len=seq_len, val_fraction=cfg["val_fraction"])
    kept = len(enc.train["offsets"]) - 1 + len(enc.val["offsets"]) - 1
    if len(enc.train["offsets"]) < 2:
        reasons = ", ".join(f"{why}: {n:,}" for why, n in enc.skipped.most_common()) or "the file is empty"
        raise UserError(f"{source}: no conversation to train on ({enc.lines:,} lines; skipped {reasons})")
    for split in ("train", "val"):
        run.write_bytes(_npz(getattr(enc, split)), DATA, f"{split}.npz")
    _save_tokenizer(run, tok)
    model = {**base_model.cfg.to_dict(), "vocab_size": max(tok.get_vocab_size(), base_model.cfg.vocab_size), "eos_id": ids.end}
    plan = {
        "kind": "sft",
        "name": name,
        "root": root.uri,
        "run": run.rel,
        "run_dir": run.display(),
        "base": {"run": base_files.rel, "shown": base_files.display(), "model": base_model.cfg.to_dict(), "added_tokens": added},
        "model": model,
        "tokenizer": f"{run.rel}/{TOKENIZER}",
        "data": {
            "source": source,
            "sha256": digest.hexdigest(),
            "lines": enc.lines,
            "conversations": kept,
            "train": len(enc.train["offsets"]) - 1,
            "val": len(enc.val["offsets"]) - 1,
            "train_tokens": int(len(enc.train["ids"])),
            "assistant_tokens": int(enc.train["learn"].sum()),
            "cropped": enc.cropped,
            "skipped": dict(enc.skipped),
            "skipped_examples": enc.examples,
        },
        "sft": {**cfg, "seq_len": seq_len},
    }
    run.write_plan(plan)
    return plan


def resume_sft_plan(root: CorpusRoot, name: str) -> dict:
    from webmill.train.plan import run_of

    run = RunFiles(root, run_of(root, name))
    if not run.exists("plan.json"):
        raise UserError(f"cannot resume {name}: {run.display('plan.json')} not found")
    plan = run.read_plan()
    if plan.get("kind") != "sft":
        raise UserError(f"{run.display()}: a pretraining run, not a fine-tuning one (`webmill train --resume` continues it)")
    return {**plan, "root": root.uri, "run": run.rel, "run_dir": run.display()}


def _base_seq_len(base: RunFiles) -> int:
    if base.exists("final", "training.json"):
        return int(base.read_json("final", "training.json")["train_config"]["seq_len"])
    return int(base.read_plan()["train"]["seq_len"])


def _conversation_source(root, run: RunFiles, base: RunFiles, data: str | None, cfg: dict, say, cap: int, digest):
    """(what to call the conversations, an iterator of their lines, each at most ``cap`` bytes or
    None): the user's JSONL, or conversations synthesized from the pretraining run's shards into
    the run's folder. ``digest`` sees every byte."""
    if data is not None:
        if not os.path.isfile(data):
            raise UserError(f"--data {data}: no such file")
        return os.path.abspath(data), _file_lines(data, cap, digest)
    from webmill.train import conversations
    from webmill.train.plan import input_paths

    plan = base.read_plan()
    paths = list(dict.fromkeys(input_paths(root, plan["data"], "train") + input_paths(root, plan["data"], "val")))
    buf = io.BytesIO()
    n = conversations.write_jsonl(conversations.from_parts(root.fs, paths, cfg["synthesize_limit"]), buf)
    run.write_bytes(buf.getvalue(), SYNTHESIZED)
    say(f"sft: {n:,} conversations synthesized from {plan['data']['name']}'s pages into {run.display(SYNTHESIZED)}")
    buf.seek(0)
    return run.display(SYNTHESIZED), chatlib.bounded_lines(buf, cap, digest)


def _file_lines(path: str, cap: int, digest):
    with open(path, "rb") as f:
        yield from chatlib.bounded_lines(f, cap, digest)


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_split(run: RunFiles, split: str) -> dict:
    with np.load(io.BytesIO(run.read_bytes(DATA, f"{split}.npz")), allow_pickle=False) as z:
        return {k: z[k] for k in ("ids", "learn", "offsets")}


def chat_tokenizer_files(tok) -> dict[str, bytes]:
    """tokenizer.json and the transformers config with the chat template."""
    with tempfile.TemporaryDirectory() as tmp:
        toklib.save(tok, tmp)
        with open(os.path.join(tmp, "tokenizer_config.json")) as f:
            config = json.load(f)
        with open(os.path.join(tmp, "tokenizer.json"), "rb") as f:
            tok_json = f.read()
    config.update({"chat_template": chatlib.CHAT_TEMPLATE, "additional_special_tokens": chatlib.CHAT_SPECIALS})
    specials = {"bos_token": toklib.BOS, "eos_token": toklib.EOS, "pad_token": toklib.PAD}
    specials["additional_special_tokens"] = chatlib.CHAT_SPECIALS
    return {
        "tokenizer.json": tok_json,
        "tokenizer_config.json": json.dumps(config, indent=1).encode(),
        "special_tokens_map.json": json.dumps(specials, indent=1).encode(),
    }


def _save_tokenizer(run: RunFiles, tok) -> None:
    for name, data in chat_tokenizer_files(tok).items():
        run.write_bytes(data, TOKENIZER, name)


# the batches --------------------------------------------------------------------
class ConversationBatches:
    """Micro-batches of whole conversations, (2, B, T) int64: inputs and targets (-1: no loss)."""

    def __init__(self, arrays: dict, *, micro_batch: int, seq_len: int, seed: int, pad_id: int, prefetch: int = 4):
        self.ids, self.learn, self.offsets = arrays["ids"], arrays["learn"], arrays["offsets"]
        self.lens = np.diff(self.offsets)
        self.micro_batch, self.seq_len, self.seed, self.pad_id = micro_batch, seq_len, seed, pad_id
        self.prefetch = prefetch
        self._state = {"epoch": 0, "batch": 0}
        self.stats = {"positions": 0, "padding": 0, "assistant_tokens": 0, "batches": 0}

    def __len__(self) -> int:
        """Batches in one epoch."""
        return -(-len(self.lens) // self.micro_batch)

    def epoch_order(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches (conversation indices): shuffled, windows sorted by length, batches shuffled."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lens))
        window = self.micro_batch * WINDOW_BATCHES
        batches = []
        for w in range(0, len(order), window):
            chunk = order[w : w + window]
            chunk = chunk[np.argsort(-self.lens[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.micro_batch] for i in range(0, len(chunk), self.micro_batch))
        return [batches[i] for i in rng.permutation(len(batches))]

    def make(self, convs: np.ndarray) -> torch.Tensor:
        width = int(self.lens[convs].max()) - 1
        width = min(self.seq_len, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE)
        out = np.full((2, len(convs), width), -1, dtype=np.int64)
        out[0].fill(self.pad_id)
        for row, c in enumerate(convs):
            a, b = int(self.offsets[c]), int(self.offsets[c + 1])
            n = b - a - 1
            out[0, row, :n] = self.ids[a : b - 1]
            out[1, row, :n] = np.where(self.learn[a + 1 : b], self.ids[a + 1 : b], -1)
        self.stats["positions"] += out[0].size
        self.stats["padding"] += out[0].size - int((self.lens[convs] - 1).sum())
        self.stats["assistant_tokens"] += int((out[1] >= 0).sum())
        self.stats["batches"] += 1
        return torch.from_numpy(out)

    def state_dict(self) -> dict:
        return dict(self._state)

    def load_state_dict(self, state: dict) -> None:
        self._state = {"epoch": int(state["epoch"]), "batch": int(state["batch"])}

    def set_position(self, state: dict) -> None:
        self._state = state

    def _positions(self):
        epoch, b = self._state["epoch"], self._state["batch"]
        while True:
            order = self.epoch_order(epoch)
            while b < len(order):
                b += 1
                yield order[b - 1], {"epoch": epoch, "batch": b}
            epoch, b = epoch + 1, 0

    def iter_states(self, *, pin_memory: bool = False):
        """(batch, position after it), made in a background thread (DeviceFeed's contract)."""
        from webmill.train.loader import made_ahead

        def items():
            for convs, state in self._positions():
                batch = self.make(convs)
                yield (batch.pin_memory() if pin_memory else batch), state

        return made_ahead(items, self.prefetch, name="webmill-sft-batches")


# the loop -----------------------------------------------------------------------
def grow_from_base(model: LlamaLM, base: LlamaLM) -> None:
    """The base weights into ``model``; rows for the new tokens are the mean of the base's rows."""
    own = model.state_dict()
    for key, value in base.state_dict().items():
        if own[key].shape == value.shape:
            own[key].copy_(value)
        else:  # embed_tokens / lm_head: more rows
            n = value.shape[0]
            own[key][:n].copy_(value)
            own[key][n:].copy_(value.mean(0, keepdim=True).expand(own[key].shape[0] - n, -1))


@torch.no_grad()
def assistant_loss(model, arrays: dict, *, micro_batch: int, seq_len: int, pad_id: int, device, autocast) -> float | None:
    """Mean loss per assistant token over every conversation of ``arrays``."""
    if len(arrays["offsets"]) < 2:
        return None
    batches = ConversationBatches(arrays, micro_batch=micro_batch, seq_len=seq_len, seed=0, pad_id=pad_id)
    order = np.argsort(batches.lens, kind="stable")
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(order), micro_batch):
            b = batches.make(order[i : i + micro_batch]).to(device)
            with autocast:
                logits = model(b[0])
            total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), b[1].reshape(-1), ignore_index=-1, reduction="sum").item()
            count += int((b[1] >= 0).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def ends_turns(model, arrays: dict, chat_ids: chatlib.ChatIds, *, n: int = 16, max_new: int = 200) -> float | None:
    """The share of held-out prompts after which greedy decoding ends the turn with ``<|end|>``."""
    convs = len(arrays["offsets"]) - 1
    if not convs:
        return None
    ended = 0
    for c in range(min(n, convs)):
        a, b = int(arrays["offsets"][c]), int(arrays["offsets"][c + 1])
        ids, learn = arrays["ids"][a:b], arrays["learn"][a:b]
        first = int(np.argmax(learn)) if learn.any() else len(ids)  # the prompt ends at the first assistant token
        prompt = [int(x) for x in ids[:first]]
        room = min(max_new, model.cfg.max_seq_len - len(prompt))
        out = list(model.generate(prompt, room, temperature=0, eos_id=chat_ids.end)) if room > 0 else []
        ended += bool(out) and out[-1] == chat_ids.end
    return ended / min(n, convs)


def sft_loop(plan: dict) -> dict:
    from webmill.train.generate import load_run
    from webmill.train.plan import load_tokenizer
    from webmill.train.trainer import Distributed, lr_at, make_optimizer, optimizer_step, pick_device, step_line, wrap_model

    cfg = plan["sft"]
    run = RunFiles.of(plan)
    device = pick_device(cfg["device"])
    accel.configure(device)
    torch.manual_seed(cfg["seed"])
    tok = load_tokenizer(run.root, plan["tokenizer"])
    chat_ids = chatlib.ChatIds.of(tok)
    pad = toklib.special_ids(tok)["pad"]
    model = LlamaLM(ModelConfig.from_dict(plan["model"], f"{plan['run_dir']}/plan.json"))
    train, val = load_split(run, "train"), load_split(run, "val")
    batches = ConversationBatches(train, micro_batch=cfg["micro_batch"], seq_len=cfg["seq_len"], seed=cfg["seed"], pad_id=pad)
    max_steps = cfg["max_steps"] or cfg["epochs"] * len(batches)
    opt_cfg = {**cfg, "max_steps": max_steps}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    latest = ckpt.latest(run)
    if latest is None:
        base, _ = load_run(RunFiles(run.root, plan["base"]["run"]), torch.device("cpu"))
        grow_from_base(model, base)
        del base
    model.to(device)
    optimizer = make_optimizer(model, opt_cfg, device)
    step, tokens_seen, history = 0, 0, {}
    if latest is not None:
        state = ckpt.restore(run, latest, model, optimizer, device)
        batches.load_state_dict(state["batches"])
        step, tokens_seen, history = state["step"], state["tokens_seen"], state["history"]

    def evaluate() -> float | None:
        sizes = {"micro_batch": cfg["micro_batch"], "seq_len": cfg["seq_len"], "pad_id": pad}
        return assistant_loss(model, val, **sizes, device=device, autocast=autocast)

    if "base_val_loss" not in history:
        history["base_val_loss"] = evaluate()  # the pretrained model on the same held-out conversations
    dd = Distributed()
    train_model, compiled = wrap_model(model, cfg, dd, device, autocast)
    stop_at = min(max_steps, step + cfg["stop_after"]) if cfg["stop_after"] else max_steps
    run.truncate_metrics(step)
    say = Progress()
    d = plan["data"]
    say.update(
        f"sft {plan['name']}: from {plan['base']['shown']}, {d['train']:,} conversations ({d['assistant_tokens']:,} assistant "
        f"tokens) + {d['val']:,} held out, {len(batches)} batches/epoch, steps {step}→{stop_at}, {device.type}, {compiled}; "
        f"held-out assistant loss before: {_fmt(history['base_val_loss'])}",
        keep=True,
    )
    feed = _Counted(DeviceFeed(batches, device), pad, device)
    t0 = time.time()
    try:
        while step < stop_at:
            lr = lr_at(step, opt_cfg)
            loss = optimizer_step(train_model, model, optimizer, feed, lr, 1, cfg, dd, device, autocast)
            step += 1
            history["train_loss"], learned = torch.stack([loss.float(), feed.take_learned().float()]).tolist()  # one sync
            tokens_seen += int(learned)
            record = {"step": step, "loss": history["train_loss"], "lr": lr, "tokens": tokens_seen}
            if step % cfg["eval_every"] == 0 or step == max_steps:
                record["val_loss"] = history["val_loss"] = evaluate()
            run.append_metrics(record)
            say.update(step_line(record, stop_at), keep="val_loss" in record or step == stop_at)
            if step % cfg["checkpoint_every"] == 0 or step == stop_at:
                run.flush_metrics()
                state = {"model": plan["model"], "batches": batches.state_dict(), "history": history, "tokens_seen": tokens_seen}
                ckpt.save(run, step, model, optimizer, state)
    finally:
        feed.close()
        say.close()
        run.flush_metrics()
    seconds = time.time() - t0
    real = feed.real_positions()
    summary = {
        "name": plan["name"],
        "kind": "sft",
        "run_dir": plan["run_dir"],
        "base": plan["base"]["shown"],
        "step": step,
        "max_steps": max_steps,
        "assistant_tokens_seen": tokens_seen,
        "train_loss": history.get("train_loss"),
        "val_loss": history.get("val_loss"),
        "base_val_loss": history["base_val_loss"],
        # of the positions this session computed, the share that was padding
        "padding_share": 1 - real / feed.positions if feed.positions else None,
        "positions_per_s": feed.positions / seconds if seconds > 0 else None,
        "tokens_per_s": real / seconds if seconds > 0 else None,
        "compile": compiled,
        "data": plan["data"],
        "finished": step >= max_steps,
    }
    if step >= max_steps:
        summary["ends_turns"] = ends_turns(model, val, chat_ids)
        summary["final"] = export_sft(plan, run, model, tok, summary)
    run.write_json(summary, "summary.json")
    return summary


class _Counted:
    """The feed, counting on the device what each batch holds: assistant tokens (the loss's
    targets) and real (not padding) positions; read once per step, with the loss."""

    def __init__(self, feed: DeviceFeed, pad_id: int, device):
        self.feed, self.pad_id = feed, pad_id
        self.positions = 0
        self._learned = torch.zeros((), dtype=torch.int64, device=device)
        self._real = torch.zeros((), dtype=torch.int64, device=device)

    def __next__(self) -> torch.Tensor:
        batch = next(self.feed)
        self.positions += batch[0].numel()
        self._learned += (batch[1] >= 0).sum()
        self._real += (batch[0] != self.pad_id).sum()
        return batch

    def take_learned(self) -> torch.Tensor:
        out, self._learned = self._learned, torch.zeros_like(self._learned)
        return out

    def real_positions(self) -> int:
        return int(self._real.item())

    def close(self) -> None:
        self.feed.close()


def export_sft(plan: dict, run: RunFiles, model, tok, summary: dict) -> str:
    from webmill.train.checkpoint import weights_for_disk

    mcfg = ModelConfig.from_dict(plan["model"], f"{plan['run_dir']}/plan.json")
    chat_ids = chatlib.ChatIds.of(tok)
    eos = toklib.special_ids(tok)["eos"]
    base = RunFiles(run.root, plan["base"]["run"])
    files = {
        "model.safetensors": tensors_bytes(weights_for_disk(model)),
        "config.json": _json({**mcfg.to_hf(), "eos_token_id": [chat_ids.end, eos]}),
        "generation_config.json": _json({"bos_token_id": mcfg.bos_id, "eos_token_id": [chat_ids.end, eos], "do_sample": False}),
        **chat_tokenizer_files(tok),
    }
    files["training.json"] = _json(
        {
            "run": plan["name"],
            "kind": "sft",
            "webmill_model": plan["model"],
            "sft_config": plan["sft"],
            "base_run": plan["base"]["shown"],
            "base_training": base.read_json("final", "training.json") if base.exists("final", "training.json") else None,
            "conversations": plan["data"],
            "steps": summary["step"],
            "assistant_tokens_seen": summary["assistant_tokens_seen"],
            "train_loss": summary["train_loss"],
            "val_loss": summary["val_loss"],
            "base_val_loss": summary["base_val_loss"],
            "ends_turns": summary.get("ends_turns"),
            "train_config": {"seq_len": plan["sft"]["seq_len"]},
            "exported_at": time.time(),
        }
    )
    return run.write_folder(files, "final")


def _json(obj: dict) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode()


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"
