"""A byte-level BPE tokenizer trained with HF ``tokenizers`` on a bounded sample of the shards."""

from __future__ import annotations

import json
import os
from typing import Iterator

from webmill.errors import UserError, first_line
from webmill.shards import layout

BOS = "<|bos|>"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIALS = [BOS, EOS, PAD]


def sample_texts(batches: Iterator, max_chars: int, doc_cap: int) -> Iterator[str]:
    """Documents cropped to ``doc_cap`` characters until ``max_chars`` are given."""
    given = 0
    for batch in batches:
        for text in batch.column("text").to_pylist():
            if not text:
                continue
            text = text[:doc_cap]
            yield text
            given += len(text)
            if given >= max_chars:
                return


def train_bpe(texts: Iterator[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def save(tok, folder: str) -> None:
    """``tokenizer.json`` plus the config ``transformers.AutoTokenizer`` reads (PreTrainedTokenizerFast)."""
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "model_max_length": 1 << 30,
        "clean_up_tokenization_spaces": False,
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}, f, indent=1)


def load(path: str):
    """A ``tokenizers.Tokenizer`` from a tokenizer.json or the folder holding one."""
    from tokenizers import Tokenizer

    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    if not os.path.exists(path):
        raise UserError(f"{path}: no tokenizer (run `webmill tokenizer train`)")
    try:
        return Tokenizer.from_file(path)
    except Exception as e:
        raise UserError(f"{path}: not a tokenizer file ({first_line(e)})") from None


def load_from_root(root, folder: str):
    """The tokenizer saved in a folder of the corpus root (on any filesystem)."""
    shown = root.display(folder, "tokenizer.json")
    if not root.exists(folder, "tokenizer.json"):
        raise UserError(f"{shown}: no tokenizer (run `webmill tokenizer train`)")
    return from_bytes(root.read_bytes(folder, "tokenizer.json"), shown)


def special_ids(tok) -> dict[str, int]:
    ids = {name: tok.token_to_id(t) for name, t in (("bos", BOS), ("eos", EOS), ("pad", PAD))}
    if ids["bos"] is None:
        raise UserError(f"tokenizer has no {BOS} token")
    return ids


def chars_per_token(tok, texts: list[str]) -> float:
    if not texts:
        return 0.0
    n_tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    return sum(map(len, texts)) / max(n_tokens, 1)


def write_info(folder: str, info: dict) -> None:
    with open(os.path.join(folder, "tokenizer_info.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)


# the tokenizer of a shard set --------------------------------------------------
def tokenizer_folder(root, shards: str) -> tuple[str, ...]:
    """Where a shard set's (or a document dataset's) tokenizer lives, relative to the root."""
    if root.exists(layout.shard_manifest(shards)):
        return (layout.tokenizer(shards),)
    return (shards.strip("/"), "_tokenizer")


def shard_set_lock(root, shards: str):
    """The shard set's run lock (``webmill.locks``), the one ``webmill shard`` takes: the tokenizer
    stage writes the set's tokenizer, token files and manifest, and must not while the set is
    rewritten (or by two processes at once). A document dataset path (``dedup/x/docs``) is only read."""
    import contextlib

    from webmill.locks import run_lock

    if "/" in shards.strip("/"):
        return contextlib.nullcontext()
    return run_lock(root, layout.SHARDS, shards)


def train_for_shards(
    root, shards: str | None, *, vocab_size: int, max_chars: int, doc_cap: int, heldout_docs: int = 2000, on_progress=None, ray_fn=None
) -> dict:
    """Train on the shard set's train split, measure chars/token on its held-out split, count tokens per shard."""
    from webmill.shards.training import newest_shard_set

    shards = shards or newest_shard_set(root)
    with shard_set_lock(root, shards):
        return _train_for_shards(root, shards, vocab_size, max_chars, doc_cap, heldout_docs, on_progress, ray_fn)


def _train_for_shards(root, shards: str, vocab_size: int, max_chars: int, doc_cap: int, heldout_docs: int, on_progress, ray_fn) -> dict:
    import tempfile

    from webmill.shards.reader import DatasetReader
    from webmill.shards.training import read_manifest, write_manifest

    folder = tokenizer_folder(root, shards)
    is_set = root.exists(layout.shard_manifest(shards))  # a shard set, not a document dataset
    train_ds = layout.shard_split(shards, "train") if is_set else shards
    reader = DatasetReader(root, train_ds)
    if not reader.parts:
        raise UserError(f"no shards at {root.display(train_ds)}: nothing to train a tokenizer on")
    if "text" not in reader.open_part(reader.parts[0]).schema_arrow.names:
        raise UserError(f"{root.display(train_ds)}: shard has no text column")
    tok = train_bpe(sample_texts(reader.iter_batches(columns=["text"]), max_chars, doc_cap), vocab_size)
    heldout_reader = DatasetReader(root, layout.shard_split(shards, "val")) if is_set else reader
    heldout = []
    for batch in heldout_reader.iter_batches(columns=["text"]):
        heldout.extend(t for t in batch.column("text").to_pylist() if t)
        if len(heldout) >= heldout_docs:
            break
    info = {
        "vocab_size": tok.get_vocab_size(),
        "trained_chars": max_chars,
        "doc_cap": doc_cap,
        "heldout_docs": len(heldout[:heldout_docs]),
        "heldout": "val split" if is_set else "train sample",
        "chars_per_token": round(chars_per_token(tok, heldout[:heldout_docs]), 4),
        "specials": SPECIALS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        save(tok, tmp)
        write_info(tmp, info)
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                root.write_bytes_atomic(f.read(), *folder, name)
    if is_set:
        manifest = read_manifest(root, shards)
        manifest["tokenizer"] = {**info, "path": "/".join(folder)}
        write_manifest(root, shards, manifest)
        info["tokens"] = _encode_shard_set(root, shards, on_progress=on_progress, ray_fn=ray_fn)["tokens"]
    return {**info, "shards": shards, "path": root.display(*folder)}


def encode_shard_set(root, shards: str, *, on_progress=None, ray_fn=None) -> dict:
    """Encode every shard of a set with its tokenizer (one Ray task per shard,
    ``webmill.train.token_files``): token files and indexes, each shard's exact token count,
    and the manifest's ``encoding``. The manifest, written last, commits them."""
    with shard_set_lock(root, shards):
        return _encode_shard_set(root, shards, on_progress=on_progress, ray_fn=ray_fn)


def _encode_shard_set(root, shards: str, *, on_progress=None, ray_fn=None) -> dict:
    from webmill.runtime import ensure_ray, run_tasks
    from webmill.shards.training import read_manifest, write_manifest
    from webmill.train import token_files

    manifest = read_manifest(root, shards)
    folder = layout.tokenizer(shards)
    if not root.exists(folder, "tokenizer.json"):
        raise UserError(f"{root.display(folder)}: no tokenizer (run `webmill tokenizer train`)")
    tok_json = root.read_bytes(folder, "tokenizer.json")
    sha = token_files.tokenizer_sha256(tok_json)
    vocab = _vocab_size(tok_json, root.display(folder, "tokenizer.json"))
    paths = [shard["path"] for sp in manifest["splits"].values() for shard in sp["shards"]]
    encoded = {}
    if paths:
        (ray_fn or ensure_ray)()
        for result in run_tasks(token_files.encode_part, [(root, shards, p, folder, sha) for p in paths]):
            encoded[result["path"]] = result
            if on_progress:
                on_progress(result["path"])
    for sp in manifest["splits"].values():
        for shard in sp["shards"]:
            shard.update({k: v for k, v in encoded[shard["path"]].items() if k != "path"})
        sp["tokens"] = sum(s["tokens"] for s in sp["shards"])
    manifest["encoding"] = {
        "format": token_files.FORMAT,
        "dtype": token_files.dtype_for(vocab),
        "tokenizer": folder,
        "tokenizer_sha256": sha,
    }
    write_manifest(root, shards, manifest)
    tokens = {split: sp["tokens"] for split, sp in manifest["splits"].items()}
    return {"shards": shards, "tokens": tokens, "tokenizer_shown": root.display(folder), **manifest["encoding"]}


def _vocab_size(tok_json: bytes, shown: str) -> int:
    return from_bytes(tok_json, shown).get_vocab_size()


def from_bytes(tok_json: bytes, shown: str):
    """A tokenizer.json read from the root: damaged JSON is one line (``webmill.shards.jsonfile``),
    and so is JSON that is not a tokenizer."""
    from tokenizers import Tokenizer

    from webmill.shards.jsonfile import parse

    parse(tok_json, shown)
    try:
        return Tokenizer.from_str(tok_json.decode())
    except Exception as e:  # the Rust side raises plain Exceptions
        raise UserError(f"{shown}: not a tokenizer file ({first_line(e)})") from None
