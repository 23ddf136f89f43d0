"""The crawl catalog: jobs and schedules in SQLite (``<root>/catalog.sqlite``)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path

from webmill.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    state TEXT NOT NULL,              -- queued, running, done, failed, cancelled
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    counts TEXT,
    error TEXT,
    schedule_id INTEGER
);
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    every_s REAL NOT NULL,
    next_due REAL NOT NULL,
    created REAL NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
"""

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_period(text: str) -> float:
    """'7d', '12h', '30m', '45s', '2w' → seconds."""
    m = _PERIOD.match(text or "")
    if not m:
        raise UserError(f"period {text!r}: expected a number and a unit s, m, h, d or w (e.g. 7d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def spec_hash(spec: dict) -> str:
    keep = {k: spec[k] for k in ("seeds", "allowed_domains") if k in spec}
    return hashlib.sha1(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def catalog_path(root) -> str:
    local = root.local_path("catalog.sqlite")
    if local:
        return local
    # SQLite needs a local file; a remote root keeps its catalog in the user's cache.
    key = hashlib.sha1(root.uri.encode()).hexdigest()[:16]
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "webmill" / key / "catalog.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


class Catalog:
    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    @classmethod
    def open(cls, root) -> "Catalog":
        return cls(catalog_path(root))

    # jobs ----------------------------------------------------------------
    def add_job(self, job_id: str, spec: dict, state: str = "queued", schedule_id: int | None = None) -> None:
        self.db.execute("INSERT INTO jobs (id, spec, spec_hash, state, created, schedule_id) VALUES (?,?,?,?,?,?)",
                        (job_id, json.dumps(spec), spec_hash(spec), state, time.time(), schedule_id))

    def job(self, job_id: str) -> dict:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserError(f"crawl {job_id}: no such crawl in {self.path}")
        return _job(row)

    def jobs(self, state: str | None = None) -> list[dict]:
        q = "SELECT * FROM jobs" + (" WHERE state = ?" if state else "") + " ORDER BY created"
        return [_job(r) for r in self.db.execute(q, (state,) if state else ())]

    def set_state(self, job_id: str, state: str, **fields) -> None:
        cols = {"state": state, **fields}
        if "counts" in cols:
            cols["counts"] = json.dumps(cols["counts"])
        sets = ", ".join(f"{k} = ?" for k in cols)
        self.db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))

    def previous_done(self, spec: dict, before_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM jobs WHERE spec_hash = ? AND state = 'done' AND id != ? "
                              "ORDER BY ended DESC LIMIT 1", (spec_hash(spec), before_id)).fetchone()
        return _job(row) if row else None

    # schedules -------------------------------------------------------------
    def add_schedule(self, spec: dict, every_s: float, first_due: float | None = None) -> int:
        cur = self.db.execute("INSERT INTO schedules (spec, spec_hash, every_s, next_due, created) VALUES (?,?,?,?,?)",
                              (json.dumps(spec), spec_hash(spec), every_s, first_due or time.time(), time.time()))
        return cur.lastrowid

    def schedules(self) -> list[dict]:
        return [dict(r) | {"spec": json.loads(r["spec"])} for r in self.db.execute("SELECT * FROM schedules WHERE active = 1")]

    def due_schedules(self, now: float) -> list[dict]:
        return [s for s in self.schedules() if s["next_due"] <= now]

    def advance_schedule(self, sid: int, now: float) -> None:
        row = self.db.execute("SELECT every_s, next_due FROM schedules WHERE id = ?", (sid,)).fetchone()
        nxt = row["next_due"]
        while nxt <= now:
            nxt += row["every_s"]
        self.db.execute("UPDATE schedules SET next_due = ? WHERE id = ?", (nxt, sid))


def _job(row) -> dict:
    d = dict(row)
    d["spec"] = json.loads(d["spec"])
    d["counts"] = json.loads(d["counts"]) if d.get("counts") else {}
    return d
