"""A training run's plan: which shards, which tokenizer, which model, where the run lives.

The plan is a plain dict so the same training function receives it in-process
and on every Ray Train worker. It is written to ``runs/<name>/plan.json``; a
resume reads it back and refuses a different model.
"""

from __future__ import annotations

import dataclasses
import os
import time

from webmill.errors import UserError
from webmill.names import check_dataset_path, check_name
from webmill.shards import layout
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot
from webmill.shards.training import newest_shard_set, read_manifest
from webmill.train import token_files
from webmill.train import tokenizer as toklib
from webmill.train.config import TrainConfig
from webmill.train.model import ModelConfig
from webmill.train.runfiles import RunFiles

RUNS = layout.RUNS


def shard_inputs(root: CorpusRoot, shards: str | None, val_fraction: float) -> dict:
    """Train/val part paths for a shard set name, or for any document dataset (split by id hash)."""
    if shards is None:
        shards = newest_shard_set(root)
    check_dataset_path(shards, "--shards")
    if root.exists(layout.shard_manifest(shards)):
        manifest = read_manifest(root, shards)
        train = [root.path(layout.shard_set(shards), s["path"]) for s in manifest["splits"]["train"]["shards"]]
        val = [root.path(layout.shard_set(shards), s["path"]) for s in manifest["splits"]["val"]["shards"]]
        sums = {s["path"]: s["sha256"] for sp in manifest["splits"].values() for s in sp["shards"]}
        return {
            "name": shards,
            "dataset": layout.shard_set(shards),
            "train": train,
            "val": val,
            "id_filter": None,
            "sha256": sums,
            "manifest_fingerprint": manifest["fingerprint"],
            "tokenizer": layout.tokenizer(shards),
            # the pre-tokenized parts (webmill.train.token_files), when the set was encoded
            "encoding": manifest.get("encoding"),
            "token_files": token_files.part_entries(root, manifest),
        }
    if not root.exists(shards):
        raise UserError(f"no shards at {root.display(shards)} (a shard set under shards/ or a dataset path)")
    reader = DatasetReader(root, shards)
    if not reader.parts:
        raise UserError(f"no shards at {root.display(shards)}: the dataset has no committed parts")
    paths = reader.paths()
    return {
        "name": shards.strip("/").replace("/", "-"),
        "dataset": shards,
        "train": paths,
        "val": paths,
        "id_filter": val_fraction,
        "sha256": {p["path"]: p["sha256"] for p in reader.parts},
        "manifest_fingerprint": None,
        "tokenizer": f"{shards.strip('/')}/_tokenizer",
        "encoding": None,
        "token_files": {},
    }


def load_tokenizer(root: CorpusRoot, ref: str):
    """A plan's tokenizer: a folder inside the root (relative) or on this machine (absolute)."""
    if os.path.isabs(ref):
        return toklib.load(ref)
    return toklib.load_from_root(root, ref)


def check_token_files(root: CorpusRoot, plan: dict) -> None:
    """A plan whose shards were encoded by another tokenizer than its own is refused, naming both."""
    data, ref = plan["data"], plan["tokenizer"]
    if not data.get("encoding"):
        return
    if os.path.isabs(ref):
        path = os.path.join(ref, "tokenizer.json") if os.path.isdir(ref) else ref
        with open(path, "rb") as f:
            tok_json, shown = f.read(), path
    else:
        tok_json, shown = root.read_bytes(ref, "tokenizer.json"), root.display(ref)
    token_files.check_encoded_with(root, data["encoding"], shown, tok_json)


def model_config(cfg: TrainConfig, tok) -> ModelConfig:
    """The [train] preset sized to the tokenizer, with its special-token ids."""
    ids = toklib.special_ids(tok)
    return ModelConfig.preset(cfg.preset, tok.get_vocab_size(), max_seq_len=cfg.max_position or None, bos_id=ids["bos"], eos_id=ids["eos"])


def make_plan(root: CorpusRoot, cfg: TrainConfig, *, shards: str | None, name: str | None, tokenizer_path: str | None = None) -> dict:
    data = shard_inputs(root, shards, cfg.val_fraction)
    tok_ref = os.path.abspath(tokenizer_path) if tokenizer_path else data["tokenizer"]
    if not (os.path.exists(os.path.join(tok_ref, "tokenizer.json")) if os.path.isabs(tok_ref) else root.exists(tok_ref, "tokenizer.json")):
        raise UserError(f"no tokenizer for {data['dataset']} (run `webmill tokenizer train` first)")
    model = model_config(cfg, load_tokenizer(root, tok_ref))
    if cfg.seq_len > model.max_seq_len:
        raise UserError(
            f"[train] seq_len = {cfg.seq_len} is longer than the model's rotary table "
            f"({model.max_seq_len} positions; raise [train] max_position)"
        )
    name = check_name(name or f"{data['name']}-{time.strftime('%Y%m%d-%H%M%S')}", "run name")
    run = layout.run(name)
    plan = {
        "name": name,
        "run": run,
        "run_dir": root.display(run),
        "root": root.uri,
        "data": data,
        "tokenizer": tok_ref,
        "model": model.to_dict(),
        "train": dataclasses.asdict(cfg),
        "created_at": time.time(),
    }
    check_token_files(root, plan)
    return plan


def save_plan(plan: dict) -> None:
    RunFiles.of(plan).write_plan(plan)


def run_of(root: CorpusRoot, run: str) -> str:
    """A run named on the command line (a name under runs/, or a folder inside a local root) → runs/<name>."""
    if root.is_local and os.path.isdir(run):
        rel = os.path.relpath(os.path.abspath(run), root.base)
        if rel.startswith(".."):
            raise UserError(f"{run}: not a run inside the corpus root {root.display()}")
        return rel
    return layout.run(check_name(layout.run_name(run), "run name"))


def resume_plan(root: CorpusRoot, run: str, cfg: TrainConfig | None) -> dict:
    """The saved plan of ``run`` (a name under runs/ or a path); a changed model config is refused."""
    files = RunFiles(root, run_of(root, run))
    if not files.exists("plan.json"):
        raise UserError(f"cannot resume {run}: {files.display('plan.json')} not found")
    plan = files.read_json("plan.json")
    plan.update({"run": files.rel, "run_dir": files.display(), "root": root.uri})
    if cfg is not None:
        new_model = model_config(cfg, load_tokenizer(root, plan["tokenizer"])).to_dict()
        old = plan["train"]
        changed = {k: (old.get(k), v) for k, v in dataclasses.asdict(cfg).items() if k in MODEL_AND_DATA_KEYS and old.get(k) != v}
        if new_model != plan["model"]:
            changed["model"] = "preset or size differs"
        if changed:
            detail = ", ".join(f"{k}: {v[0]!r} → {v[1]!r}" if isinstance(v, tuple) else f"{k}: {v}" for k, v in changed.items())
            raise UserError(f"cannot resume {plan['name']} with a different model or data layout ({detail})")
        plan["train"].update({k: v for k, v in dataclasses.asdict(cfg).items() if k in RESUMABLE_KEYS})
    check_token_files(root, plan)
    return plan


# settings that define the run's model and token stream: a resume must keep them
MODEL_AND_DATA_KEYS = (
    "preset",
    "seq_len",
    "micro_batch",
    "batch_tokens",
    "seed",
    "max_position",
    "val_fraction",
    "loader_workers",
    "workers",
)
# settings a resume may change (to extend a run, or look more often)
RESUMABLE_KEYS = ("max_steps", "max_tokens", "eval_every", "checkpoint_every", "stop_after", "device", "compile")
