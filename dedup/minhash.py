"""MinHash signatures with datasketch's hashing scheme, vectorized over many documents.

Shingles are word n-grams where the script has words, character n-grams where it
does not (Japanese, Chinese, Thai). A shingle's 32-bit hash combines its tokens'
xxh32 hashes, so a document needs one hash call per token, not per shingle; the
hashes are permuted with datasketch's own (a, b) permutations and arithmetic, so a
signature equals ``datasketch_minhash(num_perm, seed).update_batch(shingles)``
(tested) while the per-shingle Python loop becomes numpy passes.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
from datasketch import MinHash
import xxhash

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_PERMS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFC, case-folded, whitespace collapsed: the text exact duplicates are found on."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def tokens(text: str) -> list[str]:
    """Words, or characters for a script without word separators (few spaces for its length)."""
    norm = normalize(text)
    if not norm:
        return []
    words = norm.split(" ")
    if len(words) * 12 < len(norm):
        return list(norm.replace(" ", ""))
    return words


def shingles(text: str, n: int) -> list[tuple[str, ...]]:
    """The n-token shingles (one shingle of all tokens when there are fewer than n)."""
    toks = tokens(text)
    if not toks:
        return []
    if len(toks) < n:
        return [tuple(toks)]
    return [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _finalize32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(31))
    h = h * _MIX
    return (h >> np.uint64(32)) & np.uint64(0xFFFFFFFF)


def shingle_hash(shingle: tuple[str, ...]) -> int:
    """The 32-bit hash of one shingle: what ``datasketch.MinHash(hashfunc=shingle_hash)`` uses.
    ``shingle_hashes`` computes the same for every shingle of a document at once."""
    h = np.zeros(1, dtype=np.uint64)
    for t in shingle:
        h = h * _MIX + np.uint64(xxhash.xxh32_intdigest(t.encode()))
    return int(_finalize32(h)[0])


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Sorted unique 32-bit hashes of a document's shingles: one xxh32 per token, then the
    n-token combination vectorized over positions."""
    toks = tokens(text)
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    th = np.fromiter((xxhash.xxh32_intdigest(t.encode()) for t in toks), dtype=np.uint64, count=len(toks))
    k = min(n, len(toks))
    h = np.zeros(len(toks) - k + 1, dtype=np.uint64)
    for j in range(k):
        h = h * _MIX + th[j:len(toks) - k + 1 + j]
    return np.unique(_finalize32(h))


def datasketch_minhash(num_perm: int, seed: int) -> MinHash:
    """datasketch's MinHash with its classic scheme ((a·h + b) mod 2^61-1, 32 bits; the only
    scheme before datasketch 2.0, ``scheme="legacy"`` since) over webmill's shingle hash."""
    try:
        return MinHash(num_perm=num_perm, seed=seed, scheme="legacy", hashfunc=shingle_hash)
    except TypeError:
        return MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = (num_perm, seed)
    if key not in _PERMS:
        a, b = datasketch_minhash(num_perm, seed).permutations
        _PERMS[key] = (a.astype(np.uint64), b.astype(np.uint64))
    return _PERMS[key]


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


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized (uint64 arithmetic wraps)."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64: each band's rows folded into one 64-bit hash, all documents at once."""
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(len(sigs), np.uint64(band + 1) * _M2, dtype=np.uint64)
            for r in range(band * rows, (band + 1) * rows):
                h = _mix64(h ^ sigs[:, r])
            out[:, band] = h
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
