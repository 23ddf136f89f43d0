"""The ``[train]`` table: tokenizer and trainer settings."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field

PRESETS = ("tiny", "small", "medium")


@dataclass
class TrainConfig:
    preset: str = field("tiny", "model size", choices=PRESETS)
    vocab_size: int = field(8192, "tokenizer vocabulary", min=260, max=1 << 20)
    tokenizer_max_chars: int = field(20_000_000, "characters sampled to train the tokenizer", min=1000)
    tokenizer_doc_cap: int = field(10_000, "characters taken from one document", min=100)
    seq_len: int = field(256, "tokens per training row", min=8)
    batch_tokens: int = field(8192, "tokens per optimizer step", min=8)
    micro_batch: int = field(8, "rows per forward pass", min=1)
    max_steps: int = field(200, "optimizer steps", min=1)
    max_tokens: int = field(0, "stop after this many tokens (0 = max_steps decides)", min=0)
    lr: float = field(3e-3, "peak learning rate", min=0.0)
    min_lr_ratio: float = field(0.1, "final learning rate / peak", min=0.0, max=1.0)
    warmup: int = field(20, "warmup steps", min=0)
    weight_decay: float = field(0.1, "AdamW weight decay", min=0.0)
    grad_clip: float = field(1.0, "gradient-norm clip (0 = off)", min=0.0)
    eval_every: int = field(50, "steps between validation passes", min=1)
    eval_batches: int = field(8, "batches per validation pass", min=1)
    checkpoint_every: int = field(100, "steps between checkpoints", min=1)
    max_position: int = field(0, "rotary table length (0 = the preset's)", min=0)
    max_doc_tokens: int = field(0, "crop documents to this many tokens (0 = 1024 × seq_len)", min=0)
    loader_workers: int = field(1, "loader streams per data-parallel rank", min=1)
    stop_after: int = field(0, "stop this session after N steps; the schedule still spans max_steps (0 = off)", min=0)
    workers: int = field(1, "data-parallel workers (Ray Train) ; 1 = in-process", min=1)
    gpus_per_worker: float = field(0.0, "GPUs per Ray Train worker", min=0.0)
    device: str = field("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    compile: str = field(
        "auto", "torch.compile the model: auto (on CUDA, eager if compiling fails), on or off", choices=("auto", "on", "off")
    )
    seed: int = field(1337, "random seed", min=0)
    val_fraction: float = field(0.02, "documents held out (by id hash) when shards have no validation split", min=0.0, max=0.5)


@dataclass
class SftConfig:
    """The ``[sft]`` table: fine-tuning a pretrained run on conversations (``webmill sft``)."""

    seq_len: int = field(0, "tokens per conversation row; longer ones are cropped (0 = the pretraining run's)", min=0)
    micro_batch: int = field(16, "conversations per step", min=1)
    epochs: int = field(3, "passes over the training conversations", min=1)
    max_steps: int = field(0, "optimizer steps (0 = epochs decide)", min=0)
    lr: float = field(1e-3, "peak learning rate", min=0.0)
    min_lr_ratio: float = field(0.1, "final learning rate / peak", min=0.0, max=1.0)
    warmup: int = field(10, "warmup steps", min=0)
    weight_decay: float = field(0.0, "AdamW weight decay", min=0.0)
    grad_clip: float = field(1.0, "gradient-norm clip (0 = off)", min=0.0)
    eval_every: int = field(50, "steps between held-out losses", min=1)
    checkpoint_every: int = field(100, "steps between checkpoints", min=1)
    stop_after: int = field(0, "stop this session after N steps (0 = off)", min=0)
    val_fraction: float = field(0.05, "conversations held out, by a hash of their line", min=0.0, max=0.5)
    synthesize_limit: int = field(5000, "conversations synthesized from the corpus when --data is not given", min=1)
    device: str = field("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    compile: str = field("auto", "torch.compile: auto (on CUDA), on or off", choices=("auto", "on", "off"))
    seed: int = field(1337, "random seed", min=0)
