"""The training function: the same code in-process and on each Ray Train worker.

AdamW (fused on CUDA), linear warmup + cosine decay, gradient clipping,
gradient accumulation up to ``batch_tokens`` per optimizer step, bf16 autocast
and TF32 on CUDA, fp32 on CPU, ``torch.compile`` on CUDA (``webmill.train.accel``),
batches copied to the device ahead of the step (``webmill.train.feed``), the loss
summed on the device (one host synchronization per optimizer step), periodic
validation, a progress line and ``metrics.jsonl``, checkpoints, and at the end ``final/``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass

import torch

from webmill.progress import Progress
from webmill.train import accel
from webmill.train import checkpoint as ckpt
from webmill.train.export import export_final
from webmill.train.feed import DeviceFeed
from webmill.train.flops import peak_flops
from webmill.train.loader import PackedLoader, list_units
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.plan import input_paths, input_token_files, load_tokenizer
from webmill.train.runfiles import RunFiles, open_root


def lr_at(step: int, cfg: dict) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr · min_lr_ratio`` at ``max_steps``."""
    peak, warmup, total = cfg["lr"], cfg["warmup"], cfg["max_steps"]
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = peak * cfg["min_lr_ratio"]
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from webmill.errors import UserError

            raise UserError("[train] device = cuda, but no CUDA device is visible")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


class Distributed:
    """Rank, world size and collectives; a no-op outside Ray Train."""

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist if dist.is_available() and dist.is_initialized() else None
        self.rank = self.dist.get_rank() if self.dist else 0
        self.world = self.dist.get_world_size() if self.dist else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))

    def mean(self, value: torch.Tensor) -> float:
        """The workers' mean of a scalar tensor, read to the host."""
        if not self.dist:
            return value.item()
        t = value.detach().to(torch.float64).reshape(1)
        self.dist.all_reduce(t)
        return t.item() / self.world

    def gather(self, obj) -> list:
        if not self.dist:
            return [obj]
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.dist:
            return obj
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.dist:
            self.dist.barrier()


def train_loop(plan: dict) -> dict:
    """Train per ``plan``; returns the run summary (on every rank)."""
    cfg = plan["train"]
    run = RunFiles.of(plan)
    dd = Distributed()
    device = pick_device(cfg["device"], dd.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    accel.configure(device)
    torch.manual_seed(cfg["seed"])
    model = LlamaLM(ModelConfig.from_dict(plan["model"], f"{plan['run_dir']}/plan.json"))
    model.init_weights(cfg["seed"])
    model.to(device)
    tok = load_tokenizer(run.root, plan["tokenizer"])
    sizes = StepSizes.of(cfg, dd.world)
    loader = plan_loader(plan, tok, "train", rank=dd.rank, world_size=dd.world, root=run.root)
    optimizer = make_optimizer(model, cfg, device)
    step, tokens_seen, history = resume(run, plan, dd, model, optimizer, loader, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    train_model, compiled = wrap_model(model, cfg, dd, device, autocast)
    attention = accel.attention_path(model.cfg, device, torch.bfloat16 if device.type == "cuda" else torch.float32)

    flops_token, peak = model.flops_per_token(cfg["seq_len"]), peak_flops(device)
    if dd.rank == 0:
        run.truncate_metrics(step)
    stop_at = min(sizes.max_steps, step + cfg["stop_after"]) if cfg["stop_after"] else sizes.max_steps
    sched = {**cfg, "max_steps": sizes.max_steps}
    val_entropy = None
    if dd.rank == 0:
        say = Progress(quiet=plan.get("_quiet", False))  # the stage's one progress line (webmill.progress), drawn by rank 0
        say.update(
            f"train {plan['name']}: {model.num_params():,} parameters ({model.num_params(embeddings=False):,} "
            f"non-embedding), {flops_token / 1e6:.1f} MFLOPs/token, {sizes.tokens_per_step:,} tokens/step "
            f"({dd.world} worker(s) × {sizes.accum} × {cfg['micro_batch']} × {cfg['seq_len']}), {device.type}, steps {step}→{stop_at}, "
            f"attention {attention}, {compiled}, {'pre-tokenized shards' if loader.pretokenized else 'tokenizing on the fly'}",
            keep=True,
        )
        if not plan["data"]["val"]:
            say.update(f"train {plan['name']}: the validation split is empty; no validation loss will be reported", keep=True)
    batches = DeviceFeed(loader, device)
    throughput = _Throughput(flops_token, peak)
    try:
        while step < stop_at:
            lr = lr_at(step, sched)
            loss_sum = optimizer_step(train_model, model, optimizer, batches, lr, sizes.accum, cfg, dd, device, autocast)
            step += 1
            tokens_seen += sizes.tokens_per_step
            history["train_loss"] = dd.mean(loss_sum)  # the step's one host-device synchronization
            record = {"step": step, "loss": history["train_loss"], "lr": lr, "tokens": tokens_seen}
            if dd.rank == 0:
                record.update(throughput.add(sizes.tokens_per_step, final=step == stop_at))
            if step % cfg["eval_every"] == 0 or step == sizes.max_steps:
                val, val_entropy = evaluate(model, plan, tok, device, autocast, root=run.root)
                if val is not None:
                    record["val_loss"] = history["val_loss"] = val
            if dd.rank == 0:
                run.append_metrics(record)
                say.update(step_line(record, stop_at), keep="val_loss" in record or step == stop_at)
            if step % cfg["checkpoint_every"] == 0 or step == stop_at:
                save_checkpoint(run, plan, dd, model, optimizer, loader, step, tokens_seen, history)
    finally:
        batches.close()
        if dd.rank == 0:
            say.close()
            run.flush_metrics()
    summary = {
        "name": plan["name"],
        "run_dir": plan["run_dir"],
        "step": step,
        "max_steps": sizes.max_steps,
        "tokens_seen": tokens_seen,
        "train_loss": history.get("train_loss"),
        "val_loss": history.get("val_loss"),
        "val_unigram_entropy": val_entropy,
        "parameters": model.num_params(),
        "flops_per_token": flops_token,
        "device": device.type,
        "workers": dd.world,
        "loader": loader.stats,
        "attention": attention,
        "compile": compiled,
        "finished": step >= sizes.max_steps,
    }
    if dd.rank == 0 and step >= sizes.max_steps:
        summary["final"] = export_final(plan, run, model, summary)
    dd.barrier()
    return summary


@dataclass(frozen=True)
class StepSizes:
    """How one optimizer step is made: ``accum`` micro-batches on each of the workers, so that a
    step holds about ``batch_tokens``; and how many steps the run takes (``max_tokens`` caps them)."""

    accum: int
    tokens_per_step: int
    max_steps: int

    @classmethod
    def of(cls, cfg: dict, world: int) -> StepSizes:
        seq_len, micro = cfg["seq_len"], cfg["micro_batch"]
        accum = max(1, round(cfg["batch_tokens"] / (seq_len * micro * world)))
        tokens_per_step = accum * micro * seq_len * world
        max_steps = cfg["max_steps"]
        if cfg["max_tokens"]:
            max_steps = min(max_steps, math.ceil(cfg["max_tokens"] / tokens_per_step))
        return cls(accum, tokens_per_step, max_steps)


def make_optimizer(model, cfg: dict, device) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices only (not on norms and biases)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"],
        betas=(0.9, 0.95),
        eps=1e-8,
        fused=device.type == "cuda",
    )


def resume(run: RunFiles, plan: dict, dd: Distributed, model, optimizer, loader: PackedLoader, device) -> tuple[int, int, dict]:
    """(step, tokens seen, history) of the latest checkpoint, restored into the model, the optimizer
    and this rank's loader; (0, 0, {}) for a new run. Rank 0 picks the checkpoint and every rank
    restores that one, read from the root."""
    resume_from = dd.broadcast(ckpt.latest(run) if dd.rank == 0 else None)
    if not resume_from:
        return 0, 0, {}
    state = ckpt.restore(run, resume_from, model, optimizer, device)
    if state["model"] != plan["model"]:
        from webmill.errors import UserError

        raise UserError(f"{run.display('checkpoints', resume_from)}: checkpoint is for a different model")
    loader.load_state_dict(state["loaders"][dd.rank])
    return state["step"], state["tokens_seen"], state.get("history", {})


def wrap_model(model, cfg: dict, dd: Distributed, device, autocast) -> tuple:
    """The module the steps run through — DistributedDataParallel across workers (its gradient
    all-reduce runs bucket by bucket during the backward pass), compiled where ``[train] compile``
    says (on CUDA by default), eager if compiling fails — and what ran ("compiled" or "eager ...")."""
    train_model = model
    if dd.dist:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True
        )
    if not accel.wants_compile(cfg["compile"], device):
        return train_model, "eager"
    example = torch.randint(
        0,
        model.cfg.vocab_size,
        (cfg["micro_batch"], cfg["seq_len"] + 1),
        device=device,
        generator=torch.Generator(device=device).manual_seed(0),
    )
    return accel.compile_or_eager(train_model, list(model.parameters()), example, autocast)


def optimizer_step(
    train_model, model, optimizer, batches, lr: float, accum: int, cfg: dict, dd: Distributed, device, autocast
) -> torch.Tensor:
    """One optimizer step over ``accum`` micro-batches (gradients synchronized on the last one only);
    returns this worker's loss as a device tensor: nothing here waits for the device."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    loss_sum = torch.zeros((), device=device)
    for i in range(accum):
        batch = next(batches)  # already on the device (DeviceFeed)
        # packed rows (B, T + 1) shift into inputs and targets; fine-tuning batches (2, B, T) are both
        x, y = (batch[0], batch[1]) if batch.dim() == 3 else (batch[:, :-1], batch[:, 1:])
        sync = contextlib.nullcontext() if (i == accum - 1 or not dd.dist) else train_model.no_sync()
        with sync:
            with autocast:
                loss = train_model(x, y) / accum
            loss.backward()
        loss_sum += loss.detach()
    if cfg["grad_clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum


def save_checkpoint(run: RunFiles, plan: dict, dd: Distributed, model, optimizer, loader, step: int, tokens_seen: int, history: dict):
    """Every rank's loader position, then (rank 0) the metrics so far and the checkpoint."""
    loaders = dd.gather(loader.state_dict())
    if dd.rank == 0:
        run.flush_metrics()
        state = {"model": plan["model"], "loaders": loaders, "tokens_seen": tokens_seen, "history": history, "train": plan["train"]}
        ckpt.save(run, step, model, optimizer, state)
    dd.barrier()


class _Throughput:
    """Tokens per second and model FLOPs utilization, measured over at least a second of steps."""

    def __init__(self, flops_token: float, peak: float | None):
        self.flops_token, self.peak = flops_token, peak
        self.t_last, self.tokens = time.time(), 0

    def add(self, tokens: int, final: bool) -> dict:
        self.tokens += tokens
        now = time.time()
        if not (now - self.t_last > 1.0 or final):
            return {}
        tps = self.tokens / (now - self.t_last)
        self.t_last, self.tokens = now, 0
        return {"tokens_per_s": round(tps, 1), "mfu": round(tps * self.flops_token / self.peak, 5) if self.peak else None}


def plan_loader(plan: dict, tok, split: str, *, rank: int = 0, world_size: int = 1, root=None) -> PackedLoader:
    """The loader of a plan's ``train`` split (this rank's streams, endless) or ``val`` split (one stream, one pass).
    Shards stream through the root's filesystem: a local disk or the object store."""
    cfg, data = plan["train"], plan["data"]
    root = root or open_root(plan["root"])
    fs = root.fs
    id_filter = (split, cfg["val_fraction"]) if data["id_filter"] is not None else None
    train = split == "train"
    return PackedLoader(
        fs,
        list_units(fs, input_paths(root, data, split), input_token_files(root, data)),
        tok,
        seq_len=cfg["seq_len"],
        batch_rows=cfg["micro_batch"],
        bos_id=plan["model"]["bos_id"],
        rank=rank,
        world_size=world_size,
        workers=cfg["loader_workers"] if train else 1,
        seed=cfg["seed"],
        max_doc_tokens=cfg["max_doc_tokens"] or None,
        id_filter=id_filter,
        loop=train,
    )


@torch.no_grad()
def evaluate(model, plan: dict, tok, device, autocast, root=None) -> tuple[float | None, float | None]:
    """Mean loss over the first ``eval_batches`` validation batches, and those targets' unigram entropy (nats)."""
    cfg = plan["train"]
    if not plan["data"]["val"]:
        return None, None
    loader = plan_loader(plan, tok, "val", root=root)
    model.eval()
    losses, counts = [], torch.zeros(plan["model"]["vocab_size"], dtype=torch.float64)
    try:
        for i, batch in enumerate(loader):
            if i >= cfg["eval_batches"]:
                break
            batch = batch.to(device)
            with autocast:
                losses.append(model(batch[:, :-1], batch[:, 1:]).item())
            counts += torch.bincount(batch[:, 1:].reshape(-1).cpu(), minlength=counts.numel()).double()
    finally:
        model.train()
    if not losses:
        return None, None
    p = counts[counts > 0] / counts.sum()
    return sum(losses) / len(losses), float(-(p * p.log()).sum())


def step_line(r: dict, total: int) -> str:
    """A training step's progress line: a bar, the step, loss, learning rate, throughput, validation loss."""
    done = r["step"] / max(total, 1)
    bar = "#" * int(20 * done) + "-" * (20 - int(20 * done))
    extra = "".join(
        [
            f" tok/s {r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "",
            f" mfu {r['mfu'] * 100:.1f}%" if r.get("mfu") else "",
            f" val {r['val_loss']:.3f}" if "val_loss" in r else "",
        ]
    )
    return f"[{bar}] step {r['step']}/{total} loss {r['loss']:.3f} lr {r['lr']:.2e}{extra}"
