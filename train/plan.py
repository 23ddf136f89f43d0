"""A training run's plan: which shards, which tokenizer, which model, where the run lives.

The plan is a plain dict so the same training function receives it in-process
and on every Ray Train worker. It is written to ``runs/<name>/plan.json``; a
resume reads it back and refuses a different model.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
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
    """Train/val parts of a shard set name, or of any document dataset (split by id hash). Every
    path is relative to the root (a plan is a file in the root: it moves with the root, and what it
    names is read through the root's checks, never as written)."""
    if shards is None:
        shards = newest_shard_set(root)
    check_dataset_path(shards, "--shards")
    if root.exists(layout.shard_manifest(shards)):
        manifest = read_manifest(root, shards)
        train = [posixpath.join(layout.shard_set(shards), s["path"]) for s in manifest["splits"]["train"]["shards"]]
        val = [posixpath.join(layout.shard_set(shards), s["path"]) for s in manifest["splits"]["val"]["shards"]]
        sums = {s["path"]: s["sha256"] for sp in manifest["splits"].values() for s in sp["shards"]}
        return {
            "name": shards,
            "dataset": layout.shard_set(shards),
            "relative": True,
            "train": train,
            "val": val,
            "id_filter": None,
            "sha256": sums,
            "manifest_fingerprint": manifest["fingerprint"],
            "tokenizer": layout.tokenizer(shards),
            # the pre-tokenized parts (webmill.train.token_files), when the set was encoded
            "encoding": manifest.get("encoding"),
            "token_files": token_files.part_entries(manifest),
        }
    if not root.exists(shards):
        raise UserError(f"no shards at {root.display(shards)} (a shard set under shards/ or a dataset path)")
    reader = DatasetReader(root, shards)
    if not reader.parts:
        raise UserError(f"no shards at {root.display(shards)}: the dataset has no committed parts")
    paths = [posixpath.join(shards, p["path"]) for p in reader.parts]
    return {
        "name": shards.strip("/").replace("/", "-"),
        "dataset": shards,
        "relative": True,
        "train": paths,
        "val": paths,
        "id_filter": val_fraction,
        "sha256": {p["path"]: p["sha256"] for p in reader.parts},
        "manifest_fingerprint": None,
        "tokenizer": f"{shards.strip('/')}/_tokenizer",
        "encoding": None,
        "token_files": {},
    }


def inside_root(root: CorpusRoot, path: str, data: dict, what: str) -> str:
    """A path a plan names → the path in the root's filesystem, through ``CorpusRoot.path``'s
    checks. Plans written before paths were relative hold them absolute: those are taken only
    where they lie under this root. Anything else is refused (a crafted plan must not make a
    command read, on the operator's credentials, a file of another bucket or folder)."""
    if not data.get("relative"):
        base = root.base.rstrip("/") + "/"
        if not path.startswith(base):
            raise UserError(f"{what}: {path!r} lies outside the corpus root {root.display()}; the plan was not written by this root")
        path = path[len(base) :]
    return root.path(path)


def input_paths(root: CorpusRoot, data: dict, split: str) -> list[str]:
    """A split's parts as paths in the root's filesystem (``inside_root``)."""
    return [inside_root(root, p, data, f"the plan's {split} split") for p in data[split]]


def input_token_files(root: CorpusRoot, data: dict) -> dict:
    """The plan's token-file entries with every path resolved inside the root (``inside_root``)."""
    out = {}
    for part, entry in (data.get("token_files") or {}).items():
        where = f"the plan's token files of {part}"
        resolved = {k: inside_root(root, entry[k], data, where) for k in ("file", "index")}
        out[inside_root(root, part, data, where)] = {**entry, **resolved}
    return out


def load_tokenizer(root: CorpusRoot, ref: str):
    """A plan's tokenizer: a folder inside the root (a plan stores no path outside it)."""
    if os.path.isabs(ref):
        raise UserError(f"the plan's tokenizer {ref!r} lies outside the corpus root {root.display()}; a plan names folders in the root")
    return toklib.load_from_root(root, ref)


def check_token_files(root: CorpusRoot, plan: dict, tok_json: bytes | None = None, shown: str | None = None) -> None:
    """A plan whose shards were encoded by another tokenizer than its own is refused, naming both."""
    data, ref = plan["data"], plan["tokenizer"]
    if not data.get("encoding"):
        return
    if tok_json is None:
        tok_json, shown = root.read_bytes(ref, "tokenizer.json"), root.display(ref)
    token_files.check_encoded_with(root, data["encoding"], shown, tok_json)


def model_config(cfg: TrainConfig, tok) -> ModelConfig:
    """The [train] preset sized to the tokenizer, with its special-token ids."""
    ids = toklib.special_ids(tok)
    return ModelConfig.preset(cfg.preset, tok.get_vocab_size(), max_seq_len=cfg.max_position or None, bos_id=ids["bos"], eos_id=ids["eos"])


def make_plan(root: CorpusRoot, cfg: TrainConfig, *, shards: str | None, name: str | None, tokenizer_path: str | None = None) -> dict:
    """A new run's plan. ``tokenizer_path`` (a folder or tokenizer.json on this machine) is copied into
    the run's folder, so the plan names only paths inside the root."""
    data = shard_inputs(root, shards, cfg.val_fraction)
    name = check_name(name or f"{data['name']}-{time.strftime('%Y%m%d-%H%M%S')}", "run name")
    run = layout.run(name)
    local_tok = None
    if tokenizer_path:
        path = os.path.join(tokenizer_path, "tokenizer.json") if os.path.isdir(tokenizer_path) else tokenizer_path
        tok = toklib.load(path)
        with open(path, "rb") as f:
            local_tok = (f.read(), os.path.abspath(path))
        tok_ref = posixpath.join(run, "tokenizer")
    else:
        tok_ref = data["tokenizer"]
        if not root.exists(tok_ref, "tokenizer.json"):
            raise UserError(f"no tokenizer for {data['dataset']} (run `webmill tokenizer train` first)")
        tok = load_tokenizer(root, tok_ref)
    model = model_config(cfg, tok)
    if cfg.seq_len > model.max_seq_len:
        raise UserError(
            f"[train] seq_len = {cfg.seq_len} is longer than the model's rotary table "
            f"({model.max_seq_len} positions; raise [train] max_position)"
        )
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
    if local_tok:
        check_token_files(root, plan, *local_tok)
        root.write_bytes_atomic(local_tok[0], tok_ref, "tokenizer.json")
    else:
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
    plan = files.read_plan()
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
