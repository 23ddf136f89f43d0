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
import queue
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from webmill.errors import UserError, first_line


@dataclass(frozen=True)
class Unit:
    path: str  # absolute path of the Parquet part in ``fs``
    group: int  # row group index
    rows: int


def list_units(fs, paths: list[str]) -> list[Unit]:
    """Every row group of every part, in a fixed order; refuses parts without a ``text`` column."""
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
        units.extend(Unit(path, g, md.row_group(g).num_rows) for g in range(md.num_row_groups))
    return units


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

    def _documents(self, unit: Unit) -> list[list[int]]:
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
        out = []
        for enc in self.tok.encode_batch(kept, add_special_tokens=False):
            ids = [self.bos_id] + enc.ids
            self.stats["doc_tokens"] += len(ids)
            if len(ids) > self.max_doc_tokens:
                self.stats["cropped_tokens"] += len(ids) - self.max_doc_tokens
                ids = ids[: self.max_doc_tokens]
            out.append(ids)
        self.stats["docs"] += len(out)
        return out

    def _rows(self, stream: int, pos: dict):
        """Rows of one stream from ``pos`` on, each with the position after it."""
        need = self.seq_len + 1
        epoch, k, d, t = pos["epoch"], pos["unit"], pos["doc"], pos["tok"]
        row: list[int] = []
        empty_epochs = 0
        while True:
            units = self._stream_units(stream, epoch)
            produced = False
            while k < len(units):
                docs = self._documents(units[k])
                while d < len(docs):
                    doc = docs[d]
                    while t < len(doc):
                        take = min(need - len(row), len(doc) - t)
                        row.extend(doc[t : t + take])
                        t += take
                        if len(row) == need:
                            produced = True
                            yield row, {"epoch": epoch, "unit": k, "doc": d, "tok": t}
                            row = []
                    d, t = d + 1, 0
                k, d = k + 1, 0
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
            yield np.asarray(rows, dtype=np.int64), {"streams": [dict(s) for s in state["streams"]], "turn": state["turn"]}

    def __iter__(self):
        """Batches made ahead in a background thread (the Rust tokenizer runs outside the GIL)."""
        import torch

        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def produce():
            try:
                for item in self._batches():
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as e:  # handed to the consumer
                q.put(e)

        thread = threading.Thread(target=produce, daemon=True, name="webmill-loader")
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch, state = item
                self._state = state
                yield torch.from_numpy(batch)
        finally:
            stop.set()
