"""``webmill sweep``: the scaling law of the user's own corpus.

A grid of small models (sizes N) trained for token counts D on a shard set, one Ray task
per run (a CPU each, or a GPU each where the cluster has them), each run's held-out loss,
and the least-squares fit (scipy) of

    L(N, D) = E + A / N^alpha + B / D^beta

(Chinchilla's form, "approach 3"), with N the non-embedding parameters (those the FLOPs
count, 6·N per token) and D the tokens trained on. From the fit: the compute-optimal split
of a FLOP budget C ≈ 6·N·D (at the optimum alpha·A/N^alpha = beta·B/D^beta), and for a
chosen model size the tokens it should see, against those the corpus holds.

Runs live in ``sweeps/<name>/runs/<NxL-D>/`` (plans, checkpoints, ``final/`` as any run);
a rerun reuses the finished ones and resumes the others. ``sweeps/<name>/sweep.json``
holds the grid, the fit and each point's residual; the report charts it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time

from webmill.errors import UserError
from webmill.names import check_name
from webmill.shards import jsonfile, layout
from webmill.shards.root import CorpusRoot
from webmill.train.config import TrainConfig
from webmill.train.runfiles import RunFiles

PARAMS = ("E", "A", "alpha", "B", "beta")
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG]?)$")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"64x2,96x3"`` → [(dim, layers), ...]; dim a multiple of 32 (heads of 32 dimensions)."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        m = _SIZE.match(item)
        if not m or int(m[1]) % 32 or int(m[1]) == 0 or int(m[2]) == 0:
            raise UserError(f"--sizes {item!r}: give DIMxLAYERS, DIM a multiple of 32 (for example 64x2,96x3,128x4)")
        out.append((int(m[1]), int(m[2])))
    return sorted(set(out))


def parse_counts(text: str) -> list[int]:
    """``"250k,1M"`` → [250000, 1000000]."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        m = _COUNT.match(item)
        if not m:
            raise UserError(f"--tokens {item!r}: give token counts such as 250k,500k,1M")
        out.append(int(float(m[1]) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m[2].lower()]))
    return sorted(set(out))


def check_grid(sizes: list, tokens: list) -> None:
    points = len(sizes) * len(tokens)
    if len(sizes) < 2 or len(tokens) < 2 or points < 6:
        raise UserError(
            f"a sweep grid of {points} run(s) ({len(sizes)} size(s) x {len(tokens)} token count(s)) is too small to fit "
            "L(N, D) = E + A/N^alpha + B/D^beta (5 parameters): give at least 2 sizes and 2 token counts, 6 runs or more"
        )


def model_for(dim: int, layers: int, vocab: int, bos: int, eos: int, max_seq_len: int):
    from webmill.train.model import ModelConfig

    ffn = max(32, round(dim * 8 / 3 / 32) * 32)  # SwiGLU's usual 8/3, rounded
    return ModelConfig(vocab, dim, layers, dim // 32, dim // 32, ffn, max_seq_len, bos_id=bos, eos_id=eos)


def non_embedding_params(mcfg) -> int:
    import torch

    from webmill.train.model import LlamaLM

    with torch.device("meta"):
        return LlamaLM(mcfg).num_params(embeddings=False)


def make_grid(root: CorpusRoot, cfg: TrainConfig, *, shards: str | None, name: str, sizes, tokens) -> list[dict]:
    """One training plan per (size, tokens), under ``sweeps/<name>/runs/``."""
    from webmill.train.plan import make_plan

    check_grid(sizes, tokens)
    plans = []
    for dim, layers in sizes:
        for d in tokens:
            over = dataclasses.replace(
                cfg,
                max_tokens=d,
                max_steps=1 << 30,
                warmup=sweep_warmup(cfg, d),
                checkpoint_every=1 << 30,
                eval_every=1 << 30,
                stop_after=0,
            )
            plan = make_plan(root, over, shards=shards, name="sweep-point")
            m = plan["model"]
            mcfg = model_for(dim, layers, m["vocab_size"], m["bos_id"], m["eos_id"], max(m["max_seq_len"], cfg.seq_len))
            label = f"{dim}x{layers}-{d}"
            rel = layout.sweep_run(name, label)
            plan.update({"name": f"{name}-{label}", "run": rel, "run_dir": root.display(rel), "model": mcfg.to_dict(), "_quiet": True})
            plan["sweep"] = {"dim": dim, "layers": layers, "tokens": d, "params": non_embedding_params(mcfg), "label": label}
            plans.append(plan)
    return plans


def sweep_warmup(cfg: TrainConfig, tokens: int) -> int:
    """Each grid run's schedule is its own (warmup, then cosine decay ending at its D, as in Chinchilla's
    approach 3); a fixed ``[train] warmup`` of 20 steps would be two thirds of a 250k-token run and
    a sixth of a 1M one, biasing the short runs. A tenth of the run at most."""
    from webmill.train.trainer import StepSizes

    steps = StepSizes.of(dataclasses.asdict(cfg) | {"max_tokens": tokens, "max_steps": 1 << 30}, 1).max_steps
    return min(cfg.warmup, max(1, steps // 10))


def settings_changed(saved: dict, plan: dict) -> dict:
    """What differs between a finished grid run's saved plan and the plan the sweep would train it with now
    (the settings a resume may change aside: they do not change what a run learns)."""
    from webmill.train.plan import RESUMABLE_KEYS

    changed = {k: (saved["train"].get(k), v) for k, v in plan["train"].items() if k not in RESUMABLE_KEYS and saved["train"].get(k) != v}
    if saved.get("model") != plan.get("model"):
        changed["model"] = ("saved", "now")
    if _data_identity(saved.get("data") or {}) != _data_identity(plan.get("data") or {}):
        changed["data"] = ("saved", "now")
    return changed


def _data_identity(data: dict) -> tuple:
    """The shard set a run read, by content (its paths move with the root)."""
    return (data.get("dataset"), data.get("sha256"), data.get("id_filter"), (data.get("encoding") or {}).get("tokenizer_sha256"))


_WHOLE = {"model": "the model", "data": "the shard set or its tokenizer"}


def check_reusable(root: CorpusRoot, name: str, finished: list[dict]) -> None:
    """A finished run is reused only if it was trained as the sweep would train it now (a changed ``[train]``
    table, tokenizer or shard set would otherwise mix two grids in one fit): one line before anything starts."""
    for plan in finished:
        changed = settings_changed(RunFiles.of(plan).read_plan(), plan)
        if changed:
            detail = ", ".join(_WHOLE.get(k) or f"{k} {a!r} → {b!r}" for k, (a, b) in changed.items())
            raise UserError(
                f"sweep {name}: run {plan['sweep']['label']} was trained with other settings ({detail}); give a new --name, "
                f"or remove {root.display(layout.sweep(name), 'runs')} to train the grid again"
            )


def train_point(plan: dict) -> dict:
    """One grid run (a Ray task): its held-out loss, reused from ``final/`` when it finished before.
    Each point holds its own run lock too, for a task Ray retried while the first attempt still runs."""
    import posixpath

    from webmill.locks import run_lock

    folder, label = posixpath.split(plan["run"])
    root = RunFiles.of(plan).root
    with run_lock(root, folder, label):
        return _train_point({**plan, "_fences": dict(root.fences)})


def _train_point(plan: dict) -> dict:
    import torch

    from webmill.train.plan import save_plan
    from webmill.train.trainer import train_loop

    run = RunFiles.of(plan)
    t = time.time()
    if run.exists("final", "training.json"):
        summary = run.read_json("final", "training.json")
        reused = True
    else:
        if plan["train"]["device"] != "cuda":
            torch.set_num_threads(1)  # one run per CPU
        save_plan(plan)
        summary = train_loop(plan)
        reused = False
    if summary.get("val_loss") is None:
        raise UserError(f"{run.display()}: no validation loss (the shard set's val split is empty)")
    return {
        **plan["sweep"],
        "val_loss": summary["val_loss"],
        "train_loss": summary["train_loss"],
        "tokens_seen": summary["tokens_seen"],
        "seconds": round(time.time() - t, 1),
        "reused": reused,
    }


def fit(points: list[dict]) -> dict:
    """Least squares of L(N, D) over the grid, from several starting points; R² and residuals."""
    import numpy as np
    from scipy.optimize import least_squares

    n = np.array([p["params"] for p in points], dtype=float)
    d = np.array([p["tokens_seen"] for p in points], dtype=float)
    loss = np.array([p["val_loss"] for p in points], dtype=float)

    def predict(x, n, d):
        e, log_a, alpha, log_b, beta = x
        return e + np.exp(log_a - alpha * np.log(n)) + np.exp(log_b - beta * np.log(d))

    best = None
    lo, hi = [0.0, -10.0, 0.0, -10.0, 0.0], [float(loss.min()), 60.0, 2.0, 60.0, 2.0]
    for alpha0 in (0.2, 0.5, 1.0):
        for beta0 in (0.2, 0.5, 1.0):
            scale = math.log(max(float(loss.mean()), 1e-3))  # each term starts near the mean loss
            x0 = [0.5 * loss.min(), scale + alpha0 * math.log(n.mean()), alpha0, scale + beta0 * math.log(d.mean()), beta0]
            x0 = np.clip(x0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
            r = least_squares(lambda x: predict(x, n, d) - loss, x0, bounds=(lo, hi))
            if best is None or r.cost < best.cost:
                best = r
    residuals = loss - predict(best.x, n, d)
    total = float(((loss - loss.mean()) ** 2).sum())
    e, log_a, alpha, log_b, beta = (float(v) for v in best.x)
    return {
        "E": e,
        "A": math.exp(log_a),
        "alpha": alpha,
        "B": math.exp(log_b),
        "beta": beta,
        "r2": 1 - float((residuals**2).sum()) / total if total > 0 else None,
        "residuals": {p["label"]: float(res) for p, res in zip(points, residuals)},
    }


def predict_loss(law: dict, n: float, d: float) -> float:
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


def compute_optimal(law: dict, flops: float) -> dict:
    """(N, D) minimizing L under 6·N·D = flops: N = G·(flops/6)^(beta/(alpha+beta)), in logs; None
    where the fit does not bound the split (alpha or beta at zero)."""
    a, b = law["alpha"], law["beta"]
    if a < 1e-6 or b < 1e-6:
        return {"flops": flops, "params": None, "tokens": None, "loss": None}
    log_g = (math.log(a * law["A"]) - math.log(b * law["B"])) / (a + b)
    log_n = log_g + b / (a + b) * math.log(flops / 6)
    n, d = _exp(log_n), _exp(math.log(flops / 6) - log_n)
    return {"flops": flops, "params": n, "tokens": d, "loss": predict_loss(law, n, d) if n and d else None}


def tokens_for(law: dict, n: float) -> float | None:
    """The tokens a model of ``n`` parameters should see to be compute-optimal (where
    alpha·A/N^alpha = beta·B/D^beta); None where the fit does not bound it."""
    a, b = law["alpha"], law["beta"]
    if a < 1e-6 or b < 1e-6:
        return None
    return _exp((math.log(b * law["B"]) - math.log(a * law["A"]) + a * math.log(n)) / b)


def _exp(x: float) -> float | None:
    return math.exp(x) if x < 700 else None


def weak_fit(law: dict, min_loss: float) -> list[str]:
    """Why the fit should not be trusted, if it should not."""
    out = []
    if law["r2"] is None or law["r2"] < 0.9:
        out.append(f"R² {law['r2'] if law['r2'] is None else round(law['r2'], 3)} below 0.9")
    for k in ("alpha", "beta"):
        if law[k] < 0.01 or law[k] > 1.99:
            out.append(f"{k} {law[k]:.3f} at the edge of its range")
    # E is bounded to [0, the lowest loss]: at either end the grid does not locate the floor, and the
    # exponents absorb it (the loss is read as falling forever, so the tokens a size needs come out far too many)
    if law["E"] < 0.01 or law["E"] > min_loss - 0.01:
        out.append(f"E {law['E']:.3f} at the edge of its range [0, {min_loss:.3f}]: the grid's losses do not show the floor")
    return out


def grid_notes(points: list[dict], corpus_tokens: int | None, predictions: list[tuple[str, float | None, float | None]]) -> list[str]:
    """What a reader of the fit should know about the grid behind it: runs that saw the train split
    more than once, and predictions far outside the grid (each ``(what, N, D)``)."""
    notes = []
    if corpus_tokens:
        repeated = [p for p in points if p["tokens_seen"] > corpus_tokens]
        if repeated:
            most = max(p["tokens_seen"] for p in repeated) / corpus_tokens
            notes.append(
                f"{len(repeated)} of {len(points)} runs saw the train split more than once (up to {most:.2f} epochs): repeated "
                f"tokens are worth less than new ones, so the fit understates what new tokens buy; keep --tokens within the "
                f"split's {corpus_tokens:,} tokens"
            )
    n_max, d_max = max(p["params"] for p in points), max(p["tokens_seen"] for p in points)
    for what, n, d in predictions:
        far = [f"{k} {x / top:,.0f}x" for k, x, top in (("N", n, n_max), ("D", d, d_max)) if x and x > 10 * top]
        if far:
            notes.append(f"{what} lies beyond the grid's largest run ({', '.join(far)}): an extrapolation, as uncertain as that")
    return notes


def run_sweep(root: CorpusRoot, cfg: TrainConfig, *, shards, name, sizes, tokens, budgets, target_params, ray_fn, on_result=None) -> dict:
    """The sweep under its run lock (``sweeps/<name>/``, ``webmill.locks``): two sweeps of one name
    at once trained the same grid runs twice and wrote one sweep.json over the other."""
    from webmill.locks import run_lock

    with run_lock(root, layout.SWEEPS, check_name(name, "sweep name")):
        return _run_sweep(
            root,
            cfg,
            shards=shards,
            name=name,
            sizes=sizes,
            tokens=tokens,
            budgets=budgets,
            target_params=target_params,
            ray_fn=ray_fn,
            on_result=on_result,
        )


def _run_sweep(root: CorpusRoot, cfg: TrainConfig, *, shards, name, sizes, tokens, budgets, target_params, ray_fn, on_result=None) -> dict:
    from webmill.runtime import run_tasks
    from webmill.shards.training import newest_shard_set, read_manifest

    shards = shards or newest_shard_set(root)
    plans = make_grid(root, cfg, shards=shards, name=name, sizes=sizes, tokens=tokens)
    points = []

    def got(result):
        points.append(result)
        if on_result:
            on_result(result, len(points), len(plans))

    done = [RunFiles.of(p).exists("final", "training.json") for p in plans]
    check_reusable(root, name, [p for p, d in zip(plans, done) if d])
    todo = []
    for plan, finished in zip(plans, done):  # runs that finished before are read here; Ray starts only for the others
        if finished:
            got(train_point(plan))
        else:
            todo.append(plan)
    if todo:
        ray = ray_fn()
        gpus = int(ray.cluster_resources().get("GPU", 0)) if cfg.device != "cpu" else 0
        for plan in todo:
            plan["train"]["device"] = "cuda" if gpus else "cpu"
        for result in run_tasks(train_point, [(p,) for p in todo], gpus=1 if gpus else 0):
            got(result)
    points.sort(key=lambda p: (p["params"], p["tokens"]))
    law = fit(points)
    corpus_tokens = read_manifest(root, shards)["splits"]["train"].get("tokens") if root.exists(layout.shard_manifest(shards)) else None
    largest = max(6 * p["params"] * p["tokens_seen"] for p in points)
    budgets = budgets or [largest * 10, largest * 100, largest * 1000]
    if target_params is None:  # the `small` preset (GPT-2 small's shape) at this tokenizer
        from webmill.train.model import ModelConfig

        target_params = non_embedding_params(ModelConfig.preset("small", plans[0]["model"]["vocab_size"]))
    need = tokens_for(law, target_params)
    law["warnings"] = weak_fit(law, min(p["val_loss"] for p in points))
    optimal = [compute_optimal(law, c) for c in budgets]
    if corpus_tokens:
        for p in points:
            p["epochs"] = round(p["tokens_seen"] / corpus_tokens, 3)
    largest_budget = max(optimal, key=lambda c: c["flops"])
    notes = grid_notes(
        points,
        corpus_tokens,
        [
            (f"the compute-optimal split of {largest_budget['flops']:.3g} FLOPs", largest_budget["params"], largest_budget["tokens"]),
            ("a model of the target size, at its compute-optimal tokens,", target_params, need),
        ],
    )
    out = {
        "name": name,
        "shards": shards,
        "form": "L(N, D) = E + A / N^alpha + B / D^beta; N non-embedding parameters, D tokens trained on",
        "points": points,
        "fit": law,
        "compute_optimal": optimal,
        "notes": notes,
        "target": {
            "params": target_params,
            "tokens": need,
            "corpus_tokens": corpus_tokens,
            "more_tokens": max(0.0, need - corpus_tokens) if corpus_tokens and need else None,
            "loss": predict_loss(law, target_params, need) if need else None,
        },
        "train_config": {k: v for k, v in dataclasses.asdict(cfg).items() if k in ("seq_len", "batch_tokens", "micro_batch", "lr")},
        "created_at": time.time(),
    }
    out["path"] = root.display(layout.sweep(name), "sweep.json")
    RunFiles(root, layout.sweep(name)).write_json(out, "sweep.json")
    return out


def read_sweeps(root: CorpusRoot) -> dict[str, dict]:
    """Every sweep of the root (for the report), by name."""

    out = {}
    for name in root.listdir(layout.SWEEPS) if root.exists(layout.SWEEPS) else []:
        if root.exists(layout.sweep(name), "sweep.json"):
            try:
                out[name] = jsonfile.read(root, layout.sweep(name), "sweep.json", required={"points": list, "fit": dict})
            except jsonfile.DamagedFile:
                continue
    return out
