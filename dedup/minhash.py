"""MinHash signatures with datasketch's hashing scheme, vectorized over many documents.

Shingles are word n-grams where the script has words, character n-grams where it
does not (Japanese, Chinese, Thai). Each shingle is hashed with datasketch's
``sha1_hash32`` and permuted with datasketch's own (a, b) permutations, so a
signature equals ``datasketch_minhash(num_perm, seed).update_batch(shingles)``
(tested); the per-document Python loop is replaced by one numpy pass per batch.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_PERMS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFC, case-folded, whitespace collapsed: the text exact duplicates are found on."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def shingles(text: str, n: int) -> list[bytes]:
    norm = normalize(text)
    words = norm.split(" ") if norm else []
    if len(words) * 12 < len(norm):  # few spaces for its length: a script without word separators
        chars = norm.replace(" ", "")
        return [chars[i:i + n].encode() for i in range(max(len(chars) - n + 1, 1 if chars else 0))]
    if len(words) < n:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)]


def datasketch_minhash(num_perm: int, seed: int) -> MinHash:
    """datasketch's MinHash with its classic scheme (sha1_hash32, (a·h + b) mod 2^61-1, 32 bits):
    the only scheme before datasketch 2.0, and ``scheme="legacy"`` since."""
    try:
        return MinHash(num_perm=num_perm, seed=seed, scheme="legacy")
    except TypeError:
        return MinHash(num_perm=num_perm, seed=seed)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = (num_perm, seed)
    if key not in _PERMS:
        a, b = datasketch_minhash(num_perm, seed).permutations
        _PERMS[key] = (a.astype(np.uint64), b.astype(np.uint64))
    return _PERMS[key]


def shingle_hashes(text: str, n: int) -> np.ndarray:
    return np.unique(np.fromiter((sha1_hash32(s) for s in shingles(text, n)), dtype=np.uint64))


def signatures(texts: list[str], n: int, num_perm: int, seed: int) -> np.ndarray:
    """(len(texts), num_perm) uint64 signatures; an empty document gets all-max values."""
    a, b = permutations(num_perm, seed)
    out = np.full((len(texts), num_perm), _MAX_HASH, dtype=np.uint64)
    for i, text in enumerate(texts):
        hv = shingle_hashes(text, n)
        if len(hv):
            # the same arithmetic as datasketch.MinHash.update_batch (uint64, wrapping)
            phv = np.bitwise_and((np.outer(hv, a) + b) % _MERSENNE, _MAX_HASH)
            out[i] = phv.min(axis=0)
    return out


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64: a hash of each band's rows."""
    import xxhash

    out = np.empty((len(sigs), bands), dtype=np.uint64)
    for i, sig in enumerate(sigs):
        for band in range(bands):
            out[i, band] = xxhash.xxh3_64_intdigest(sig[band * rows:(band + 1) * rows].tobytes())
    return out


def candidate_probability(s: float, bands: int, rows: int) -> float:
    return 1 - (1 - s ** rows) ** bands


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
