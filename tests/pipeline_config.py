"""The small pipeline config the end-to-end tests run: a served site, a tiny tokenizer and model."""

from __future__ import annotations


def config_text(
    seed_url: str, max_steps: int = 12, *, eval_every: int = 6, checkpoint_every: int = 3, crawl: str = "", **extra_tables: str
) -> str:
    """``crawl``: more lines for the [crawl] table; ``extra_tables``: table name → its lines."""
    text = f"""
[crawl]
seeds = ["{seed_url}"]
allow_private_networks = true
{crawl}
[shards]
val_fraction = 0.05
row_group_rows = 16
[train]
vocab_size = 512
seq_len = 64
batch_tokens = 1024
micro_batch = 8
max_steps = {max_steps}
eval_every = {eval_every}
checkpoint_every = {checkpoint_every}
"""
    for table, body in extra_tables.items():
        text += f"[{table}]\n{body}\n"
    return text


def write_config(path, seed_url: str, max_steps: int = 12, **kw) -> str:
    path.write_text(config_text(seed_url, max_steps, **kw))
    return str(path)
