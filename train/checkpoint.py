"""Checkpoints: weights as safetensors, optimizer tensors loaded with ``weights_only``, the rest as JSON.

    runs/<name>/checkpoints/step-000100/{model.safetensors, optimizer.pt, rng.safetensors, state.json}
    runs/<name>/checkpoints/latest            # the newest complete checkpoint's folder name

A checkpoint is written as a folder (renamed into place on a disk, put file by file on
an object store), then ``latest`` is replaced atomically: a crash leaves the previous
checkpoint in force, on any filesystem the root is on.
"""

from __future__ import annotations

import io
import json

import torch
from safetensors import SafetensorError
from safetensors.torch import load

from webmill.errors import UserError, first_line
from webmill.shards import jsonfile
from webmill.train.runfiles import RunFiles, tensors_bytes, torch_bytes

CHECKPOINTS = "checkpoints"


def weights_for_disk(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict safetensors can write: a tied lm_head is left out (transformers re-ties it)."""
    sd = model.state_dict()
    if getattr(model.cfg, "tie_embeddings", False):
        sd.pop("lm_head.weight", None)
    return {k: v.detach().contiguous().cpu() for k, v in sd.items()}


def save(run: RunFiles, step: int, model, optimizer, state: dict) -> str:
    """Write checkpoint ``step`` into the run's folder, then point ``latest`` at it."""
    name = f"step-{step:06d}"
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    files = {
        "model.safetensors": tensors_bytes(weights_for_disk(model)),
        "optimizer.pt": torch_bytes(optimizer.state_dict()),
        "rng.safetensors": tensors_bytes(rng),
        "state.json": json.dumps({**state, "step": step}, indent=1, sort_keys=True).encode(),
    }
    shown = run.write_folder(files, CHECKPOINTS, name)
    run.write_bytes(name.encode(), CHECKPOINTS, "latest")
    return shown


def latest(run: RunFiles) -> str | None:
    """The folder name of the newest complete checkpoint, or None."""
    if not run.exists(CHECKPOINTS, "latest"):
        return None
    name = run.read_bytes(CHECKPOINTS, "latest").decode().strip()
    if not run.exists(CHECKPOINTS, name, "state.json"):
        raise UserError(f"{run.display(CHECKPOINTS, 'latest')}: names {name}, which does not exist")
    return name


def read_state(run: RunFiles, name: str) -> dict:
    try:
        data = run.read_bytes(CHECKPOINTS, name, "state.json")
    except OSError as e:
        raise UserError(f"{run.display(CHECKPOINTS, name, 'state.json')}: corrupt checkpoint file ({first_line(e)})") from None
    return jsonfile.parse(data, run.display(CHECKPOINTS, name, "state.json"), required={"model": dict})


def load_weights(data: bytes, shown: str) -> dict[str, torch.Tensor]:
    try:
        return load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{shown}: corrupt checkpoint file ({first_line(e)})") from None


def header_shapes(data: bytes, shown: str) -> dict[str, list[int]]:
    """Tensor name → shape from a safetensors file's header (8 bytes of length, then JSON), read
    without loading a tensor."""
    import struct

    if len(data) < 8:
        raise UserError(f"{shown}: corrupt checkpoint file (shorter than its header)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, 100 << 20):
        raise UserError(f"{shown}: corrupt checkpoint file (a header of {n:,} bytes)")
    header = jsonfile.parse(data[8 : 8 + n], shown)
    try:
        return {k: [int(x) for x in v["shape"]] for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError, ValueError):
        raise UserError(f"{shown}: corrupt checkpoint file (a tensor entry without a shape)") from None


def check_shapes(cfg, data: bytes, shown: str) -> None:
    """The weights' shapes, from their header, against the model ``cfg`` describes (built on the
    meta device: nothing allocated), before the model is allocated for real."""
    from webmill.train.model import LlamaLM

    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in LlamaLM(cfg).state_dict().items()}
    if cfg.tie_embeddings:
        expected.pop("lm_head.weight", None)
    found = header_shapes(data, shown)
    if found != expected:
        diff = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        k = diff[0]
        raise UserError(f"{shown}: does not match the model config ({k}: {found.get(k)} in the file, {expected.get(k)} in the config)")


def load_model(model, data: bytes, shown: str) -> None:
    """Weights from safetensors bytes into ``model``; a tied lm_head is absent from the file by design."""
    missing, unexpected = model.load_state_dict(load_weights(data, shown), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.cfg.tie_embeddings)]
    if missing or unexpected:
        raise UserError(f"{shown}: does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def restore(run: RunFiles, name: str, model, optimizer, device) -> dict:
    """Weights, optimizer, RNG; returns the JSON state. Any unreadable file is named in the error."""
    state = read_state(run, name)
    weights, shown = run.read_bytes(CHECKPOINTS, name, "model.safetensors"), run.display(CHECKPOINTS, name, "model.safetensors")
    check_shapes(model.cfg, weights, shown)
    load_model(model, weights, shown)
    shown = run.display(CHECKPOINTS, name, "optimizer.pt")
    try:
        opt_state = torch.load(io.BytesIO(run.read_bytes(CHECKPOINTS, name, "optimizer.pt")), map_location=device, weights_only=True)
        optimizer.load_state_dict(opt_state)
    except Exception as e:  # torch raises many types for a damaged pickle
        raise UserError(f"{shown}: corrupt checkpoint file ({first_line(e)})") from None
    rng = load_weights(run.read_bytes(CHECKPOINTS, name, "rng.safetensors"), run.display(CHECKPOINTS, name, "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return state
