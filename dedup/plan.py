"""The index plan: which document index each input part's rows get, fixed once and kept.

A document's index is ``offset(part) + row``. Offsets are handed out by the driver, in
order, the first time a part is seen, and written to ``dedup/_index/_plan.json`` *before*
any part is signed, so they never depend on which signing task commits first: an
interrupted run, rerun, gives every document the index the uninterrupted run gave it.
The plan holds one entry per part (never per document): the driver's only state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from webmill.errors import UserError
from webmill.shards import CorpusRoot, DatasetReader, jsonfile, layout

PLAN = layout.DEDUP_PLAN


@dataclass(frozen=True)
class PlannedPart:
    unit: str  # "<dataset>/<part file>", the index unit
    dataset: str
    path: str  # the part's file name inside its dataset
    offset: int  # index of its first row
    rows: int
    ordinal: int  # position in the plan


class IndexPlan:
    def __init__(self, lsh: str, parts: list[PlannedPart]):
        self.lsh = lsh
        self.parts = parts
        self.by_unit = {p.unit: p for p in parts}

    @property
    def size(self) -> int:
        """Documents indexed (planned): one past the largest index."""
        return self.parts[-1].offset + self.parts[-1].rows if self.parts else 0

    @classmethod
    def load(cls, root: CorpusRoot, lsh: str) -> "IndexPlan":
        if not root.exists(PLAN):
            return cls(lsh, [])
        doc = jsonfile.read(root, PLAN, required={"lsh": str, "parts": list})
        if doc["lsh"] != lsh:
            raise UserError(
                f"{root.display('dedup/_index')}: the band index was built with other [dedup] "
                "ngram/bands/rows/seed; use those settings or a new root"
            )
        try:
            return cls(lsh, [PlannedPart(**p) for p in doc["parts"]])
        except TypeError:
            raise jsonfile.DamagedFile(f"{root.display(PLAN)}: damaged file (a part entry of another shape)") from None

    def extend(self, root: CorpusRoot, inputs: list[str]) -> list[PlannedPart]:
        """Add the inputs' parts not planned yet (in dataset, part order), save, and return
        every planned part of the inputs."""
        added = False
        mine = []
        for dataset in inputs:
            for part in DatasetReader(root, dataset).parts:
                unit = f"{dataset}/{part['path']}"
                if unit not in self.by_unit:
                    p = PlannedPart(unit, dataset, part["path"], self.size, int(part["rows"]), len(self.parts))
                    self.parts.append(p)
                    self.by_unit[unit] = p
                    added = True
                mine.append(self.by_unit[unit])
        if added:
            doc = {"lsh": self.lsh, "parts": [p.__dict__ for p in self.parts]}
            root.write_bytes_atomic(json.dumps(doc).encode(), PLAN)
        return mine

    def fingerprint(self) -> str:
        h = hashlib.sha1(self.lsh.encode())
        for p in self.parts:
            h.update(f"{p.unit}:{p.offset}:{p.rows};".encode())
        return h.hexdigest()[:16]

    def starts(self) -> np.ndarray:
        return np.array([p.offset for p in self.parts], dtype=np.int64)

    def existing_mask(self, inputs: set[str]) -> np.ndarray:
        """Per planned part: whether its dataset is published by an earlier run (not an input now)."""
        return np.array([p.dataset not in inputs for p in self.parts], dtype=bool)
