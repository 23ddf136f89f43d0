"""A training run's folder in the corpus root (``runs/<name>/``), on any filesystem the root is on.

Every file of a run goes through here: the plan, metrics, checkpoints, ``latest``,
``final/`` and the summary, so that a run on an ``s3://`` root is written to the
object store and every rank, on any node, reads the same ``latest``. Single files
are written atomically (a temporary name and a rename on a disk; one PUT on an
object store). A folder (a checkpoint, ``final/``) is renamed into place on a disk;
on an object store its files are put one by one and the folder only counts once
the file that names it (``latest``, or ``final/training.json``) is written last.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import uuid

import pyarrow.fs as pafs

from webmill.errors import UserError
from webmill.shards import jsonfile, layout
from webmill.shards.objectstore import public_uri
from webmill.shards.root import CorpusRoot, fsync_dir

# what every plan (pretraining or fine-tuning) holds, and what the commands index into
PLAN_KEYS = {"name": str, "model": dict, "tokenizer": str, "data": dict}


def open_root(uri: str, fences: dict | None = None) -> CorpusRoot:
    """The root a plan names (on a Ray Train worker, or in a later command), with the leases the
    run holds on it (``webmill.locks``), so that its commit points check them."""
    root = CorpusRoot.open(uri, create=False, writable=False)
    root.fences.update(fences or {})
    return root


class RunFiles:
    def __init__(self, root: CorpusRoot, rel: str):
        self.root = root
        self.rel = rel.strip("/")
        self._metrics: list[str] | None = None  # object stores: the metrics file, rewritten whole

    @classmethod
    def of(cls, plan: dict) -> "RunFiles":
        return cls(open_root(plan["root"], plan.get("_fences")), plan["run"])

    @classmethod
    def named(cls, root: CorpusRoot, run: str) -> "RunFiles":
        """A run as a user names it: a folder on this machine, or a name under the root's runs/."""
        if os.path.isdir(run) and not (root is not None and root.is_local and os.path.isdir(root.path(layout.run(run)))):
            folder = os.path.abspath(run)
            return cls(CorpusRoot.open(os.path.dirname(folder), create=False, writable=False), os.path.basename(folder))
        return cls(root, layout.run(layout.run_name(run)))

    # paths -----------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return self.root.path(self.rel, *parts)

    def display(self, *parts: str) -> str:
        return self.root.display(self.rel, *parts)

    def exists(self, *parts: str) -> bool:
        return self.root.exists(self.rel, *parts)

    # files -----------------------------------------------------------------
    def read_bytes(self, *parts: str) -> bytes:
        try:
            return self.root.read_bytes(self.rel, *parts)
        except FileNotFoundError:
            raise UserError(f"{self.display(*parts)}: not found") from None

    def read_json(self, *parts: str, required: dict | None = None) -> dict:
        """A JSON file of the run, through the root's one loader (``webmill.shards.jsonfile``)."""
        return jsonfile.parse(self.read_bytes(*parts), self.display(*parts), required=required)

    def read_plan(self) -> dict:
        """``plan.json``, of the shape a plan has (a crafted or damaged one is one line)."""
        plan = self.read_json("plan.json", required=PLAN_KEYS)
        if plan.get("kind") == "sft":  # its data are the conversations' counts; the arrays lie in the run
            return plan
        jsonfile.check_keys(plan["data"], {"train": list, "val": list}, self.display("plan.json"), "data.")
        if not all(isinstance(p, str) for p in plan["data"]["train"] + plan["data"]["val"]):
            raise jsonfile.DamagedFile(f"{self.display('plan.json')}: damaged file (a path in data that is not a string)")
        return plan

    def write_bytes(self, data: bytes, *parts: str) -> None:
        self.root.write_bytes_atomic(data, self.rel, *parts)

    def write_json(self, obj: dict, *parts: str) -> None:
        self.write_bytes(json.dumps(obj, indent=1, sort_keys=True, default=str).encode(), *parts)

    def write_plan(self, plan: dict) -> None:
        """``plan.json``: the plan as workers get it in memory, but with the root's URI stripped
        of credentials (the file lives in the root, where everyone who reads the root reads it)."""
        saved = {k: v for k, v in plan.items() if k != "_fences"}  # a lease's owner token is this session's alone
        self.write_json({**saved, "root": public_uri(plan["root"])}, "plan.json")

    def write_folder(self, files: dict[str, bytes], *parts: str) -> str:
        """``files`` (name → bytes) as the folder ``parts``, replacing what was there."""
        target = self.path(*parts)
        fs = self.root.fs
        if self.root.is_local:
            tmp = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}.{uuid.uuid4().hex}.tmp")
            fs.create_dir(tmp, recursive=True)
            for name, data in files.items():
                with open(posixpath.join(tmp, name), "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())  # a checkpoint survives a power loss whole, or not at all
            fsync_dir(tmp)
            if fs.get_file_info(target).type != pafs.FileType.NotFound:
                fs.delete_dir(target)
            fs.move(tmp, target)
            fsync_dir(posixpath.dirname(target))
        else:
            for name, data in files.items():
                with fs.open_output_stream(posixpath.join(target, name), compression=None) as f:
                    f.write(data)
        return self.display(*parts)

    # metrics ---------------------------------------------------------------
    def truncate_metrics(self, step: int) -> None:
        """On resume, drop metric lines after the checkpoint so the file is one continuous history."""
        lines = []
        if self.exists("metrics.jsonl"):
            lines = [json.dumps(r) + "\n" for r in read_metrics(self.read_bytes("metrics.jsonl")) if r["step"] <= step]
        if self.root.is_local:
            self.write_bytes("".join(lines).encode(), "metrics.jsonl")
        else:
            self._metrics = lines

    def append_metrics(self, record: dict) -> None:
        line = json.dumps(record) + "\n"
        if self.root.is_local:
            with open(self.path("metrics.jsonl"), "a") as f:
                f.write(line)
        else:
            if self._metrics is None:
                self._metrics = []
            self._metrics.append(line)

    def flush_metrics(self) -> None:
        """Object stores have no append: the whole file is put at each checkpoint and at the end."""
        if not self.root.is_local and self._metrics is not None:
            self.write_bytes("".join(self._metrics).encode(), "metrics.jsonl")


def read_metrics(data: bytes) -> list[dict]:
    """The records of a metrics.jsonl; a torn line (a crash mid-write) or a foreign one is skipped."""
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("step"), int):
            out.append(r)
    return out


def tensors_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"format": "pt"})


def torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
