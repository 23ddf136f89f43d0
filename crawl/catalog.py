"""The crawl catalog: jobs and schedules in SQLite (``<root>/catalog.sqlite``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time

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


class Catalog:
    """On a local root the catalog is ``<root>/catalog.sqlite`` itself. SQLite needs a local
    file, so on an object-store root the catalog object is copied into a temp file before
    each use and put back after each change: the root stays the only shared state, and any
    node can run ``crawl resume`` or the scheduler. Two drivers changing one object-store
    catalog at the same moment can lose one change (a lease per root is issue #15's)."""

    def __init__(self, path: str, root=None):
        self.path = path
        self.root = None if root is None or root.is_local else root
        self.display = root.display("catalog.sqlite") if root is not None else path
        self._connect()

    def _connect(self) -> None:
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        # a remote copy must be one complete file after each change: no write-ahead log beside it
        self.db.execute("PRAGMA journal_mode=" + ("DELETE" if self.root is not None else "WAL"))
        self.db.executescript(SCHEMA)

    @classmethod
    def open(cls, root) -> "Catalog":
        local = root.local_path("catalog.sqlite")
        if local:
            return cls(local, root)
        path = os.path.join(tempfile.mkdtemp(prefix="webmill-catalog-"), "catalog.sqlite")
        existed = root.exists("catalog.sqlite")
        if existed:
            with open(path, "wb") as f:
                f.write(root.read_bytes("catalog.sqlite"))
        self = cls(path, root)
        if not existed:
            self._push()
        return self

    def _pull(self) -> None:
        if self.root is None or not self.root.exists("catalog.sqlite"):
            return
        self.db.close()
        with open(self.path, "wb") as f:
            f.write(self.root.read_bytes("catalog.sqlite"))
        self._connect()

    def _push(self) -> None:
        if self.root is not None:
            with open(self.path, "rb") as f:
                self.root.write_bytes_atomic(f.read(), "catalog.sqlite")

    def _write(self, sql: str, params: tuple):
        self._pull()
        cur = self.db.execute(sql, params)
        self._push()
        return cur

    def _read(self, sql: str, params: tuple = ()):
        self._pull()
        return self.db.execute(sql, params)

    # jobs ----------------------------------------------------------------
    def add_job(self, job_id: str, spec: dict, state: str = "queued", schedule_id: int | None = None) -> None:
        self._write(
            "INSERT INTO jobs (id, spec, spec_hash, state, created, schedule_id) VALUES (?,?,?,?,?,?)",
            (job_id, json.dumps(spec), spec_hash(spec), state, time.time(), schedule_id),
        )

    def job(self, job_id: str) -> dict:
        row = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserError(f"crawl {job_id}: no such crawl in {self.display}")
        return _job(row)

    def jobs(self, state: str | None = None) -> list[dict]:
        q = "SELECT * FROM jobs" + (" WHERE state = ?" if state else "") + " ORDER BY created"
        return [_job(r) for r in self._read(q, (state,) if state else ())]

    def set_state(self, job_id: str, state: str, **fields) -> None:
        cols = {"state": state, **fields}
        if "counts" in cols:
            cols["counts"] = json.dumps(cols["counts"])
        sets = ", ".join(f"{k} = ?" for k in cols)
        self._write(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))

    def claim(self, job_id: str, states: tuple[str, ...] = ("queued",)) -> bool:
        """Move a job from one of ``states`` to running, atomically: of two schedulers (or a
        scheduler and a ``crawl cancel``) only the one whose UPDATE changed the row goes on."""
        marks = ",".join("?" * len(states))
        cur = self._write(
            f"UPDATE jobs SET state = 'running', started = ? WHERE id = ? AND state IN ({marks})", (time.time(), job_id, *states)
        )
        return cur.rowcount == 1

    def previous_done(self, spec: dict, before_id: str) -> dict | None:
        row = self._read(
            "SELECT * FROM jobs WHERE spec_hash = ? AND state = 'done' AND id != ? ORDER BY ended DESC LIMIT 1",
            (spec_hash(spec), before_id),
        ).fetchone()
        return _job(row) if row else None

    # schedules -------------------------------------------------------------
    def add_schedule(self, spec: dict, every_s: float, first_due: float | None = None) -> int:
        cur = self._write(
            "INSERT INTO schedules (spec, spec_hash, every_s, next_due, created) VALUES (?,?,?,?,?)",
            (json.dumps(spec), spec_hash(spec), every_s, first_due or time.time(), time.time()),
        )
        return cur.lastrowid

    def schedules(self) -> list[dict]:
        return [dict(r) | {"spec": json.loads(r["spec"])} for r in self._read("SELECT * FROM schedules WHERE active = 1")]

    def due_schedules(self, now: float) -> list[dict]:
        return [s for s in self.schedules() if s["next_due"] <= now]

    def advance_schedule(self, sid: int, now: float) -> None:
        row = self._read("SELECT every_s, next_due FROM schedules WHERE id = ?", (sid,)).fetchone()
        nxt = row["next_due"]
        while nxt <= now:
            nxt += row["every_s"]
        self._write("UPDATE schedules SET next_due = ? WHERE id = ?", (nxt, sid))


def _job(row) -> dict:
    d = dict(row)
    d["spec"] = json.loads(d["spec"])
    d["counts"] = json.loads(d["counts"]) if d.get("counts") else {}
    return d
