"""The ``[dedup]`` table: exact, URL and MinHash-LSH near-duplicate removal."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field


@dataclass
class DedupConfig:
    exact: bool = field(True, "remove exact duplicates of normalized text")
    url: bool = field(True, "keep only the latest fetch of a canonical URL")
    near: bool = field(True, "remove near-duplicates (MinHash LSH)")
    ngram: int = field(5, "words per shingle", min=1, max=64)
    bands: int = field(14, "LSH bands", min=1, max=512)
    rows: int = field(8, "rows per band", min=1, max=512)
    threshold: float = field(0.72, "Jaccard similarity that counts as a near-duplicate", min=0.0, max=1.0)
    verify: bool = field(True, "check candidate pairs by exact Jaccard before clustering")
    seed: int = field(1, "hash seed of the permutations", min=0)
