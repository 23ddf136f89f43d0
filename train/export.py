"""``runs/<name>/final/``: a folder ``transformers.AutoModelForCausalLM.from_pretrained`` loads as LlamaForCausalLM,
with the tokenizer beside it and ``training.json`` tracing the weights back to the shards they learned from."""
from __future__ import annotations

import json
import os
import shutil
import time

from safetensors.torch import save_file

from webmill.train.checkpoint import weights_for_disk
from webmill.train.model import ModelConfig

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def export_final(plan: dict, model, summary: dict) -> str:
    final = os.path.join(plan["run_dir"], "final")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    mcfg = ModelConfig(**plan["model"])
    save_file(weights_for_disk(model), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    _dump(os.path.join(tmp, "config.json"), mcfg.to_hf())
    _dump(os.path.join(tmp, "generation_config.json"),
          {"bos_token_id": mcfg.bos_id, "eos_token_id": mcfg.eos_id, "do_sample": True, "temperature": 0.8,
           "top_k": 50, "max_length": mcfg.max_seq_len})
    for name in TOKENIZER_FILES:
        src = os.path.join(plan["tokenizer"], name)
        if os.path.exists(src):
            shutil.copy(src, tmp)
    data = plan["data"]
    _dump(os.path.join(tmp, "training.json"), {
        "run": plan["name"], "webmill_model": plan["model"], "train_config": plan["train"],
        "data": {"root": plan["root"], "dataset": data["dataset"], "manifest_fingerprint": data["manifest_fingerprint"],
                 "shards_sha256": data["sha256"], "split": "id-hash" if data["id_filter"] is not None else "shard"},
        "tokenizer": plan["tokenizer"], "tokens_seen": summary["tokens_seen"], "steps": summary["step"],
        "train_loss": summary["train_loss"], "val_loss": summary["val_loss"],
        "val_unigram_entropy": summary["val_unigram_entropy"], "parameters": summary["parameters"],
        "exported_at": time.time(),
    })
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _dump(path: str, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
