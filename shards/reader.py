"""Stream a committed dataset part by part, row group by row group."""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from webmill.errors import CorruptPartError, UserError, first_line
from webmill.shards.manifest import Manifest
from webmill.shards.root import CorpusRoot


def verify_default() -> bool:
    """Whether reads check each part's sha256 against its commit record (``WEBMILL_VERIFY_PARTS=1``;
    on in the tests): a part rewritten after its commit, by a second writer or a bad disk, is
    then refused instead of read."""
    return os.environ.get("WEBMILL_VERIFY_PARTS", "").lower() in ("1", "true", "yes")


def open_part(root: CorpusRoot, dataset: str, part: dict, *, verify: bool | None = None) -> pq.ParquetFile:
    """One committed part (``{"path": name, "sha256": ...}``), opened without reading the
    dataset's commit records: for tasks that were handed their part."""
    verify = verify_default() if verify is None else verify
    path = root.path(dataset, part["path"])
    shown = root.display(dataset, part["path"])
    try:
        f = root.fs.open_input_file(path)
    except (OSError, pa.ArrowException) as e:
        raise CorruptPartError(f"{shown}: cannot open committed part ({first_line(e)})") from None
    if verify and part.get("sha256"):
        h = hashlib.sha256()
        while chunk := f.read(8 << 20):
            h.update(chunk)
        if h.hexdigest() != part["sha256"]:
            raise CorruptPartError(f"{shown}: checksum mismatch (file changed or corrupt)")
        f.seek(0)
    try:
        return pq.ParquetFile(f)
    except (OSError, pa.ArrowException) as e:
        raise CorruptPartError(f"{shown}: corrupt Parquet part ({first_line(e)})") from None


def read_rows(root: CorpusRoot, dataset: str, path: str, rows, columns: list[str] | None = None) -> pa.Table:
    """The rows at sorted positions ``rows`` of one committed part, reading only the row groups
    that hold them."""
    import numpy as np

    pf = open_part(root, dataset, {"path": path})
    bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return pf.schema_arrow.empty_table() if columns is None else pf.schema_arrow.empty_table().select(columns)
    group_of = np.searchsorted(bounds, rows, side="right") - 1
    groups = np.unique(group_of)
    sizes = bounds[groups + 1] - bounds[groups]
    first_local = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = first_local[np.searchsorted(groups, group_of)] + rows - bounds[group_of]
    try:
        table = pf.read_row_groups(groups.tolist(), columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise CorruptPartError(f"{root.display(dataset, path)}: corrupt row group ({first_line(e)})") from None
    return table.take(pa.array(pos))


class DatasetReader:
    def __init__(self, root: CorpusRoot, dataset: str, *, verify: bool | None = None):
        self.root = root
        self.dataset = dataset.strip("/")
        self.verify = verify
        self.manifest = Manifest.load(root, self.dataset)
        if not self.manifest.units and not root.exists(self.dataset):
            raise UserError(f"dataset {root.display(self.dataset)}: does not exist")

    @property
    def parts(self) -> list[dict]:
        return self.manifest.parts

    @property
    def num_rows(self) -> int:
        return self.manifest.rows

    def open_part(self, part: dict) -> pq.ParquetFile:
        return open_part(self.root, self.dataset, part, verify=self.verify)

    def iter_batches(self, columns: list[str] | None = None, parts: list[dict] | None = None) -> Iterator[pa.RecordBatch]:
        """One record batch per row group: memory is bounded by the largest row group."""
        for part in parts if parts is not None else self.parts:
            pf = self.open_part(part)
            shown = self.root.display(self.dataset, part["path"])
            for i in range(pf.num_row_groups):
                try:
                    table = pf.read_row_group(i, columns=columns)
                except (OSError, pa.ArrowException) as e:
                    raise CorruptPartError(f"{shown}: corrupt row group {i} ({first_line(e)})") from None
                yield from table.to_batches()

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        batches = list(self.iter_batches(columns))
        if not batches:
            schema = self.open_part(self.parts[0]).schema_arrow if self.parts else None
            return pa.table({}) if schema is None else schema.empty_table()
        return pa.Table.from_batches(batches)

    def paths(self) -> list[str]:
        """Absolute paths of the committed parts (for DuckDB, Ray Data, HF datasets)."""
        return [self.root.path(self.dataset, p["path"]) for p in self.parts]
