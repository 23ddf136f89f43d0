"""One writer per stage run: a lock on ``<stage>/<run>/`` for as long as a stage writes there.

Two ``webmill clean --name X`` on one root would write the same part names and commit
records over each other. ``run_lock(root, layout.CLEAN, "X")`` makes the second one stop at
once with one line, before it writes anything:

- on a local root (or a shared filesystem) an OS file lock (``filelock``) on
  ``<stage>/<run>/.webmill-lock``: the OS drops it when its process dies, so a run killed
  with SIGKILL leaves no stale lock behind;
- on an object store a *lease*: ``<stage>/<run>/.webmill-lease.json`` naming its owner
  and an expiry, renewed by a thread while the run lasts. pyarrow has no conditional put,
  so the claim is written, then read back after ``SETTLE`` seconds: of two runs that
  write their claim at nearly the same moment, the store keeps one, and the other sees
  the other's name and stops. A lease that a crashed run left expires after ``TTL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid

from webmill.errors import UserError
from webmill.names import check_name

LOCK = ".webmill-lock"
LEASE = ".webmill-lease.json"
TTL = 120.0  # seconds a lease holds without renewal
SETTLE = 1.0  # seconds between writing a claim and reading it back


class RunLocked(UserError):
    """Another webmill process is writing the same stage run."""


class LeaseLost(UserError):
    """This process's lease on a folder of an object-store root is no longer its own."""


def ttl() -> float:
    """Seconds a lease holds without renewal (``WEBMILL_LEASE_TTL`` shortens it in the tests)."""
    return float(os.environ.get("WEBMILL_LEASE_TTL", TTL))


def check_owner(root, where: str, owner: str, committing: str) -> None:
    """The fence: the lease on ``where`` still names ``owner`` and has not run out. Read from the
    store before every commit point (one small GET), so a run that lost its lease stops."""
    held = _read_lease(root, where)
    if not held or held.get("owner") != owner:
        by = f"pid {held.get('pid')} on {held.get('host')}" if held else "nobody (the lease was removed)"
        raise LeaseLost(
            f"{root.display(where)}: this run lost its lease (now held by {by}) after stalling past it; stopped before writing {committing}"
        )
    if held.get("expires", 0) < time.time():
        raise LeaseLost(
            f"{root.display(where)}: this run's lease ran out (not renewed for over {ttl():.0f} s); "
            f"stopped before writing {committing}, which another run may now own"
        )


def run_lock(root, stage: str, run: str):
    """The lock of one stage run, ``<stage>/<run>/`` (the name checked as a path part)."""
    check_name(run, f"name under {stage}/" if stage else "run name")
    return folder_lock(root, f"{stage}/{run}" if stage else run)


@contextlib.contextmanager
def folder_lock(root, where: str):
    """The lock of a folder of the root that several runs share (``dedup/_index``), or of a run's."""
    if root.is_local:
        with _file_lock(root, where):
            yield
    else:
        with _lease(root, where):
            yield


@contextlib.contextmanager
def _file_lock(root, where: str):
    from filelock import FileLock, Timeout

    root.makedirs(where)
    path = root.path(where, LOCK)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunLocked(
            f"{root.display(where)} is being written by another webmill process (lock {path}); "
            f"wait for it to end, or give this run another name"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _read_lease(root, where: str) -> dict | None:
    try:
        return json.loads(root.read_bytes(where, LEASE))
    except (OSError, ValueError, RecursionError):
        return None


@contextlib.contextmanager
def _lease(root, where: str):
    me = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}

    def refuse(held: dict):
        raise RunLocked(
            f"{root.display(where)} is being written by another webmill process "
            f"(pid {held.get('pid')} on {held.get('host')}, lease until "
            f"{time.strftime('%H:%M:%S', time.localtime(held.get('expires', 0)))}); "
            f"wait for it to end, or give this run another name"
        )

    held = _read_lease(root, where)
    if held and held.get("owner") != me["owner"] and held.get("expires", 0) > time.time():
        refuse(held)

    def write():
        root.write_bytes_atomic(json.dumps({**me, "expires": time.time() + ttl()}).encode(), where, LEASE)

    write()
    time.sleep(SETTLE)
    held = _read_lease(root, where)
    if not held or held.get("owner") != me["owner"]:
        refuse(held or {})
    stop = threading.Event()

    def renew():
        while not stop.wait(ttl() / 3):
            held = _read_lease(root, where)
            if held and held.get("owner") != me["owner"]:
                return  # taken over after this run stalled past its lease: the other run owns it now
            with contextlib.suppress(OSError):
                write()

    t = threading.Thread(target=renew, name="webmill-lease", daemon=True)
    t.start()
    root.fences[where] = me["owner"]  # every commit point under `where` checks it (CorpusRoot.check_fence)
    try:
        yield
    finally:
        root.fences.pop(where, None)
        stop.set()
        held = _read_lease(root, where)
        if held and held.get("owner") == me["owner"]:
            with contextlib.suppress(OSError):
                root.delete(where, LEASE)
