"""Checkpoints: weights as safetensors, optimizer tensors loaded with ``weights_only``, the rest as JSON.

    runs/<name>/checkpoints/step-000100/{model.safetensors, optimizer.pt, rng.safetensors, state.json}
    runs/<name>/checkpoints/latest            # the newest complete checkpoint's folder name

A checkpoint is written into a temporary folder and renamed, then ``latest`` is
replaced atomically: a crash leaves the previous checkpoint in force.
"""
from __future__ import annotations

import json
import os
import shutil

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from webmill.errors import UserError, first_line

CHECKPOINTS = "checkpoints"


def weights_for_disk(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict safetensors can write: a tied lm_head is left out (transformers re-ties it)."""
    sd = model.state_dict()
    if getattr(model.cfg, "tie_embeddings", False):
        sd.pop("lm_head.weight", None)
    return {k: v.detach().contiguous().cpu() for k, v in sd.items()}


def save(run_dir: str, step: int, model, optimizer, state: dict) -> str:
    folder = os.path.join(run_dir, CHECKPOINTS)
    os.makedirs(folder, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = os.path.join(folder, f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(weights_for_disk(model), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, os.path.join(tmp, "rng.safetensors"))
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump({**state, "step": step}, f, indent=1, sort_keys=True)
    final = os.path.join(folder, name)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_atomic(os.path.join(folder, "latest"), name)
    return final


def latest(run_dir: str) -> str | None:
    path = os.path.join(run_dir, CHECKPOINTS, "latest")
    if not os.path.exists(path):
        return None
    name = open(path).read().strip()
    folder = os.path.join(run_dir, CHECKPOINTS, name)
    if not os.path.isdir(folder):
        raise UserError(f"{path}: names {name}, which does not exist")
    return folder


def read_state(folder: str) -> dict:
    path = os.path.join(folder, "state.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: corrupt checkpoint file ({first_line(e)})") from None


def load_weights(path: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: corrupt checkpoint file ({first_line(e)})") from None


def load_model(model, path: str) -> None:
    """Weights from a safetensors file into ``model``; a tied lm_head is absent from the file by design."""
    missing, unexpected = model.load_state_dict(load_weights(path), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.cfg.tie_embeddings)]
    if missing or unexpected:
        raise UserError(f"{path}: does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def restore(folder: str, model, optimizer, device) -> dict:
    """Weights, optimizer, RNG; returns the JSON state. Any unreadable file is named in the error."""
    state = read_state(folder)
    load_model(model, os.path.join(folder, "model.safetensors"))
    opt_path = os.path.join(folder, "optimizer.pt")
    try:
        opt_state = torch.load(opt_path, map_location=device, weights_only=True)
        optimizer.load_state_dict(opt_state)
    except Exception as e:  # torch raises many types for a damaged pickle
        raise UserError(f"{opt_path}: corrupt checkpoint file ({first_line(e)})") from None
    rng = load_weights(os.path.join(folder, "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return state


def write_atomic(path: str, text: str) -> None:
    """Write a run's file beside its target and rename it into place."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json_atomic(path: str, obj: dict) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str))
