"""MinHash signatures: webmill's path vs datasketch's bulk API vs rensa alone vs numpy.

Same documents (the scale bench's generator: real sentences, each original followed by a
near copy with one word in 80 replaced), word 5-grams, 112 permutations, in one process:

- webmill: ``shingle_batch`` (numpy passes over the batch's Arrow text buffer) feeding
  rensa's ``digest_matrix_from_flat_token_hashes`` (what ``webmill dedup`` runs);
- numpy permutations: the same shingle hashes, datasketch's (a·h + b) mod 2^61-1
  permutations as numpy arrays (webmill's signatures before rensa);
- datasketch ``MinHash.bulk`` over the shingles as strings (Python tokenizing);
- rensa ``digests_from_token_sets`` over the shingles as strings (rensa hashing them).

Speed is documents per second; quality is the share of (original, near copy) pairs that
the default 14 x 8 bands make LSH candidates, and the mean absolute error of the
signature's Jaccard estimate against the exact Jaccard of the shingle sets.

    python bench/signatures.py [--docs 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))

MERSENNE, MAX32 = np.uint64((1 << 61) - 1), np.uint64(0xFFFFFFFF)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=1000, help="documents per batch, as the sign task reads them")
    args = ap.parse_args()
    from datasketch import MinHash
    from rensa import RMinHash
    from scale import original_text, sentence_pool  # bench/scale.py's generator

    from webmill.dedup.minhash import band_hashes, jaccard, signatures
    from webmill.dedup.shingling import python_tokens, shingle_batch

    pool = sentence_pool()
    texts = []
    for k in range(args.docs // 2):
        t = original_text(k, pool)
        words = t.split(" ")
        words[::80] = ["replaced"] * len(words[::80])
        texts += [t, " ".join(words)]
    n, bands, rows, perms = len(texts), 14, 8, 112
    arr = pa.array(texts)
    batches = [arr.slice(i, args.batch) for i in range(0, n, args.batch)]

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, n / (time.perf_counter() - t)

    def webmill():
        return np.concatenate([signatures(shingle_batch(b, 5), perms, 1) for b in batches])

    a, b = (p.astype(np.uint64) for p in MinHash(num_perm=perms, seed=1).permutations)

    def numpy_permutations():
        out = []
        for batch in batches:
            sh = shingle_batch(batch, 5)
            hv = sh.hashes >> np.uint64(32)
            sig = np.full((len(sh), perms), MAX32, dtype=np.uint64)
            for d in range(len(sh)):
                h = hv[sh.offsets[d] : sh.offsets[d + 1]]
                if len(h):
                    sig[d] = np.bitwise_and((np.outer(h, a) + b) % MERSENNE, MAX32).min(axis=0)
            out.append(sig)
        return np.concatenate(out)

    def string_shingles(t):
        toks = python_tokens(t)
        return [" ".join(toks[i : i + 5]) for i in range(max(1, len(toks) - 4))]

    def datasketch_bulk():
        mhs = MinHash.bulk([[s.encode() for s in string_shingles(t)] for t in texts], num_perm=perms, seed=1)
        return np.stack([m.hashvalues for m in mhs]).astype(np.uint64)

    def rensa_token_sets():
        out = RMinHash.digests_from_token_sets([string_shingles(t) for t in texts], perms, 1)
        return np.array(out.to_rows() if hasattr(out, "to_rows") else out, dtype=np.uint64)

    results = [
        ("webmill: batch shingles + rensa", *timed(webmill)),
        ("numpy permutations, same shingles", *timed(numpy_permutations)),
        ("datasketch MinHash.bulk", *timed(datasketch_bulk)),
        ("rensa from token sets", *timed(rensa_token_sets)),
    ]
    sets = shingle_batch(arr, 5).sets32()
    exact = np.array([jaccard(sets[i], sets[i + 1]) for i in range(0, n, 2)])

    def quality(sig):
        bh = band_hashes(sig, bands, rows)
        cand = (bh[0::2] == bh[1::2]).any(axis=1).mean()
        est = (sig[0::2] == sig[1::2]).mean(axis=1)
        return cand, float(np.abs(est - exact).mean())

    print(
        f"{n:,} documents ({n // 2:,} original + near copy pairs, exact Jaccard mean {exact.mean():.3f}, "
        f"{sum(len(t) for t in texts) / n:,.0f} chars each), word 5-grams, {perms} permutations, bands {bands} x {rows}"
    )
    base = results[0][2]
    for label, sig, rate in results:
        cand, err = quality(sig)
        print(
            f"  {label:<36} {rate:9,.0f} docs/s  ({base / rate:4.1f}x webmill's time)  "
            f"pairs made candidates {cand:.3f}  |est - exact| {err:.3f}"
        )


if __name__ == "__main__":
    main()
