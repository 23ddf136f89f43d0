"""A Llama-style decoder in plain PyTorch whose parameters map one-to-one onto
``transformers.LlamaForCausalLM`` (same module names, same rotary convention).

RMSNorm, rotary embeddings (rotate-half), SwiGLU, no biases, optional tied
embeddings and grouped-query attention, attention through
``scaled_dot_product_attention``. ``forward`` takes an optional KV cache for
generation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from webmill.errors import UserError

# name → (dim, layers, heads, kv heads, ffn dim, rotary table length, tied embeddings)
PRESETS = {
    "tiny": dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=4, ffn_dim=384, max_seq_len=1024, tie_embeddings=False),
    "small": dict(dim=768, n_layers=12, n_heads=12, n_kv_heads=12, ffn_dim=2048, max_seq_len=2048, tie_embeddings=True),
    "medium": dict(dim=1024, n_layers=24, n_heads=16, n_kv_heads=16, ffn_dim=2816, max_seq_len=2048, tie_embeddings=True),
}


# bounds on a model config read from a file: far past what webmill trains, far short of an
# allocation that takes the machine down
LIMITS = {
    "vocab_size": 1 << 21,
    "dim": 1 << 15,
    "n_layers": 1024,
    "n_heads": 1024,
    "n_kv_heads": 1024,
    "ffn_dim": 1 << 17,
    "max_seq_len": 1 << 21,
    "bos_id": 1 << 21,
    "eos_id": 1 << 21,
}
MAX_PARAMS = 1e11


@dataclass
class ModelConfig:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    max_seq_len: int
    tie_embeddings: bool = False
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    bos_id: int = 0
    eos_id: int = 1

    @classmethod
    def from_dict(cls, d, shown: str) -> "ModelConfig":
        """A config read from a file of the root (plan.json, training.json, a checkpoint's state),
        checked before anything is allocated: known keys, integer sizes within ``LIMITS``, a model of
        at most ``MAX_PARAMS`` parameters. An edited file is one line naming it, not an allocation of
        whatever size it asks for."""
        from webmill.shards.jsonfile import DamagedFile

        def bad(why: str):
            raise DamagedFile(f"{shown}: damaged file (model config: {why})")

        if not isinstance(d, dict):
            bad("not a table")
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - names)
        if unknown:
            bad(f"unknown key {unknown[0]!r}")
        for key, limit in LIMITS.items():
            v = d.get(key)
            if key not in d and key in ("bos_id", "eos_id"):
                continue
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
                bad(f"{key} = {str(v)[:20]} is not an integer in [0, {limit:,}]")
        for key in ("rope_theta", "norm_eps"):
            if key in d and (not isinstance(d[key], (int, float)) or isinstance(d[key], bool) or not 0 < d[key] < 1e12):
                bad(f"{key} = {str(d[key])[:20]} is not a positive number")
        if "tie_embeddings" in d and not isinstance(d["tie_embeddings"], bool):
            bad("tie_embeddings is not true or false")
        if min(d["dim"], d["n_layers"], d["n_heads"], d["n_kv_heads"], d["ffn_dim"], d["max_seq_len"], d["vocab_size"]) < 1:
            bad("a size of 0")
        if d["dim"] % d["n_heads"] or d["n_heads"] % d["n_kv_heads"]:
            bad("dim is not a multiple of n_heads, or n_heads of n_kv_heads")
        cfg = cls(**d)
        if cfg.bos_id >= cfg.vocab_size or cfg.eos_id >= cfg.vocab_size:
            bad("bos_id or eos_id past the vocabulary")
        if cfg.param_estimate() > MAX_PARAMS:
            bad(f"{cfg.param_estimate():.3g} parameters, more than {MAX_PARAMS:.0e}")
        return cfg

    def param_estimate(self) -> int:
        """Parameters, from the config alone (nothing allocated)."""
        kv = self.dim // self.n_heads * self.n_kv_heads
        layer = self.dim * (2 * self.dim + 2 * kv) + 3 * self.dim * self.ffn_dim + 2 * self.dim
        return self.vocab_size * self.dim * (1 if self.tie_embeddings else 2) + self.n_layers * layer + self.dim

    @classmethod
    def preset(cls, name: str, vocab_size: int, **over) -> "ModelConfig":
        if name not in PRESETS:
            raise UserError(f"unknown model preset {name!r} (one of {', '.join(PRESETS)})")
        return cls(vocab_size=vocab_size, **{**PRESETS[name], **{k: v for k, v in over.items() if v is not None}})

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    def to_hf(self) -> dict:
        """``config.json`` for ``transformers.LlamaForCausalLM``."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.dim,
            "intermediate_size": self.ffn_dim,
            "num_hidden_layers": self.n_layers,
            "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_seq_len,
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "tie_word_embeddings": self.tie_embeddings,
            "attention_bias": False,
            "mlp_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_id,
            "eos_token_id": self.eos_id,
            "torch_dtype": "float32",
            "use_cache": True,
            "initializer_range": 0.02,
        }


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotary_table(cfg: ModelConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
    t = torch.arange(cfg.max_seq_len, dtype=torch.int64, device=device).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # under bf16 autocast q and k stay bf16 (the flash path)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, cache: dict | None = None):
        b, t, _ = x.shape
        hd = self.cfg.head_dim
        q = self.q_proj(x).view(b, t, self.cfg.n_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.cfg.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.cfg.n_kv_heads, hd).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), dim=2)
                v = torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        # one new token attends to the whole cache; a prompt (or training) is causal
        causal = t > 1 and k.shape[2] == t
        if t > 1 and not causal:
            raise ValueError("multi-token decode with a non-empty cache is not supported")
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=self.cfg.n_kv_heads != self.cfg.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)


class LlamaLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Body(cfg)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        cos, sin = rotary_table(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        out_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, 0.0, out_std, generator=g)
            else:
                nn.init.normal_(p, 0.0, 0.02, generator=g)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, cache: list | None = None, start: int = 0):
        t = idx.shape[1]
        if start + t > self.cfg.max_seq_len:
            raise UserError(f"sequence of {start + t} tokens is longer than the model's rotary table ({self.cfg.max_seq_len})")
        cos = self.rope_cos[start : start + t].to(idx.device)
        sin = self.rope_sin[start : start + t].to(idx.device)
        x = self.model.embed_tokens(idx)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, None if cache is None else cache[i])
        x = self.model.norm(x)
        logits = self.lm_head(x)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    # accounting ------------------------------------------------------------
    def num_params(self, *, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())  # a tied weight is counted once
        if not embeddings:
            n -= self.model.embed_tokens.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Forward + backward FLOPs per token: 6·N (non-embedding matmuls) + 12·L·d·T (attention scores)."""
        c = self.cfg
        return 6 * self.num_params(embeddings=False) + 12 * c.n_layers * c.dim * seq_len

    @torch.no_grad()
    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        eos_id: int | None = None,
    ):
        """Yield new token ids one at a time, with a KV cache."""
        device = self.lm_head.weight.device
        g = torch.Generator(device=device)
        if seed is not None:
            g.manual_seed(seed)
        room = self.cfg.max_seq_len - len(prompt)
        if room <= 0:
            raise UserError(f"prompt of {len(prompt)} tokens fills the model's {self.cfg.max_seq_len}-token context")
        cache = [{} for _ in range(self.cfg.n_layers)]
        idx = torch.tensor([prompt], dtype=torch.long, device=device)
        pos = 0
        for _ in range(min(max_new_tokens, room)):
            logits = self(idx, cache=cache, start=pos)[:, -1, :].float()
            pos += idx.shape[1]
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
            token = int(nxt.item())
            yield token
            if eos_id is not None and token == eos_id:
                return
            idx = nxt
