"""The atomic, rolling Parquet writer.

    writer = DatasetWriter(root, "clean/run-1", schema)
    for warc in inputs:
        if writer.is_committed(warc, fingerprint):
            continue                          # a rerun skips committed work
        with writer.unit(warc, fingerprint) as out:
            for batch in batches:
                out.write(batch)              # rolled into parts at a size target
            out.stats["kept"] = n
    writer.finalize()                         # manifest.json

Each part is written under ``_tmp/`` and renamed into place when complete; the
unit's commit record is written last. A unit killed half-way leaves no commit
record, so its parts are invisible to readers and rewritten by the rerun.
"""

from __future__ import annotations

import hashlib
import posixpath
import uuid
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from webmill.shards.manifest import Manifest, UnitRecord, unit_slug
from webmill.shards.root import CorpusRoot, fsync_file

TMP = "_tmp"
MiB = 1 << 20


class DatasetWriter:
    def __init__(
        self,
        root: CorpusRoot,
        dataset: str,
        schema: pa.Schema,
        *,
        target_bytes: int = 256 * MiB,
        target_rows: int | None = None,
        row_group_rows: int = 1024,
        compression: str = "zstd",
        checksum: bool = True,
    ):
        self.root = root
        self.dataset = dataset.strip("/")
        self.schema = schema
        self.target_bytes = target_bytes
        self.target_rows = target_rows
        self.row_group_rows = row_group_rows
        self.compression = compression
        self.checksum = checksum
        root.makedirs(self.dataset)

    def manifest(self) -> Manifest:
        return Manifest.load(self.root, self.dataset)

    def is_committed(self, unit: str, fingerprint: str | None = None) -> bool:
        """One read: the unit's own commit record."""
        rec = Manifest.load_unit(self.root, self.dataset, unit)
        return rec is not None and (fingerprint is None or rec.fingerprint == fingerprint)

    def committed_units(self) -> set[str]:
        return set(self.manifest().units)

    def unit(self, unit: str, fingerprint: str | None = None) -> "UnitWriter":
        return UnitWriter(self, unit, fingerprint)

    def write_unit(
        self, unit: str, batches: Iterable[pa.RecordBatch | pa.Table], fingerprint: str | None = None, stats: dict | None = None
    ) -> UnitRecord | None:
        """Write and commit one unit; skip it (returning None) if already committed."""
        if self.is_committed(unit, fingerprint):
            return None
        with self.unit(unit, fingerprint) as out:
            for b in batches:
                out.write(b)
            out.stats.update(stats or {})
        return out.record

    def finalize(self, **extra) -> dict:
        """Write ``_manifest.json`` from every commit record (O(units) reads) and remove the
        temporary files that killed attempts of now-committed units left in ``_tmp/``."""
        doc = Manifest.load(self.root, self.dataset, full=True).write(**extra)
        slugs = {unit_slug(u) for u in doc["units"]}
        for name in self.root.listdir(self.dataset, TMP):
            # "<slug>-<k>.<random>.parquet"
            if name.endswith(".parquet") and name[:-8].rsplit(".", 1)[0].rsplit("-", 1)[0] in slugs:
                self.root.delete(self.dataset, TMP, name)
        return doc


class UnitWriter:
    """Writes one unit's rows into rolled parts; commits on a clean exit."""

    def __init__(self, ds: DatasetWriter, unit: str, fingerprint: str | None):
        self.ds = ds
        self.unit = unit
        self.fingerprint = fingerprint
        self.slug = unit_slug(unit)
        self.stats: dict = {}
        self.parts: list[dict] = []
        self.record: UnitRecord | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink = None
        self._tmp_path: str | None = None
        self._part_rows = 0

    # context --------------------------------------------------------------
    def __enter__(self) -> "UnitWriter":
        root, ds = self.ds.root, self.ds.dataset
        old = Manifest.load_unit(root, ds, self.unit)
        if old is not None:
            Manifest.uncommit_unit(root, ds, self.unit)  # rewritten with a new fingerprint
            for p in old.parts:
                root.delete(ds, p["path"])
        self._remove_stale_parts()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # writing ---------------------------------------------------------------
    def write(self, data: pa.RecordBatch | pa.Table | list[dict]) -> None:
        if isinstance(data, list):
            data = pa.Table.from_pylist(data, schema=self.ds.schema)
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if data.schema != self.ds.schema:
            data = data.select(self.ds.schema.names).cast(self.ds.schema)
        batches = data.to_batches()
        for b in batches:
            if b.num_rows:
                self._pending.append(b)
                self._pending_rows += b.num_rows
        while self._pending_rows >= self.ds.row_group_rows:
            self._flush_row_group(self.ds.row_group_rows)

    def _flush_row_group(self, nrows: int) -> None:
        table = pa.Table.from_batches(self._pending, schema=self.ds.schema)
        group, rest = table.slice(0, nrows), table.slice(nrows)
        self._pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows
        if self._writer is None:
            self._open_part()
        self._writer.write_table(group, row_group_size=nrows)
        self._part_rows += group.num_rows
        ds = self.ds
        if self._sink.tell() >= ds.target_bytes or (ds.target_rows and self._part_rows >= ds.target_rows):
            self._close_part()

    def _open_part(self) -> None:
        root, ds = self.ds.root, self.ds
        self._tmp_path = root.path(ds.dataset, TMP, f"{self.slug}-{len(self.parts):05d}.{uuid.uuid4().hex[:8]}.parquet")
        root.fs.create_dir(posixpath.dirname(self._tmp_path), recursive=True)
        self._sink = _HashingSink(root.fs.open_output_stream(self._tmp_path, compression=None), ds.checksum)
        self._writer = pq.ParquetWriter(pa.PythonFile(self._sink, mode="w"), ds.schema, compression=ds.compression, write_statistics=True)
        self._part_rows = 0

    def _close_part(self) -> None:
        root, ds = self.ds.root, self.ds
        self._writer.close()
        self._sink.close()
        name = f"part-{self.slug}-{len(self.parts):05d}.parquet"
        final = root.path(ds.dataset, name)
        if root.is_local:  # the part's bytes reach the disk before its commit record can
            fsync_file(self._tmp_path)
        root.fs.move(self._tmp_path, final)
        self.parts.append({"path": name, "rows": self._part_rows, "bytes": self._sink.n, "sha256": self._sink.hexdigest()})
        self._writer = self._sink = self._tmp_path = None

    def commit(self) -> UnitRecord:
        if self._pending_rows:
            self._flush_row_group(self._pending_rows)
        if self._writer is not None:
            self._close_part()
        self.record = UnitRecord(unit=self.unit, parts=self.parts, fingerprint=self.fingerprint, stats=self.stats)
        Manifest.commit_unit(self.ds.root, self.ds.dataset, self.record)
        return self.record

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
                self._sink.close()
            except Exception:
                pass
            self.ds.root.delete(posixpath.relpath(self._tmp_path, self.ds.root.base))
        self._writer = None

    def _remove_stale_parts(self) -> None:
        """Parts a killed attempt renamed into place without committing. Parts are renamed in
        order, so they are ``part-<slug>-00000``, ``-00001``, … up to the first missing one:
        found by name, without listing the dataset (which holds every unit's parts)."""
        root, ds = self.ds.root, self.ds.dataset
        k = 0
        while root.exists(ds, f"part-{self.slug}-{k:05d}.parquet"):
            root.delete(ds, f"part-{self.slug}-{k:05d}.parquet")
            k += 1


class _HashingSink:
    """A write-only file that passes bytes on to a pyarrow stream and hashes them as they go,
    so a part's sha256 needs no second read."""

    def __init__(self, sink, digest: bool):
        self.sink = sink
        self.h = hashlib.sha256() if digest else None
        self.n = 0
        self.closed = False

    def write(self, data) -> int:
        if self.h is not None:
            self.h.update(data)
        self.sink.write(data)
        self.n += len(data)
        return len(data)

    def tell(self) -> int:
        return self.n

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self.sink.close()
            self.closed = True

    def hexdigest(self) -> str | None:
        return self.h.hexdigest() if self.h is not None else None
