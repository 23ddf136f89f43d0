"""Stream Parquet shards into packed token rows, with exact resume.

Work units are row groups. For each epoch the units are put in an order drawn
from (seed, epoch) and dealt round-robin to S = world_size × workers streams:
stream ``rank * workers + w`` takes units ``s, s + S, s + 2S, …``, so every row
group is read by exactly one stream (no overlap, no gap). A rank's batches take
their rows from its ``workers`` streams in turn.

Packing rule: each document becomes ``<|bos|> + tokens``, cropped to
``max_doc_tokens``; a stream's documents are concatenated and cut into rows of
``seq_len + 1`` tokens (inputs = row[:-1], targets = row[1:]). A row may span
documents; the BOS tells the model where one starts. Nothing but the crop is
thrown away: the tail of an epoch continues into the next.

A stream's position is (epoch, unit, document, token offset), so the state of
the whole loader is a few integers per stream; ``load_state_dict`` re-reads
one row group and skips to the token, and the next batch is the one the
uninterrupted run would have produced.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from webmill.errors import UserError, first_line


@dataclass(frozen=True)
class TokenSlice:
    """Where one row group's token ids lie in its part's token file (``webmill.train.token_files``)."""

    file: str  # absolute path of the part's token file in ``fs``
    index: str  # absolute path of its document index (uint64 offsets into the token file)
    dtype: str  # "uint16" or "uint32"
    first_doc: int  # the group's first stored (non-empty) document, counted in the part
    docs: int  # non-empty documents in the group
    empty: int  # empty documents in the group (counted, not stored)
    file_tokens: int = 0  # tokens in the whole token file (its size, checked against the manifest)


@dataclass(frozen=True)
class Unit:
    path: str  # absolute path of the Parquet part in ``fs``
    group: int  # row group index
    rows: int
    tokens: TokenSlice | None = None  # the group's pre-tokenized ids, when the shard set was encoded


def list_units(fs, paths: list[str], encoded: dict | None = None) -> list[Unit]:
    """Every row group of every part, in a fixed order; refuses parts without a ``text`` column.
    ``encoded`` maps a part's path to its token file entry (``token_files.part_entries``): its
    units then read token ids instead of text, and a token file of the wrong size is refused."""
    if not paths:
        raise UserError("no shards to train on (the shard set has no parts)")
    units = []
    for path in sorted(paths):
        try:
            with fs.open_input_file(path) as f:
                md = pq.ParquetFile(f).metadata
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"{path}: cannot read shard ({first_line(e)})") from None
        if "text" not in md.schema.to_arrow_schema().names:
            raise UserError(f"{path}: shard has no text column")
        entry = (encoded or {}).get(path)
        slices = token_slices(fs, entry, md.num_row_groups) if entry else [None] * md.num_row_groups
        units.extend(Unit(path, g, md.row_group(g).num_rows, slices[g]) for g in range(md.num_row_groups))
    return units


def token_slices(fs, entry: dict, groups: int) -> list[TokenSlice]:
    """The row groups' slices of one part's token file, after checking both files' sizes."""
    from webmill.train.token_files import check_sizes

    check_sizes(fs, entry)
    if len(entry["group_docs"]) != groups:
        raise UserError(f"{entry['file']}: token index is for {len(entry['group_docs'])} row groups, the part has {groups}")
    out, first = [], 0
    for docs, empty in zip(entry["group_docs"], entry["group_empty"]):
        out.append(TokenSlice(entry["file"], entry["index"], entry["dtype"], first, docs, empty, int(entry["tokens"])))
        first += docs
    return out


def pack_documents(ids: np.ndarray, lens: np.ndarray, bos_id: int, max_doc_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The packing rule on one row group: every document as ``<|bos|> + tokens`` cropped to
    ``max_doc_tokens``, concatenated; returns (tokens, end offset of each document in them)."""
    out_lens = np.minimum(lens + 1, max_doc_tokens)
    ends = np.cumsum(out_lens)
    src_starts = np.cumsum(lens) - lens
    if len(lens) == 0:
        return np.zeros(0, dtype=np.int64), ends
    if (out_lens == lens + 1).all():  # nothing cropped: a BOS before every document
        return np.insert(ids.astype(np.int64), src_starts, bos_id), ends
    starts = ends - out_lens
    flat = np.empty(int(ends[-1]), dtype=np.int64)
    body = np.ones(len(flat), dtype=bool)
    body[starts] = False
    flat[starts] = bos_id
    where = np.flatnonzero(body)
    flat[where] = ids[where + np.repeat(src_starts - starts - 1, out_lens - 1)]
    return flat, ends


def in_val_split(doc_id: str, fraction: float) -> bool:
    h = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64 < fraction


class PackedLoader:
    """Iterate ``(B, seq_len + 1)`` int64 batches; ``state_dict()`` is the position after the last batch yielded."""

    def __init__(
        self,
        fs,
        units: list[Unit],
        tokenizer,
        *,
        seq_len: int,
        batch_rows: int,
        bos_id: int,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 1,
        seed: int = 0,
        max_doc_tokens: int | None = None,
        id_filter: tuple[str, float] | None = None,
        loop: bool = True,
        prefetch: int = 4,
    ):
        self.fs, self.units, self.tok = fs, units, tokenizer
        self.vocab = tokenizer.get_vocab_size()
        self.seq_len, self.batch_rows, self.bos_id = seq_len, batch_rows, bos_id
        self.rank, self.world_size, self.workers, self.seed = rank, world_size, workers, seed
        self.max_doc_tokens = max_doc_tokens or 1024 * seq_len
        self.id_filter = id_filter  # ("train" | "val", fraction): split by a hash of the doc id
        self.loop, self.prefetch = loop, prefetch
        n_streams = world_size * workers
        if len(units) < n_streams:
            raise UserError(
                f"only {len(units)} row group(s) for {n_streams} loader streams "
                f"({world_size} rank(s) × {workers} worker(s)); use fewer workers or smaller row groups"
            )
        self._state = {"streams": [{"epoch": 0, "unit": 0, "doc": 0, "tok": 0} for _ in range(workers)], "turn": 0}
        self.stats = {"docs": 0, "empty_docs": 0, "doc_tokens": 0, "cropped_tokens": 0, "rows": 0}
        self._thread = None

    @property
    def pretokenized(self) -> bool:
        """Whether every unit reads token files (nothing is tokenized while training)."""
        return not self.id_filter and all(u.tokens is not None for u in self.units)

    # state -----------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"streams": [dict(s) for s in self._state["streams"]], "turn": self._state["turn"], "layout": self._layout()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("layout") != self._layout():
            raise UserError(f"loader state is for a different layout ({state.get('layout')}; this run: {self._layout()})")
        self._state = {"streams": [dict(s) for s in state["streams"]], "turn": state["turn"]}

    def _layout(self) -> dict:
        return {
            "units": len(self.units),
            "rank": self.rank,
            "world_size": self.world_size,
            "workers": self.workers,
            "seq_len": self.seq_len,
            "batch_rows": self.batch_rows,
            "seed": self.seed,
        }

    # streams ---------------------------------------------------------------
    def _stream_units(self, stream: int, epoch: int) -> list[Unit]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.units))
        s = self.rank * self.workers + stream
        return [self.units[i] for i in order[s :: self.world_size * self.workers]]

    def _unit_ids(self, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
        """(token ids of the group's non-empty documents, one after another; their lengths):
        read from the token file when the set was encoded, else tokenized from the text."""
        if unit.tokens is not None and not self.id_filter:
            from webmill.train.token_files import read_slice

            self.stats["empty_docs"] += unit.tokens.empty
            ids, lens = read_slice(self.fs, unit.tokens)
            if ids.size and int(ids.max()) >= self.vocab:  # an id past the embedding table crashes the step
                raise UserError(
                    f"{unit.tokens.file}: token id {int(ids.max())} is past the tokenizer's vocabulary ({self.vocab:,}); "
                    "re-run `webmill tokenizer encode`"
                )
            return ids, lens
        with self.fs.open_input_file(unit.path) as f:
            cols = ["text", "id"] if self.id_filter else ["text"]
            table = pq.ParquetFile(f).read_row_group(unit.group, columns=cols)
        texts = table.column("text").to_pylist()
        if self.id_filter:
            split, fraction = self.id_filter
            ids = table.column("id").to_pylist()
            texts = [t for t, i in zip(texts, ids) if in_val_split(i, fraction) == (split == "val")]
        kept = [t for t in texts if t]
        self.stats["empty_docs"] += len(texts) - len(kept)
        encodings = self.tok.encode_batch(kept, add_special_tokens=False)
        lens = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(lens.sum()))
        return ids, lens

    def _packed(self, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
        ids, lens = self._unit_ids(unit)
        flat, ends = pack_documents(ids, lens, self.bos_id, self.max_doc_tokens)
        self.stats["docs"] += len(lens)
        self.stats["doc_tokens"] += int(lens.sum()) + len(lens)
        self.stats["cropped_tokens"] += int(lens.sum()) + len(lens) - len(flat)
        return flat, ends

    def _rows(self, stream: int, pos: dict):
        """Rows of one stream from ``pos`` on, each with the position after it."""
        need = self.seq_len + 1
        epoch, k, d, t = pos["epoch"], pos["unit"], pos["doc"], pos["tok"]
        pieces: list[np.ndarray] = []
        have = 0
        empty_epochs = 0
        while True:
            units = self._stream_units(stream, epoch)
            produced = False
            while k < len(units):
                flat, ends = self._packed(units[k])
                # the position (document d, token t) as an offset into the packed group
                off = int(ends[d - 1]) + t if 0 < d <= len(ends) else t if d == 0 else len(flat)
                off = min(off, len(flat))
                while off < len(flat):
                    take = min(need - have, len(flat) - off)
                    pieces.append(flat[off : off + take])
                    have += take
                    off += take
                    if have == need:
                        produced = True
                        doc = int(np.searchsorted(ends, off, side="left"))  # the document that row ended in
                        yield (
                            np.concatenate(pieces),
                            {"epoch": epoch, "unit": k, "doc": doc, "tok": off - (int(ends[doc - 1]) if doc else 0)},
                        )
                        pieces, have = [], 0
                k, d, t = k + 1, 0, 0
            if not self.loop:
                return
            epoch, k = epoch + 1, 0
            empty_epochs = 0 if produced else empty_epochs + 1
            if empty_epochs >= 2:
                raise UserError(f"loader stream {self.rank * self.workers + stream}: its shards hold no tokens for a {need}-token row")

    def _batches(self):
        streams = [self._rows(w, self._state["streams"][w]) for w in range(self.workers)]
        state = {"streams": [dict(s) for s in self._state["streams"]], "turn": self._state["turn"]}
        ended: set[int] = set()  # streams of a single pass (loop=False) that have run out
        while len(ended) < self.workers:
            rows = []
            # a single pass ends with a short batch of the rows left over (a validation split
            # smaller than a batch still gets a loss); an endless stream never ends
            while len(rows) < self.batch_rows and len(ended) < self.workers:
                w = state["turn"]
                state["turn"] = (w + 1) % self.workers
                if w in ended:
                    continue
                try:
                    row, pos = next(streams[w])
                except StopIteration:
                    ended.add(w)  # the other streams go on, so one pass reads every document once
                    continue
                rows.append(row)
                state["streams"][w] = pos
            if not rows:
                return
            self.stats["rows"] += len(rows)
            yield np.stack(rows), {"streams": [dict(s) for s in state["streams"]], "turn": state["turn"]}

    def __iter__(self):
        """Batches made ahead in a background thread (the Rust tokenizer runs outside the GIL)."""
        for batch, state in self.iter_states():
            self._state = state
            yield batch

    def set_position(self, state: dict) -> None:
        """Set the position to one ``iter_states`` gave (a consumer that runs ahead, such as the
        trainer's device feed, sets the position of the batch it last handed on)."""
        self._state = state

    def iter_states(self, *, pin_memory: bool = False):
        """(batch, position after it) pairs, made ahead in a background thread; ``pin_memory``
        pins each batch there, so that the copy to a GPU can run asynchronously."""
        import torch

        def items():
            for batch, state in self._batches():
                item = torch.from_numpy(batch)
                yield (item.pin_memory() if pin_memory else item), state

        return made_ahead(items, self.prefetch, name="webmill-loader")


def made_ahead(items, prefetch: int, *, name: str):
    """Iterate ``items()`` run in a background thread, ``prefetch`` items ahead. Closing the
    iterator (or dropping it) stops the thread and waits for it: no thread is left inside
    numpy or torch when the process exits (a daemon thread there aborts the interpreter's
    exit with "terminate called without an active exception")."""
    q: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items():
                if not offer(item):
                    return
            offer(done)
        except BaseException as e:  # handed to the consumer
            offer(e)

    thread = threading.Thread(target=produce, daemon=True, name=name)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)
