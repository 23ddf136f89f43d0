"""MinHash signatures: webmill's numpy signatures vs datasketch's bulk API vs rensa (Rust).

Same documents (the scale bench's generator: real sentences, each original followed by a
near copy with one word in 80 replaced), same shingles (word 5-grams), 112 permutations.
Speed is documents per second in one process; quality is the share of (original, near
copy) pairs that the default 14 x 8 bands make LSH candidates, and the mean absolute
error of the signature's Jaccard estimate against the exact Jaccard of the shingles.

    python bench/signatures.py [--docs 2000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    args = ap.parse_args()
    from scale import original_text, sentence_pool  # bench/scale.py's generator

    from webmill.dedup.minhash import band_hashes, datasketch_minhash, jaccard, shingle_hashes, shingles, signatures

    pool = sentence_pool()
    texts = []
    for k in range(args.docs // 2):
        t = original_text(k, pool)
        words = t.split(" ")
        words[::80] = ["replaced"] * len(words[::80])
        texts += [t, " ".join(words)]
    n = len(texts)
    bands, rows, perms = 14, 8, 112

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, n / (time.perf_counter() - t)

    ours, r_ours = timed(lambda: signatures(texts, 5, perms, 1))

    def datasketch_bulk():
        from datasketch import MinHash

        mhs = MinHash.bulk([shingles(t, 5) for t in texts], num_perm=perms, seed=1,
                           hashfunc=datasketch_minhash(perms, 1).hashfunc)
        return np.stack([m.hashvalues for m in mhs]).astype(np.uint64)

    ds, r_ds = timed(datasketch_bulk)

    def rensa_on_webmill_shingles():
        from rensa import RMinHash

        hs = [shingle_hashes(t, 5) for t in texts]
        offsets = np.concatenate([[0], np.cumsum([len(h) for h in hs])]).astype(np.uint64)
        flat = np.concatenate(hs).astype(np.uint64)
        m = RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, perms, 1)
        return np.array(m.to_rows(), dtype=np.uint64)

    rz, r_rz = timed(rensa_on_webmill_shingles)

    def rensa_token_sets():
        from rensa import RMinHash

        sets = [[" ".join(s) for s in shingles(t, 5)] for t in texts]
        out = RMinHash.digests_from_token_sets(sets, perms, 1)
        return np.array(out.to_rows() if hasattr(out, "to_rows") else out, dtype=np.uint64)

    rt, r_rt = timed(rensa_token_sets)
    exact = np.array([jaccard(shingle_hashes(texts[i], 5), shingle_hashes(texts[i + 1], 5)) for i in range(0, n, 2)])

    def quality(sig):
        bh = band_hashes(sig, bands, rows)
        cand = (bh[0::2] == bh[1::2]).any(axis=1).mean()
        est = (sig[0::2] == sig[1::2]).mean(axis=1)
        return cand, float(np.abs(est - exact).mean())

    print(f"{n:,} documents ({n // 2:,} original + near copy pairs, exact Jaccard mean {exact.mean():.3f}), "
          f"word 5-grams, {perms} permutations, bands {bands} x {rows}")
    for label, sig, rate in (("webmill numpy (datasketch's scheme)", ours, r_ours),
                             ("datasketch MinHash.bulk", ds, r_ds),
                             ("rensa on webmill's shingle hashes", rz, r_rz),
                             ("rensa from token sets", rt, r_rt)):
        cand, err = quality(sig)
        print(f"  {label:<38} {rate:9,.0f} docs/s  pairs made candidates {cand:.3f}  |est - exact| {err:.3f}")
    print(f"  numpy equals datasketch bit for bit: {bool(np.array_equal(ours, ds))}")


if __name__ == "__main__":
    main()
