"""``webmill tokenizer train``, ``webmill train`` and ``webmill generate``."""

from __future__ import annotations

import click

from webmill.cli import finish, json_option, pass_ctx


@click.group("tokenizer")
def tokenizer():
    """Train a byte-level BPE tokenizer on a shard set, and encode the set with it."""


@tokenizer.command("train")
@click.option("--shards", default=None, help="shard set name (default: the newest) or a document dataset path")
@click.option("--vocab-size", type=int, default=None, help="vocabulary size (default: [train] vocab_size)")
@json_option
@pass_ctx
def tokenizer_train(ctx, shards, vocab_size, as_json):
    """Train on a bounded sample of the train split; report chars/token on the held-out split."""
    from dataclasses import replace

    from webmill.progress import Progress
    from webmill.settings import override
    from webmill.train.stage import TokenizerStage

    cfg = override(ctx.config.train, section="train", vocab_size=vocab_size)
    with Progress(quiet=ctx.verbosity < 0) as progress:
        info = TokenizerStage(shards).run(ctx.root(), ctx.ray, replace(ctx.config, train=cfg), progress)
    lines = [
        f"tokenizer for {info['shards']}: {info['vocab_size']:,} tokens, {info['chars_per_token']:.2f} chars/token "
        f"on {info['heldout_docs']:,} held-out documents ({info['heldout']})"
    ]
    if "tokens" in info:
        lines.append("  tokens: " + ", ".join(f"{k} {v:,}" for k, v in info["tokens"].items()))
    lines.append(f"  saved: {info['path']}/tokenizer.json")
    finish(as_json, info, lines)


@tokenizer.command("encode")
@click.option("--shards", default=None, help="shard set name (default: the newest)")
@json_option
@pass_ctx
def tokenizer_encode(ctx, shards, as_json):
    """Encode a shard set with its tokenizer into token files the trainer reads (no tokenizing
    while training). `webmill tokenizer train` already does this; run it again for a shard set
    encoded before, or after replacing its tokenizer."""
    from webmill.progress import Progress
    from webmill.shards.training import newest_shard_set
    from webmill.train.tokenizer import encode_shard_set

    root = ctx.root()
    name = shards or newest_shard_set(root)
    with Progress(quiet=ctx.verbosity < 0) as progress:
        done = [0]

        def show(path):
            done[0] += 1
            progress.update(f"tokenizer encode: {done[0]:,} shard(s) encoded")

        info = encode_shard_set(root, name, on_progress=show, ray_fn=ctx.ray)
    lines = [
        f"encoded {info['shards']} with {info['tokenizer_shown']} ({info['dtype']} token ids)",
        "  tokens: " + ", ".join(f"{k} {v:,}" for k, v in info["tokens"].items()),
    ]
    finish(as_json, info, lines)


@click.command("train")
@click.option("--shards", default=None, help="shard set name (default: the newest) or a document dataset path")
@click.option("--name", default=None, help="run name under <root>/runs/ (default: <shards>-<time>)")
@click.option("--resume", "resume", default=None, help="continue RUN (a name under runs/ or a path) from its newest checkpoint")
@click.option("--preset", default=None, help="model size: tiny, small, medium")
@click.option("--max-steps", type=int, default=None)
@click.option("--stop-after", type=int, default=None, help="stop this session after N steps (resume later)")
@click.option("--workers", type=int, default=None, help="data-parallel Ray Train workers (1 = in-process)")
@click.option("--gpus-per-worker", type=float, default=None)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@json_option
@pass_ctx
def train(ctx, shards, name, resume, preset, max_steps, stop_after, workers, gpus_per_worker, device, as_json):
    """Train a Llama-style model on training shards; writes runs/<name>/final/ for transformers."""
    from dataclasses import replace

    from webmill.progress import Progress
    from webmill.settings import override
    from webmill.train.stage import TrainStage

    cfg = override(
        ctx.config.train,
        section="train",
        preset=preset,
        max_steps=max_steps,
        stop_after=stop_after,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        device=device,
    )
    s = TrainStage(shards, name, resume=resume).run(ctx.root(), ctx.ray, replace(ctx.config, train=cfg), Progress.silent())
    lines = [
        f"train {s['name']}: step {s['step']}/{s['max_steps']}, {s['tokens_seen']:,} tokens, "
        f"train loss {_fmt(s['train_loss'])}, val loss {_fmt(s['val_loss'])} "
        f"(unigram entropy {_fmt(s['val_unigram_entropy'])})",
        f"  run: {s['run_dir']}",
    ]
    if s.get("final"):
        lines.append(f"  model: {s['final']} (transformers.AutoModelForCausalLM.from_pretrained)")
    else:
        lines.append(f"  stopped before max_steps: `webmill train --resume {s['name']}` continues")
    finish(as_json, s, lines)


@click.command("generate")
@click.argument("run_dir")
@click.option("--prompt", default="", help="text to continue")
@click.option("--max-new-tokens", type=int, default=100, show_default=True)
@click.option("--temperature", type=float, default=0.8, show_default=True, help="0 = greedy")
@click.option("--top-k", type=int, default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--chat", "as_chat", is_flag=True, help="the prompt is a user's turn; print the assistant's reply (a `webmill sft` run)")
@pass_ctx
def generate(ctx, run_dir, prompt, max_new_tokens, temperature, top_k, seed, device, as_chat):
    """Sample text from a trained run, streaming tokens to stdout."""
    from webmill.train.generate import stream_reply, stream_text

    model, tok = _load(ctx, run_dir, device)
    sampling = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k or None, seed=seed)
    if as_chat:
        pieces = stream_reply(model, tok, [{"role": "user", "content": prompt}], **sampling)
    else:
        click.echo(prompt, nl=False)
        pieces = stream_text(model, tok, prompt, **sampling)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


def _load(ctx, run_dir: str, device: str):
    import os

    from webmill.train.generate import load_run
    from webmill.train.runfiles import RunFiles
    from webmill.train.trainer import pick_device

    # a folder on this machine needs no root; a name is looked up under the root's runs/
    root = None if os.path.isdir(run_dir) else ctx.root(create=False, writable=False)
    return load_run(RunFiles.named(root, run_dir), pick_device(device))


@click.command("sft")
@click.argument("run", required=False)
@click.option("--data", default=None, help="conversations, one JSON object per line (default: synthesized from RUN's shards)")
@click.option("--name", default=None, help="the fine-tuned run's name under runs/ (default: RUN-sft)")
@click.option("--resume", "resume", default=None, help="continue a fine-tuning run from its newest checkpoint")
@click.option("--epochs", type=int, default=None)
@click.option("--max-steps", type=int, default=None)
@click.option("--stop-after", type=int, default=None, help="stop this session after N steps (resume later)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@json_option
@pass_ctx
def sft(ctx, run, data, name, resume, epochs, max_steps, stop_after, device, as_json):
    """Fine-tune a pretrained RUN on conversations into an assistant (chat format, loss on its turns only)."""
    import dataclasses

    from webmill.errors import UserError
    from webmill.settings import override
    from webmill.train.sft import make_sft_plan, resume_sft_plan, sft_lock, sft_loop

    cfg = override(ctx.config.sft, section="sft", epochs=epochs, max_steps=max_steps, stop_after=stop_after, device=device)
    root = ctx.root()
    if not resume and not run:
        raise UserError("webmill sft: name the pretrained RUN to fine-tune (or --resume NAME)")
    # one process per fine-tuning run: two at once trained into one folder, each writing
    # checkpoints, metrics and final/ over the other's
    with sft_lock(root, resume=resume, base=run, name=name):
        if resume:
            plan = resume_sft_plan(root, resume)
            plan["sft"].update({k: v for k, v in dataclasses.asdict(cfg).items() if k in ("stop_after", "device")})
        else:
            plan = make_sft_plan(root, dataclasses.asdict(cfg), base=run, data=data, name=name, say=lambda m: click.echo(m, err=True))
        s = sft_loop({**plan, "_fences": dict(root.fences)})
    d = s["data"]
    skipped = ", ".join(f"{why} {n:,}" for why, n in sorted(d["skipped"].items())) or "none"
    lines = [
        f"sft {s['name']}: step {s['step']}/{s['max_steps']}, held-out assistant-token loss {_fmt(s['val_loss'])} "
        f"(pretrained model: {_fmt(s['base_val_loss'])})",
        f"  conversations: {d['train']:,} trained on, {d['val']:,} held out, {d['cropped']:,} cropped; skipped: {skipped}",
        f"  padding: {_pct(s['padding_share'])} of the positions computed; {s['tokens_per_s'] or 0:,.0f} conversation tokens/s",
    ]
    if s.get("final"):
        lines.append(f"  ends its turn with <|end|> on {_pct(s['ends_turns'])} of the held-out prompts")
        lines.append(f"  model: {s['final']} (transformers: apply_chat_template, then generate)")
        lines.append(f"  chat: webmill chat {s['name']}")
    else:
        lines.append(f"  stopped before the end: `webmill sft --resume {s['name']}` continues")
    finish(as_json, s, lines)


@click.command("chat")
@click.argument("run_dir")
@click.option("--system", default=None, help="a system message to start the conversation with")
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True, help="0 = greedy")
@click.option("--top-k", type=int, default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@pass_ctx
def chat(ctx, run_dir, system, max_new_tokens, temperature, top_k, seed, device):
    """Talk with a fine-tuned run: one line per turn on stdin, the reply streamed; an empty line or EOF ends."""
    import sys

    from webmill.train.generate import stream_reply

    model, tok = _load(ctx, run_dir, device)
    messages = [{"role": "system", "content": system}] if system else []
    interactive = sys.stdin.isatty()
    turn = 0
    while True:
        if interactive:
            click.echo("you> ", nl=False)
        line = sys.stdin.readline()
        if not line.strip():
            return
        messages.append({"role": "user", "content": line.strip()})
        click.echo("assistant> ", nl=False)
        reply = ""
        sampling = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k or None, seed=seed + turn)
        for piece in stream_reply(model, tok, messages, **sampling):
            reply += piece
            click.echo(piece, nl=False)
        click.echo()
        messages.append({"role": "assistant", "content": reply})
        turn += 1


@click.command("sweep")
@click.option("--shards", default=None, help="shard set name (default: the newest)")
@click.option("--sizes", default="64x2,96x3,128x4", show_default=True, help="model sizes, DIMxLAYERS (DIM a multiple of 32)")
@click.option("--tokens", default="250k,500k,1M", show_default=True, help="tokens each size is trained on")
@click.option("--name", default=None, help="the sweep's name under sweeps/ (default: <shards>-sweep)")
@click.option("--budget", "budgets", multiple=True, type=float, help="FLOPs to split (repeatable; default 10/100/1000x the largest run)")
@click.option("--target-params", type=float, default=None, help="a model size to size the corpus for (default: the small preset)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@json_option
@pass_ctx
def sweep(ctx, shards, sizes, tokens, name, budgets, target_params, device, as_json):
    """Train a grid of small models on the shards (Ray tasks in parallel), fit L(N, D), and size the corpus."""
    from webmill.progress import Progress
    from webmill.settings import override
    from webmill.shards.training import newest_shard_set
    from webmill.train.sweep import check_grid, parse_counts, parse_sizes, run_sweep

    size_list, token_list = parse_sizes(sizes), parse_counts(tokens)
    check_grid(size_list, token_list)  # before anything starts
    root = ctx.root()
    shards = shards or newest_shard_set(root)
    cfg = override(ctx.config.train, section="train", device=device)
    with Progress(quiet=ctx.verbosity < 0) as progress:

        def show(point, done, total):
            progress.update(
                f"sweep: {done}/{total} runs, {point['label']}: val loss {point['val_loss']:.3f}"
                + (" (reused)" if point["reused"] else f" in {point['seconds']:.0f}s"),
                keep=True,
            )

        out = run_sweep(
            root,
            cfg,
            shards=shards,
            name=name or f"{shards}-sweep",
            sizes=size_list,
            tokens=token_list,
            budgets=list(budgets),
            target_params=target_params,
            ray_fn=ctx.ray,
            on_result=show,
        )
    law = out["fit"]
    lines = [
        f"sweep {out['name']} on {out['shards']}: {len(out['points'])} runs ({len(size_list)} sizes x {len(token_list)} token counts), "
        f"fit R² {_fmt(law['r2'])}",
        f"  L(N, D) = {law['E']:.3f} + {law['A']:.4g} / N^{law['alpha']:.3f} + {law['B']:.4g} / D^{law['beta']:.3f}"
        f"   (alpha {law['alpha']:.3f}, beta {law['beta']:.3f})",
        f"  {'run':>16} {'N':>10} {'D':>10} {'epochs':>7} {'val loss':>9} {'residual':>9}",
    ]
    for p in out["points"]:
        res, epochs = law["residuals"][p["label"]], p.get("epochs")
        lines.append(
            f"  {p['label']:>16} {_count(p['params']):>10} {_count(p['tokens_seen']):>10} "
            f"{'n/a' if epochs is None else f'{epochs:.2f}':>7} {p['val_loss']:9.3f} {res:+9.3f}"
        )
    for c in out["compute_optimal"]:
        n, d = _count(c["params"]), _count(c["tokens"])
        lines.append(f"  compute-optimal for {c['flops']:.3g} FLOPs: N {n}, D {d} (predicted loss {_fmt(c['loss'])})")
    t = out["target"]
    more = ""
    if t["tokens"] is None:
        more = " (not bounded by this fit)"
    elif t["corpus_tokens"] and t["more_tokens"]:
        more = f"; the corpus has {_count(t['corpus_tokens'])}: {_count(t['more_tokens'])} more to crawl"
        more += f" ({t['tokens'] / t['corpus_tokens']:.1f}x the corpus)"
    elif t["corpus_tokens"]:
        more = f"; the corpus has {_count(t['corpus_tokens'])}: enough"
    lines.append(f"  a model of {_count(t['params'])} parameters is compute-optimal at {_count(t['tokens'])} tokens{more}")
    if law["warnings"]:
        lines.append(f"  a weak fit ({'; '.join(law['warnings'])}): widen the grid (more sizes, 10x or more between token counts)")
    lines += [f"  note: {n}" for n in out["notes"]]
    lines.append(f"  saved: {out['path']} (charted by `webmill report`)")
    finish(as_json, out, lines)


def _count(x) -> str:
    if x is None:
        return "n/a"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"
