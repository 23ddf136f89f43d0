"""Load a trained run (its ``final/`` folder or newest checkpoint) and sample from it with a KV cache."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer

from webmill.errors import UserError
from webmill.train import checkpoint as ckpt
from webmill.train.model import LlamaLM, ModelConfig
from webmill.train.plan import load_tokenizer
from webmill.train.runfiles import RunFiles


def load_run(run: RunFiles, device: torch.device):
    """(model, tokenizer) from the run's ``final/`` if it finished, else from its newest checkpoint."""
    if not run.exists("final", "training.json") and not run.exists("plan.json"):
        raise UserError(f"{run.display()}: no such run")
    if run.exists("final", "training.json"):
        training = run.read_json("final", "training.json", required={"webmill_model": dict})
        mcfg = ModelConfig.from_dict(training["webmill_model"], run.display("final", "training.json"))
        weights = ("final", "model.safetensors")
        tok = Tokenizer.from_str(run.read_bytes("final", "tokenizer.json").decode())
    else:
        name = ckpt.latest(run)
        if name is None:
            raise UserError(f"{run.display()}: neither final/ nor a checkpoint to generate from")
        plan = run.read_plan()
        mcfg, weights = ModelConfig.from_dict(plan["model"], run.display("plan.json")), (ckpt.CHECKPOINTS, name, "model.safetensors")
        tok = load_tokenizer(run.root, plan["tokenizer"])
    data = run.read_bytes(*weights)
    ckpt.check_shapes(mcfg, data, run.display(*weights))
    model = LlamaLM(mcfg)
    ckpt.load_model(model, data, run.display(*weights))
    model.to(device).eval()
    return model, tok


def stream_text(model, tok, prompt: str, *, max_new_tokens: int, temperature: float, top_k: int | None, seed: int):
    """Yield text pieces as tokens are sampled (decoded in full each time, so multi-byte characters come out whole)."""
    ids = [model.cfg.bos_id] + tok.encode(prompt, add_special_tokens=False).ids
    yield from _stream(model, tok, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


def stream_reply(model, tok, messages: list[dict], *, max_new_tokens: int, temperature: float, top_k: int | None, seed: int):
    """The assistant's next turn after ``messages`` (chat format, ``webmill.train.chat``), streamed
    as text pieces; it ends at the model's ``<|end|>``."""
    from webmill.train import chat

    ids, _ = chat.render(tok, chat.ChatIds.of(tok), messages, generation_prompt=True)
    yield from _stream(model, tok, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


def _stream(model, tok, ids: list[int], *, max_new_tokens: int, temperature: float, top_k: int | None, seed: int):
    new: list[int] = []
    shown = ""
    for token in model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed, eos_id=model.cfg.eos_id):
        new.append(token)
        text = tok.decode(new, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            continue
        yield text[len(shown) :]
        shown = text
