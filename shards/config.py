"""The ``[shards]`` table: the final training shards."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field


@dataclass
class ShardsConfig:
    name: str = field("main", "name of the shard set under <root>/shards/")
    target_bytes: int = field(256 << 20, "roll shards at this size", min=1 << 10)
    row_group_rows: int = field(1024, "documents per row group", min=1)
    seed: int = field(0, "shuffle seed", min=0)
    val_fraction: float = field(0.01, "share of documents held out for validation", min=0.0, max=0.5)
    mix: dict[str, float] = field({}, "source dataset → weight", min=0.0)
