"""Load a trained run (its ``final/`` folder or newest checkpoint) and sample from it with a KV cache."""
from __future__ import annotations

import json
import os

import torch

from webmill.errors import UserError
from webmill.train import checkpoint as ckpt
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.tokenizer import load as load_tokenizer


def load_run(run_dir: str, device: torch.device):
    """(model, tokenizer) from ``run_dir/final`` if the run finished, else from its newest checkpoint."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: no such run folder")
    final = os.path.join(run_dir, "final")
    if os.path.exists(os.path.join(final, "training.json")):
        with open(os.path.join(final, "training.json")) as f:
            mcfg = ModelConfig(**json.load(f)["webmill_model"])
        weights, tok_path = os.path.join(final, "model.safetensors"), final
    else:
        folder = ckpt.latest(run_dir)
        plan_path = os.path.join(run_dir, "plan.json")
        if folder is None or not os.path.exists(plan_path):
            raise UserError(f"{run_dir}: neither final/ nor a checkpoint to generate from")
        with open(plan_path) as f:
            plan = json.load(f)
        mcfg, weights, tok_path = ModelConfig(**plan["model"]), os.path.join(folder, "model.safetensors"), plan["tokenizer"]
    model = LlamaLM(mcfg)
    ckpt.load_model(model, weights)
    model.to(device).eval()
    return model, load_tokenizer(tok_path)


def stream_text(model, tok, prompt: str, *, max_new_tokens: int, temperature: float, top_k: int | None, seed: int):
    """Yield text pieces as tokens are sampled (decoded in full each time, so multi-byte characters come out whole)."""
    ids = [model.cfg.bos_id] + tok.encode(prompt, add_special_tokens=False).ids
    new: list[int] = []
    shown = ""
    for token in model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed,
                                eos_id=model.cfg.eos_id):
        new.append(token)
        text = tok.decode(new, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            continue
        yield text[len(shown):]
        shown = text
