"""Shuffles whose rows travel through the root; Ray Data moves only pointers to them.

A map task writes the rows it keyed as one file of Arrow IPC streams, one stream per
partition, back to back, and returns a pointer (partition, file, offset, length) per
stream. Ray Data groups the pointers by partition; the reduce task reads its byte
ranges and nothing else. Carried through Ray Data's object store instead, every row of a
shuffle is resident at once on the nodes (map outputs, then reduce inputs), so on one
node a worker's memory grew with the corpus; through the root a task holds its own
partition and the object store only pointers, 40 bytes per (map task, partition).

    <folder>/<name>.arrows     one map task's streams, sorted by partition
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa

from webmill.shards import CorpusRoot

POINTER_SCHEMA = pa.schema([("p", pa.int64()), ("file", pa.string()), ("offset", pa.int64()), ("length", pa.int64())])


def write_pieces(root: CorpusRoot, folder: str, table: pa.Table, key: str = "p", name: str | None = None) -> pa.Table:
    """Write ``table``'s rows grouped by ``key`` (an integer column) to one file under
    ``folder``; return a pointer per key. ``name`` (default: a fresh one) names the file,
    written atomically, so a retried task never leaves half a file behind a pointer."""
    if not table.num_rows:
        return POINTER_SCHEMA.empty_table()
    keys = table.column(key).to_numpy()
    order = np.argsort(keys, kind="stable")
    table, keys = table.take(pa.array(order)), keys[order]
    firsts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.append(firsts[1:], len(keys))
    name = name or uuid.uuid4().hex
    sink = pa.BufferOutputStream()
    offsets, lengths = [], []
    for lo, hi in zip(firsts.tolist(), ends.tolist()):
        start = sink.tell()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table.slice(lo, hi - lo))
        offsets.append(start)
        lengths.append(sink.tell() - start)
    root.write_bytes_atomic(sink.getvalue().to_pybytes(), folder, f"{name}.arrows")
    return pa.table(
        {
            "p": pa.array(keys[firsts], pa.int64()),
            "file": pa.array([name] * len(firsts), pa.string()),
            "offset": pa.array(offsets, pa.int64()),
            "length": pa.array(lengths, pa.int64()),
        },
        schema=POINTER_SCHEMA,
    )


def read_pieces(root: CorpusRoot, folder: str, pointers: pa.Table, schema: pa.Schema | None = None) -> pa.Table:
    """The rows some pointers name, each read as one byte range of its file."""
    tables = []
    for name, offset, length in zip(*(pointers.column(c).to_pylist() for c in ("file", "offset", "length"))):
        with root.fs.open_input_file(root.path(folder, f"{name}.arrows")) as f:
            buf = f.read_at(length, offset)
        tables.append(pa.ipc.open_stream(buf).read_all())
    if not tables:
        if schema is None:
            raise ValueError("read_pieces: no pointers and no schema")
        return schema.empty_table()
    return pa.concat_tables(tables)


def reduce_pieces(pointers: pa.Table, *, root: CorpusRoot, folder: str, fn, kwargs: dict) -> pa.Table:
    """The reduce side of a shuffle through the root: ``fn`` on one partition's rows."""
    return fn(read_pieces(root, folder, pointers), **kwargs)
