"""MinHash signatures and LSH bands over a batch's shingle hashes.

The shingle hashes come from ``shingling.py`` (one numpy pass per step over a whole
batch); the permutations and minima are rensa's (Rust, ``RMinHash``), fed the flat
hash buffer and document offsets without a Python object per shingle. Measured in
``bench/signatures.py`` against datasketch's bulk API and webmill's former numpy
permutations on the same documents: same LSH candidate rate, several times faster.
rensa's algorithm version is part of the index fingerprint, so signatures of two
versions are never mixed in one index.
"""

from __future__ import annotations

import numpy as np
from rensa import RMinHash

from webmill.dedup.shingling import Shingled, mix64

ALGORITHM = f"rensa-rminhash-{RMinHash.ALGORITHM_VERSION}"


def signatures(shingled: Shingled, num_perm: int, seed: int) -> np.ndarray:
    """(documents, num_perm) uint32 signatures; a document without shingles gets all-max."""
    if not len(shingled):
        return np.zeros((0, num_perm), dtype=np.uint32)
    m = RMinHash.digest_matrix_from_flat_token_hashes(shingled.hashes, shingled.offsets.astype(np.uint64), num_perm, seed)
    return np.asarray(m.to_rows(), dtype=np.uint32).reshape(len(shingled), num_perm)


_SEED = np.uint64(0x94D049BB133111EB)


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64: each band's rows folded into one 64-bit hash, all documents at once."""
    sigs = sigs.astype(np.uint64)
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(len(sigs), np.uint64(band + 1) * _SEED, dtype=np.uint64)
            for r in range(band * rows, (band + 1) * rows):
                h = mix64(h ^ sigs[:, r])
            out[:, band] = h
    return out


def candidate_probability(s: float, bands: int, rows: int) -> float:
    return 1 - (1 - s**rows) ** bands


def choose_bands_rows(threshold: float, num_perm: int = 112, recall: float = 0.95) -> tuple[int, int]:
    """bands × rows ≤ num_perm that make a pair at exactly ``threshold`` a candidate with
    probability ≥ ``recall``, with the fewest false candidates below it (the exact
    Jaccard check after LSH removes those, at the cost of checking them)."""
    grid = np.linspace(0.0, threshold, 200)
    best, best_fp = None, float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            if candidate_probability(threshold, b, r) < recall:
                continue
            fp = float(np.mean([candidate_probability(s, b, r) for s in grid]))
            if fp < best_fp:
                best, best_fp = (b, r), fp
    return best or (num_perm, 1)


def jaccard(x: np.ndarray, y: np.ndarray) -> float:
    if not len(x) and not len(y):
        return 1.0
    inter = len(np.intersect1d(x, y, assume_unique=True))
    return inter / (len(x) + len(y) - inter)
