"""Stream a committed dataset part by part, row group by row group."""
from __future__ import annotations

import hashlib
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from webmill.errors import CorruptPartError, UserError, first_line
from webmill.shards.manifest import Manifest
from webmill.shards.root import CorpusRoot


class DatasetReader:
    def __init__(self, root: CorpusRoot, dataset: str, *, verify: bool = False):
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
        path = self.root.path(self.dataset, part["path"])
        shown = self.root.display(self.dataset, part["path"])
        try:
            f = self.root.fs.open_input_file(path)
        except (OSError, pa.ArrowException) as e:
            raise CorruptPartError(f"{shown}: cannot open committed part ({first_line(e)})") from None
        if self.verify and part.get("sha256"):
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
