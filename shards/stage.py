"""The shard stage (``webmill.stage``): deduplicated documents → a shard set (train and val splits,
globally shuffled) with its ``manifest.json``. The work itself is ``webmill.shards.training``."""

from __future__ import annotations

import dataclasses

from webmill.shards import layout


class ShardStage:
    name = "shard"

    def __init__(self, name: str | None = None):
        self.set_name = name  # None: [shards] name
        self.manifest: dict | None = None

    @classmethod
    def following(cls, chain) -> ShardStage:
        return cls()

    def settings(self, config) -> dict:
        return dataclasses.asdict(config.shards)

    def reads(self) -> list[str]:
        return []  # the sources [shards] mix names, or every dedup run of the root

    def writes(self, summary: dict) -> list[str]:
        return [layout.shard_manifest(summary["name"])]

    def run(self, root, ray, config, progress) -> dict:
        """The set's name, fingerprint, and documents and characters per split (the whole manifest,
        a line per shard, stays in the set's folder; ``self.manifest`` holds it after the run)."""
        from webmill.shards.training import build_shards

        def show(seen: int) -> None:
            progress.update(f"shard: {seen:,} documents bucketed")

        m = self.manifest = build_shards(root, config.shards, name=self.set_name, on_progress=show, ray_fn=ray)
        return {
            "name": m["name"],
            "fingerprint": m["fingerprint"],
            **{f"{k}_docs": v["rows"] for k, v in m["splits"].items()},
            **{f"{k}_chars": v["chars"] for k, v in m["splits"].items()},
        }

    def brief(self, s: dict) -> str:
        return f"{s['name']}: {s['train_docs']:,} train / {s['val_docs']:,} val documents"
