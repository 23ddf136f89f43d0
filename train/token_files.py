"""Pre-tokenized shards: each part's token ids in a flat file, with a document index.

For a shard part ``train/part-00000.parquet`` of shard set S, encoded with the
tokenizer whose ``tokenizer.json`` hashes to H::

    shards/S/tokens/H[:12]/train/part-00000.tok   token ids of the non-empty documents, in row order,
                                                  little-endian uint16 (vocabulary <= 65,536) or uint32
    shards/S/tokens/H[:12]/train/part-00000.idx   uint64 offsets into the .tok file: document i holds
                                                  ids [idx[i], idx[i + 1]); one more entry than documents

The shard set's ``manifest.json`` is the commit point: its ``encoding`` names the tokenizer
(path and sha256), and each shard's entry gets ``token_file``, ``token_index`` and the number
of stored and of empty documents in each row group (``group_docs``, ``group_empty``), so the
loader reads one row group's ids with two range reads (on a local disk or an object store).
The ids are stored without the BOS and uncropped: packing stays the loader's, so a run packs
exactly the same rows from token files as from the text. Files of another tokenizer live
under another hash, so re-encoding never overwrites files an older manifest points at.

Flat files, not a token column in the Parquet parts: ``bench/train.py`` measures both
(its "token ids read" lines); reading a row group's ids from a flat file is a range read and a
``frombuffer``, from a list column a decode and a flatten.
"""

from __future__ import annotations

import hashlib
import posixpath
import uuid

import numpy as np
import pyarrow.fs as pafs

from webmill.errors import UserError
from webmill.shards import layout

FORMAT = "webmill-tokens-1"


def dtype_for(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def tokenizer_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def token_paths(shard_set: str, tok_sha: str, part: str) -> tuple[str, str]:
    """(token file, index) of a part (its path inside the shard set), relative to the shard set."""
    stem = posixpath.splitext(part)[0]
    base = posixpath.join(layout.SHARD_TOKENS, tok_sha[:12], stem)
    return base + ".tok", base + ".idx"


def encode_part(root, shard_set: str, part: str, tokenizer_dir: str, tok_sha: str) -> dict:
    """Encode one shard part into its token file and index (a Ray task); returns its manifest
    fields. Each file is written under a temporary name and moved into place."""
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tok_json = root.read_bytes(tokenizer_dir, "tokenizer.json")
    if tokenizer_sha256(tok_json) != tok_sha:
        raise UserError(f"{root.display(tokenizer_dir, 'tokenizer.json')}: changed while the shards were being encoded")
    tok = Tokenizer.from_str(tok_json.decode())
    dtype = np.dtype(dtype_for(tok.get_vocab_size())).newbyteorder("<")
    tok_rel, idx_rel = token_paths(shard_set, tok_sha, part)
    base = layout.shard_set(shard_set)
    group_docs, group_empty, offsets = [], [], [0]
    digest = hashlib.sha256()
    with _AtomicOutput(root, base, tok_rel) as out, root.fs.open_input_file(root.path(base, part)) as f:
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            texts = pf.read_row_group(g, columns=["text"]).column("text").to_pylist()
            kept = [t for t in texts if t]
            encodings = tok.encode_batch(kept, add_special_tokens=False)
            for e in encodings:
                data = np.asarray(e.ids, dtype=dtype).tobytes()
                out.write(data)
                digest.update(data)
                offsets.append(offsets[-1] + len(e.ids))
            group_docs.append(len(kept))
            group_empty.append(len(texts) - len(kept))
    with _AtomicOutput(root, base, idx_rel) as out:
        out.write(np.asarray(offsets, dtype="<u8").tobytes())
    return {
        "path": part,
        "tokens": offsets[-1],
        "token_file": tok_rel,
        "token_index": idx_rel,
        "token_sha256": digest.hexdigest(),
        "group_docs": group_docs,
        "group_empty": group_empty,
    }


class _AtomicOutput:
    """A file of the root written under a temporary name and moved into place on success."""

    def __init__(self, root, *parts: str):
        self.fs, self.target = root.fs, root.path(*parts)
        self.tmp = posixpath.join(posixpath.dirname(self.target), f".{posixpath.basename(self.target)}.{uuid.uuid4().hex}.tmp")
        self.local = root.is_local

    def __enter__(self):
        self.fs.create_dir(posixpath.dirname(self.target), recursive=True)
        self.stream = self.fs.open_output_stream(self.tmp, compression=None)
        return self.stream

    def __exit__(self, exc_type, exc, tb):
        self.stream.close()
        if exc_type is not None:
            self.fs.delete_file(self.tmp)
            return False
        if self.local:
            from webmill.shards.root import fsync_dir, fsync_file

            fsync_file(self.tmp)
            self.fs.move(self.tmp, self.target)
            fsync_dir(posixpath.dirname(self.target))
        else:
            self.fs.move(self.tmp, self.target)
        return False


# reading ---------------------------------------------------------------------
def part_entries(manifest: dict) -> dict:
    """Part path (relative to the root) → what the loader needs of its token file (paths relative
    to the root too), for an encoded shard set's manifest; empty when the set was not encoded.
    ``webmill.train.plan.input_token_files`` resolves them in the root's filesystem."""
    enc = manifest.get("encoding")
    if not enc:
        return {}
    base = layout.shard_set(manifest["name"])
    out = {}
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            out[posixpath.join(base, shard["path"])] = {
                "file": posixpath.join(base, shard["token_file"]),
                "index": posixpath.join(base, shard["token_index"]),
                "dtype": enc["dtype"],
                "tokens": shard["tokens"],
                "group_docs": shard["group_docs"],
                "group_empty": shard["group_empty"],
                "sha256": shard.get("token_sha256"),
            }
    return out


def resolved_entries(root, manifest: dict) -> dict:
    """``part_entries`` with every path in the root's filesystem (what ``list_units`` takes)."""
    return {root.path(p): {**e, "file": root.path(e["file"]), "index": root.path(e["index"])} for p, e in part_entries(manifest).items()}


def check_sizes(fs, entry: dict) -> None:
    """A token file or index of another size than its manifest entry says: one line naming it."""
    itemsize = np.dtype(entry["dtype"]).itemsize
    expected = {entry["file"]: entry["tokens"] * itemsize, entry["index"]: (sum(entry["group_docs"]) + 1) * 8}
    for path, size in expected.items():
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise UserError(f"{path}: token file missing (re-run `webmill tokenizer encode`)")
        if info.size != size:
            raise UserError(
                f"{path}: token file is truncated or damaged ({info.size:,} bytes, the manifest says {size:,}; "
                "re-run `webmill tokenizer encode`)"
            )
    from webmill.shards.reader import verify_default

    if entry.get("sha256") and verify_default():  # WEBMILL_VERIFY_PARTS=1: the ids are the ones encoded
        digest = hashlib.sha256()
        with fs.open_input_stream(entry["file"]) as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise UserError(f"{entry['file']}: token file does not match its sha256 in the manifest (re-run `webmill tokenizer encode`)")


def read_slice(fs, s) -> tuple[np.ndarray, np.ndarray]:
    """(ids, document lengths) of one row group's ``TokenSlice``: two range reads."""
    with fs.open_input_file(s.index) as f:
        raw = f.read_at(8 * (s.docs + 1), 8 * s.first_doc)
    if len(raw) != 8 * (s.docs + 1):
        raise UserError(f"{s.index}: token index is truncated (re-run `webmill tokenizer encode`)")
    offsets = np.frombuffer(raw, dtype="<u8")
    # an index edited to decrease, or to point past the token file, would train on other documents'
    # ids (or ask for terabytes): offsets rise, and stay within the file the manifest sized
    if np.any(offsets[1:] < offsets[:-1]) or int(offsets[-1]) > s.file_tokens:
        raise UserError(
            f"{s.index}: token index is damaged (offsets decrease or pass the token file's end; re-run `webmill tokenizer encode`)"
        )
    offsets = offsets.astype(np.int64)
    dtype = np.dtype(s.dtype).newbyteorder("<")
    n = int(offsets[-1] - offsets[0])
    with fs.open_input_file(s.file) as f:
        raw = f.read_at(n * dtype.itemsize, int(offsets[0]) * dtype.itemsize) if n else b""
    if len(raw) != n * dtype.itemsize:
        raise UserError(f"{s.file}: token file is truncated (re-run `webmill tokenizer encode`)")
    return np.frombuffer(raw, dtype=dtype).astype(np.int64), np.diff(offsets)


def check_encoded_with(root, manifest_encoding: dict | None, tokenizer_shown: str, tok_json: bytes) -> None:
    """Refuse token files made by another tokenizer than the run's, naming both."""
    if not manifest_encoding:
        return
    mine = tokenizer_sha256(tok_json)
    if mine != manifest_encoding["tokenizer_sha256"]:
        theirs = root.display(manifest_encoding["tokenizer"])
        raise UserError(
            f"the shards were encoded with {theirs} (sha256 {manifest_encoding['tokenizer_sha256'][:12]}), "
            f"this run's tokenizer is {tokenizer_shown} (sha256 {mine[:12]}): "
            "re-run `webmill tokenizer encode` with the run's tokenizer, or train with the shards' own"
        )
