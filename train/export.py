"""``runs/<name>/final/``: a folder ``transformers.AutoModelForCausalLM.from_pretrained`` loads as LlamaForCausalLM,
with the tokenizer beside it and ``training.json`` tracing the weights back to the shards they learned from."""

from __future__ import annotations

import json
import os
import time

from webmill.train.checkpoint import weights_for_disk
from webmill.train.model import ModelConfig
from webmill.train.runfiles import RunFiles, tensors_bytes

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def export_final(plan: dict, run: RunFiles, model, summary: dict) -> str:
    """Write ``final/`` into the run's folder; ``training.json`` goes last, so on an object store
    a ``final/`` with it is complete."""
    mcfg = ModelConfig.from_dict(plan["model"], "the run's plan.json")
    files = {
        "model.safetensors": tensors_bytes(weights_for_disk(model)),
        "config.json": _json(mcfg.to_hf()),
        "generation_config.json": _json(
            {
                "bos_token_id": mcfg.bos_id,
                "eos_token_id": mcfg.eos_id,
                "do_sample": True,
                "temperature": 0.8,
                "top_k": 50,
                "max_length": mcfg.max_seq_len,
            }
        ),
    }
    tok = plan["tokenizer"]
    for name in TOKENIZER_FILES:
        if os.path.isabs(tok):
            if os.path.exists(os.path.join(tok, name)):
                with open(os.path.join(tok, name), "rb") as f:
                    files[name] = f.read()
        elif run.root.exists(tok, name):
            files[name] = run.root.read_bytes(tok, name)
    data = plan["data"]
    files["training.json"] = _json(
        {
            "run": plan["name"],
            "webmill_model": plan["model"],
            "train_config": plan["train"],
            "data": {
                "root": run.root.shown,
                "dataset": data["dataset"],
                "manifest_fingerprint": data["manifest_fingerprint"],
                "shards_sha256": data["sha256"],
                "split": "id-hash" if data["id_filter"] is not None else "shard",
            },
            "tokenizer": plan["tokenizer"],
            "tokens_seen": summary["tokens_seen"],
            "steps": summary["step"],
            "train_loss": summary["train_loss"],
            "val_loss": summary["val_loss"],
            "val_unigram_entropy": summary["val_unigram_entropy"],
            "parameters": summary["parameters"],
            "exported_at": time.time(),
        }
    )
    return run.write_folder(files, "final")


def _json(obj: dict) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode()
