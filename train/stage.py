"""The tokenizer and train stages (``webmill.stage``).

tokenizer: a shard set's train split → a byte-level BPE tokenizer in ``shards/<set>/tokenizer/``,
its chars/token on the held-out split, and every shard encoded into token files
(``shards/<set>/tokens/``, ``webmill.train.token_files``) with its token count.
train: a shard set → ``runs/<name>/`` (checkpoints, ``metrics.jsonl``, ``final/`` for
transformers). The trainer draws its own progress line (rank 0, step by step).
"""

from __future__ import annotations

import dataclasses

from webmill.shards import layout

TOKENIZER_SETTINGS = ("vocab_size", "tokenizer_max_chars", "tokenizer_doc_cap")


def _shards_read(shards: str | None) -> list[str]:
    """What a stage given ``--shards`` reads: that shard set, a document dataset path, or (None) the newest set."""
    return [layout.shard_set(shards)] if shards and "/" not in shards else [shards or layout.SHARDS]


class TokenizerStage:
    name = "tokenizer"

    def __init__(self, shards: str | None):
        self.shards = shards  # a shard set's name (None: the newest) or a document dataset path

    @classmethod
    def following(cls, chain) -> TokenizerStage:
        return cls(chain.upstream["shard"]["name"])

    def settings(self, config) -> dict:
        return {k: getattr(config.train, k) for k in TOKENIZER_SETTINGS}

    def reads(self) -> list[str]:
        return _shards_read(self.shards)

    def writes(self, summary: dict) -> list[str]:
        return [f"{layout.tokenizer(summary['shards'])}/tokenizer.json"]

    def run(self, root, ray, config, progress) -> dict:
        from webmill.train.tokenizer import train_for_shards

        c = config.train
        counted = [0]

        def show(shard_path: str) -> None:
            counted[0] += 1
            progress.update(f"tokenizer: {counted[0]:,} shard(s) encoded")

        progress.update("tokenizer: training on a sample of the train split")
        return train_for_shards(
            root,
            self.shards,
            vocab_size=c.vocab_size,
            max_chars=c.tokenizer_max_chars,
            doc_cap=c.tokenizer_doc_cap,
            on_progress=show,
            ray_fn=ray,
        )

    def brief(self, s: dict) -> str:
        return f"{s['vocab_size']:,} tokens, {s['chars_per_token']:.2f} chars/token"


class TrainStage:
    name = "train"

    def __init__(self, shards: str | None = None, run_name: str | None = None, *, resume: str | None = None):
        self.shards, self.run_name, self.resume = shards, run_name, resume

    @classmethod
    def following(cls, chain) -> TrainStage:
        """webmill run's run is named after its shard set and fingerprint, and continues from its
        checkpoints when that run folder already holds a plan."""
        shards = chain.upstream["shard"]["name"]
        name = f"{shards}-{chain.fingerprint(cls.name, dataclasses.asdict(chain.config.train))[:8]}"
        return cls(shards, name, resume=name if chain.root.exists(layout.run(name), "plan.json") else None)

    def settings(self, config) -> dict:
        return dataclasses.asdict(config.train)

    def reads(self) -> list[str]:
        return _shards_read(self.shards)

    def writes(self, summary: dict) -> list[str]:
        return [f"{layout.run(summary['name'])}/final/training.json"] if summary.get("final") else []  # stopped early: not done

    def run(self, root, ray, config, progress) -> dict:
        from webmill.train.launch import run_training
        from webmill.train.plan import make_plan, resume_plan

        if self.resume:
            plan = resume_plan(root, self.resume, config.train)
        else:
            plan = make_plan(root, config.train, shards=self.shards, name=self.run_name)
        return run_training(plan, ray_fn=ray)

    def brief(self, s: dict) -> str:
        val = s.get("val_loss")
        return f"{s['name']}: step {s['step']}, val loss {val:.3f}" if val is not None else f"{s['name']}: step {s['step']}"
