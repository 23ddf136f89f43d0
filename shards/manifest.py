"""Commit records and the dataset manifest.

A dataset is a folder of Parquet parts. Work is committed per *unit* (one input
file, one crawl worker, one bucket): when all parts of a unit are renamed into
place, a commit record ``_commits/<unit>.json`` is written atomically. Commit
records are the source of truth; ``_manifest.json`` is their consolidated view
(parts, rows, bytes, sha256, fingerprints, summed stats), rewritten atomically
by ``Manifest.write``. Parts without a commit record are invisible to readers.

Costs, so that a dataset of 10,000 units on an object store stays cheap: checking or
starting a unit reads that unit's record only (``load_unit``); ``load`` lists
``_commits/`` once and reads only the records that ``_manifest.json`` does not already
hold (written after it, or within ``FRESH_SECONDS`` of it); ``load(full=True)``, which
``write`` uses, reads every record once: O(U) for U units.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from webmill.errors import CorruptPartError, UserError
from webmill.names import check_dataset_path
from webmill.shards import jsonfile
from webmill.shards.jsonfile import PARSE_ERRORS
from webmill.shards.root import CorpusRoot

COMMITS = "_commits"
MANIFEST = "_manifest.json"  # "_" so pyarrow, Spark and HF datasets skip it when reading the folder
# a commit record whose file is this close to the manifest's (same clock: the store's) is
# read again, since it may have been written while the manifest was being built
FRESH_SECONDS = 120.0


def is_dataset(root: CorpusRoot, dataset: str) -> bool:
    """Whether ``dataset`` has commit records (a dataset the shard store wrote)."""
    return root.exists(dataset, COMMITS)


def run_datasets(root: CorpusRoot, stage: str, name: str) -> list[str]:
    """``<stage>/<run>/<name>`` for every run of a stage that committed that dataset, in run order."""
    return [
        f"{stage}/{run}/{name}"
        for run in sorted(root.listdir(stage))
        if not run.startswith((".", "_")) and is_dataset(root, f"{stage}/{run}/{name}")
    ]


def unit_slug(unit: str) -> str:
    """A file-name-safe, unique name for a unit."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", unit)[-48:].strip("._") or "unit"
    return f"{clean}-{hashlib.sha1(unit.encode()).hexdigest()[:10]}"


def merge_stats(into: dict, add: dict) -> dict:
    """Sum numbers, merge nested dicts, keep the last value of anything else."""
    for k, v in add.items():
        if isinstance(v, bool):
            into[k] = v
        elif isinstance(v, (int, float)):
            into[k] = into.get(k, 0) + v
        elif isinstance(v, dict):
            into[k] = merge_stats(dict(into.get(k) or {}), v)
        else:
            into[k] = v
    return into


@dataclass
class UnitRecord:
    unit: str
    parts: list[dict]
    fingerprint: str | None = None
    stats: dict = field(default_factory=dict)
    committed_at: float = 0.0

    @property
    def rows(self) -> int:
        return sum(p["rows"] for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p["bytes"] for p in self.parts)


class Manifest:
    """The committed state of one dataset under a corpus root."""

    def __init__(self, root: CorpusRoot, dataset: str, units: dict[str, UnitRecord], *, full: bool = False):
        self.root = root
        self.dataset = dataset
        self.units = units
        self.full = full  # every record read from its own file

    @classmethod
    def load(cls, root: CorpusRoot, dataset: str, *, full: bool = False) -> "Manifest":
        """The committed units: one listing of ``_commits/``; records read only where the
        consolidated manifest does not hold them (all of them with ``full``)."""
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(root.path(dataset, COMMITS), allow_not_found=True, recursive=False)
        infos = {i.base_name: i for i in root.fs.get_file_info(sel) if i.base_name.endswith(".json") and not i.base_name.startswith(".")}
        known: dict[str, dict] = {}
        if not full and infos:
            mi = root.fs.get_file_info(root.path(dataset, MANIFEST))
            if mi.type == pafs.FileType.File and mi.mtime is not None:
                try:
                    doc = json.loads(root.read_bytes(dataset, MANIFEST))
                except PARSE_ERRORS:
                    doc = {}
                if not isinstance(doc, dict) or not isinstance(doc.get("records") or {}, dict):
                    doc = {}  # the consolidated manifest is only a cache of the commit records, read again below
                cutoff = mi.mtime.timestamp() - FRESH_SECONDS
                for name, rec in (doc.get("records") or {}).items():
                    info = infos.get(name)
                    if info is not None and info.mtime is not None and info.mtime.timestamp() < cutoff:
                        known[name] = rec
        units = {}
        for name in sorted(infos):
            raw = known.get(name)
            rec = cls._parse(root, dataset, name, raw if raw is not None else root.read_bytes(dataset, COMMITS, name))
            units[rec.unit] = rec
        return cls(root, dataset, units, full=full or not known)

    @staticmethod
    def _parse(root: CorpusRoot, dataset: str, name: str, raw) -> UnitRecord:
        try:
            rec = UnitRecord(**(raw if isinstance(raw, dict) else json.loads(raw)))
            for p in rec.parts:  # a part path is joined to the root, deleted and read: never outside the dataset
                check_dataset_path(p["path"], "part")
            return rec
        except (*PARSE_ERRORS, TypeError, KeyError, UserError) as e:
            raise CorruptPartError(f"{root.display(dataset, COMMITS, name)}: corrupt commit record ({e})") from None

    @classmethod
    def load_unit(cls, root: CorpusRoot, dataset: str, unit: str) -> UnitRecord | None:
        """One unit's commit record (one read), or None where the unit is not committed."""
        name = unit_slug(unit) + ".json"
        try:
            raw = root.read_bytes(dataset, COMMITS, name)
        except OSError:
            if not root.exists(dataset, COMMITS, name):  # object stores raise plain OSError for a missing key
                return None
            raise
        rec = cls._parse(root, dataset, name, raw)
        return rec if rec.unit == unit else None

    @staticmethod
    def commit_unit(root: CorpusRoot, dataset: str, record: UnitRecord) -> None:
        record.committed_at = record.committed_at or time.time()
        data = json.dumps(record.__dict__, sort_keys=True).encode()
        root.write_bytes_atomic(data, dataset, COMMITS, unit_slug(record.unit) + ".json")

    @staticmethod
    def uncommit_unit(root: CorpusRoot, dataset: str, unit: str) -> None:
        root.delete(dataset, COMMITS, unit_slug(unit) + ".json")

    # views ---------------------------------------------------------------
    @property
    def parts(self) -> list[dict]:
        return sorted((p for u in self.units.values() for p in u.parts), key=lambda p: p["path"])

    @property
    def rows(self) -> int:
        return sum(u.rows for u in self.units.values())

    @property
    def bytes(self) -> int:
        return sum(u.bytes for u in self.units.values())

    @property
    def stats(self) -> dict:
        out: dict = {}
        for u in sorted(self.units.values(), key=lambda u: u.unit):
            merge_stats(out, u.stats)
        return out

    def to_dict(self, **extra) -> dict:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "bytes": self.bytes,
            "parts": self.parts,
            "units": {
                u.unit: {"fingerprint": u.fingerprint, "rows": u.rows, "parts": len(u.parts)}
                for u in sorted(self.units.values(), key=lambda u: u.unit)
            },
            "stats": self.stats,
            # the full records, so that a later ``load`` reads only the records written since
            "records": {unit_slug(u.unit) + ".json": u.__dict__ for u in self.units.values()},
            **extra,
        }

    def write(self, **extra) -> dict:
        """Consolidate the commit records into ``_manifest.json`` (atomic); re-reads every record."""
        fresh = self if self.full else Manifest.load(self.root, self.dataset, full=True)
        doc = fresh.to_dict(updated_at=time.time(), **extra)
        self.root.write_bytes_atomic(json.dumps(doc, indent=1, sort_keys=True).encode(), self.dataset, MANIFEST)
        return doc

    @staticmethod
    def read_json(root: CorpusRoot, dataset: str) -> dict | None:
        """The consolidated manifest, or None where none was written."""
        if not root.exists(dataset, MANIFEST):
            return None
        return jsonfile.read(root, dataset, MANIFEST)
