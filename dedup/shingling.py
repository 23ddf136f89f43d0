"""Shingles of a whole batch of documents at once, computed on Arrow's text buffers.

A document's text is NFC-normalized and lower-cased by Arrow's kernels, then read as
bytes: tokens are the runs between whitespace (Python's ``str.isspace`` set), or single
characters for a script without word separators (fewer than one token per 12
characters: Japanese, Chinese, Thai). A token's 64-bit hash is a polynomial over its
UTF-8 bytes, taken from prefix sums of the whole batch so that no Python object is
made per token; a shingle hashes ``n`` consecutive tokens of one document (all of them
when a document has fewer). Every step is a numpy pass over the batch, which is what
makes signing run at the speed of the MinHash itself.

``python_tokens`` / ``python_shingle_hashes`` are the same definitions written per
document in plain Python: the tests hold the vectorized code to them.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_P = 0x100000001B3  # the polynomial's base (odd, so invertible modulo 2^64)
_P_INV = pow(_P, -1, 1 << 64)
_MIX = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1
CHARS_PER_WORD = 12  # fewer tokens than one per this many characters: characters are the tokens

# Python's str.isspace() characters above ASCII, as UTF-8 (U+0085, U+00A0, U+1680, U+2000-U+200A,
# U+2028, U+2029, U+202F, U+205F, U+3000)
_WIDE_SPACES = [c.encode() for c in ("\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000")]


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer (uint64 arithmetic wraps)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(_M1)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(_M2)
    return h ^ (h >> np.uint64(31))


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sort and compare (numpy 2.4's own is hash-based and several times slower here)."""
    x = np.sort(x)
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = x[1:] != x[:-1]
    return x[keep]


@dataclass
class Shingled:
    """A batch's shingle hashes: document d's are ``hashes[offsets[d]:offsets[d + 1]]``
    (in text order, repeats kept); ``exact`` is each document's 128-bit token-sequence hash."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, docs + 1
    exact: list[bytes]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sets32(self) -> list[np.ndarray]:
        """Each document's sorted unique 32-bit shingle hashes: what exact Jaccard is computed on."""
        docs = np.repeat(np.arange(len(self), dtype=np.uint64), np.diff(self.offsets))
        key = sorted_unique((docs << np.uint64(32)) | (self.hashes >> np.uint64(32)))
        bounds = np.searchsorted(key >> np.uint64(32), np.arange(len(self) + 1, dtype=np.uint64))
        low = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        return [low[bounds[d] : bounds[d + 1]] for d in range(len(self))]


def _text_bytes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The normalized batch as one uint8 buffer and int64 document offsets into it."""
    texts = texts.fill_null("")
    # the clean stage writes NFC already: Python's quick check finds that, and only a text
    # that fails it is normalized (Arrow's own NFC kernel is ~10x slower than the check)
    strs = texts.to_pylist()
    unnormalized = [i for i, t in enumerate(strs) if not unicodedata.is_normalized("NFC", t)]
    if unnormalized:
        for i in unnormalized:
            strs[i] = unicodedata.normalize("NFC", strs[i])
        texts = pa.array(strs, pa.large_string())
    arr = pc.utf8_lower(texts).cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = arr.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    start, end = int(offsets[0]), int(offsets[-1])
    return raw[start:end], offsets - start


def _whitespace(b: np.ndarray) -> np.ndarray:
    ws = (b == 32) | ((b >= 9) & (b <= 13)) | ((b >= 28) & (b <= 31))
    # the wide spaces start with one of four lead bytes: only those positions are looked at
    lead = np.flatnonzero((b == 0xC2) | ((b >= 0xE1) & (b <= 0xE3)))
    if len(lead):
        padded = np.concatenate([b, np.zeros(2, np.uint8)])
        for seq in _WIDE_SPACES:
            hit = lead[padded[lead] == seq[0]]
            for j in range(1, len(seq)):
                hit = hit[padded[hit + j] == seq[j]]
            for j in range(len(seq)):
                ws[hit + j] = True
    return ws


def _token_bounds(b: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte of every token, in order; tokens never cross a document."""
    n, docs = len(b), len(offsets) - 1
    ws = _whitespace(b)
    prev_ws = np.ones(n, dtype=bool)
    prev_ws[1:] = ws[:-1]
    next_ws = np.ones(n, dtype=bool)
    next_ws[:-1] = ws[1:]
    nonempty = offsets[:-1] < offsets[1:]
    prev_ws[offsets[:-1][nonempty]] = True
    next_ws[offsets[1:][nonempty] - 1] = True
    word_starts = np.flatnonzero(~ws & prev_ws)
    word_ends = np.flatnonzero(~ws & next_ws) + 1
    # characters (not UTF-8 continuation bytes, not whitespace) per document, from prefix counts
    is_char = ~ws & ((b & 0xC0) != 0x80)
    chars = np.concatenate([[0], np.cumsum(is_char, dtype=np.int32)])[offsets]
    chars = np.diff(chars)
    words = np.bincount(np.searchsorted(offsets, word_starts, side="right") - 1, minlength=docs)[:docs]
    by_char = words * CHARS_PER_WORD < chars
    if not by_char.any():
        return word_starts, word_ends
    char_byte = np.repeat(by_char, np.diff(offsets))
    keep = ~char_byte[word_starts]
    cs = np.flatnonzero(is_char & char_byte)
    lead = b[cs]
    ce = cs + 1 + (lead >= 0xC0) + (lead >= 0xE0) + (lead >= 0xF0)
    starts = np.concatenate([word_starts[keep], cs])
    ends = np.concatenate([word_ends[keep], ce])
    order = np.argsort(starts, kind="stable")
    return starts[order], ends[order]


CHUNK_BYTES = 1 << 20  # text bytes hashed per numpy pass: ~1 MB keeps the passes' arrays in cache


_POWERS: list[np.ndarray] = []  # [P^i, P^-i] for i < len, kept for slices up to a few CHUNK_BYTES


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P^i and P^-i modulo 2^64 for i < n (cached per process up to 4 * CHUNK_BYTES)."""
    if _POWERS and len(_POWERS[0]) >= n:
        return _POWERS[0][:n], _POWERS[1][:n]
    out = []
    with np.errstate(over="ignore"):
        for base in (_P, _P_INV):
            p = np.full(max(n, CHUNK_BYTES + 1) if n <= 4 * CHUNK_BYTES else n, np.uint64(base), dtype=np.uint64)
            p[0] = 1
            np.multiply.accumulate(p, out=p)
            out.append(p)
    if len(out[0]) <= 4 * CHUNK_BYTES:
        _POWERS[:] = out
    return out[0][:n], out[1][:n]


def shingle_batch(texts: pa.Array | pa.ChunkedArray, n: int) -> Shingled:
    """Shingle hashes of every document of a batch (see the module's docstring), computed
    in slices of about ``CHUNK_BYTES`` of text."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    sizes = pc.fill_null(pc.binary_length(texts), 0).to_numpy()
    cuts = [0]
    total = 0
    for i, size in enumerate(sizes):
        if total and total + size > CHUNK_BYTES:
            cuts.append(i)
            total = 0
        total += int(size)
    cuts.append(len(sizes))
    if len(cuts) == 2:
        return _shingle_slice(texts, n)
    parts = [_shingle_slice(texts.slice(a, b - a), n) for a, b in zip(cuts[:-1], cuts[1:])]
    hashes = np.concatenate([p.hashes for p in parts])
    ends = np.cumsum([p.offsets[-1] for p in parts])
    offsets = np.concatenate([[0]] + [p.offsets[1:] + (ends[k - 1] if k else 0) for k, p in enumerate(parts)])
    return Shingled(hashes, offsets.astype(np.int64), [x for p in parts for x in p.exact])


def _shingle_slice(texts: pa.Array, n: int) -> Shingled:
    b, offsets = _text_bytes(texts)
    docs = len(offsets) - 1
    starts, ends = _token_bounds(b, offsets)
    with np.errstate(over="ignore"):
        powers, inverse = _powers(len(b) + 1)
        prefix = np.zeros(len(b) + 1, dtype=np.uint64)
        np.cumsum((b.astype(np.uint64) + np.uint64(1)) * powers[:-1], out=prefix[1:])
        th = mix64((prefix[ends] - prefix[starts]) * inverse[starts])
        tok_doc = np.searchsorted(offsets, starts, side="right") - 1
        ntok = np.bincount(tok_doc, minlength=docs)[:docs]
        first_tok = np.concatenate([[0], np.cumsum(ntok)])
        t = len(th)
        k = min(n, t)
        acc = np.zeros(t, dtype=np.uint64)
        for j in range(k):
            acc[: t - j] = acc[: t - j] * np.uint64(_MIX) + th[j:]
        # a full shingle starts at token i when token i + n - 1 is in the same document
        full = np.zeros(t, dtype=bool)
        if t >= n:
            full[: t - n + 1] = tok_doc[n - 1 :] == tok_doc[: t - n + 1]
        counts = np.where(ntok >= n, ntok - n + 1, np.minimum(ntok, 1))
        values = np.empty(int(counts.sum()), dtype=np.uint64)
        sh_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        long_docs = ntok >= n
        values[np.repeat(long_docs, counts)] = acc[full]
        short = np.flatnonzero((ntok > 0) & ~long_docs)
        if len(short):  # fewer tokens than n: one shingle of all of them
            h = np.zeros(len(short), dtype=np.uint64)
            for j in range(n - 1):
                has = j < ntok[short]
                h = np.where(has, h * np.uint64(_MIX) + th[np.minimum(first_tok[short] + j, t - 1)], h)
            values[sh_offsets[short]] = h
        values = mix64(values)
    exact = [hashlib.blake2b(th[first_tok[d] : first_tok[d + 1]].tobytes(), digest_size=16).digest() for d in range(docs)]
    return Shingled(values, sh_offsets, exact)


# the same definitions, one document at a time in plain Python (the tests' reference) -------
def python_tokens(text: str) -> list[str]:
    norm = unicodedata.normalize("NFC", text).lower()
    words = norm.split()
    chars = [c for c in norm if not c.isspace()]
    return chars if len(words) * CHARS_PER_WORD < len(chars) else words


def _pymix64(h: int) -> int:
    h = ((h ^ (h >> 30)) * _M1) & _MASK
    h = ((h ^ (h >> 27)) * _M2) & _MASK
    return h ^ (h >> 31)


def python_token_hash(token: str) -> int:
    h, p = 0, 1
    for byte in token.encode():
        h = (h + (byte + 1) * p) & _MASK
        p = (p * _P) & _MASK
    return _pymix64(h)


def python_shingle_hashes(text: str, n: int) -> list[int]:
    th = [python_token_hash(t) for t in python_tokens(text)]
    if not th:
        return []
    k = min(n, len(th))
    out = []
    for i in range(len(th) - k + 1):
        h = 0
        for x in th[i : i + k]:
            h = (h * _MIX + x) & _MASK
        out.append(_pymix64(h))
    return out
