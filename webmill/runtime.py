"""The one place that starts or joins Ray.

No address: an embedded local Ray sized to this machine (quiet, no dashboard),
started once per process. With ``--ray-address`` / ``RAY_ADDRESS``: join that
cluster. Stages call ``ensure_ray(ctx)`` and never ``ray.init`` themselves.
"""

from __future__ import annotations

import logging
import os

from webmill.errors import UserError, first_line

_started_address: str | None = None


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None, dashboard: bool = False, quiet: bool = True):
    """Start (or join) Ray once; return the ``ray`` module."""
    global _started_address
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Ray reads these when it is imported, so they are set first.
    if address is None or _is_loopback(address):
        # Keep a one-machine Ray on 127.0.0.1 instead of the first interface's address.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if address and "RAY_AUTH_MODE" not in os.environ and _has_auth_token():
        os.environ["RAY_AUTH_MODE"] = "token"  # clusters from `ray start` require the token
    import ray

    if ray.is_initialized():
        return ray
    level = logging.WARNING if quiet else logging.INFO
    if quiet:  # the token-auth notice on every start says nothing a user must act on
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level=level, log_to_driver=not quiet)
        else:
            ray.init(
                address="local",
                runtime_env={"worker_process_setup_hook": "webmill.runtime.warm_worker"},
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=dashboard,
                logging_level=level,
                log_to_driver=not quiet,
                configure_logging=True,
            )
    except ConnectionError as e:
        raise UserError(f"ray address {address}: cannot connect ({first_line(e)})") from None
    _started_address = address or "local"
    return ray


def quiet_ray_data() -> None:
    """webmill shows its own progress: no Ray Data bars or per-dataset log lines."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


class TasksFailed(UserError):
    """Some units of a stage failed after their retries; what the others committed is kept."""


def run_tasks(fn, tasks: list[tuple], *, gpus: float = 0):
    """Run ``fn(*args)`` for each ``args`` in ``tasks``, one Ray Data task on one CPU (and ``gpus``
    GPUs) each, and yield each result (a JSON-able dict) as it finishes. ``fn`` must be importable
    by name.

    A task that meets a transient error (the network, a busy or restarting object store) is
    run again with backoff; units commit atomically, so a retry starts clean. A task that
    still fails is reported, the others go on, and once all are done ``TasksFailed`` names
    the failures in one line: a rerun does only the units that did not commit.

    Each row carries its whole task (pickled), so no state is shared. The dataset has a
    single operator doing all the work, so Ray Data's per-operator CPU reservation, which
    holds CPUs back for other operators, is turned off for it: it only delayed the second
    task by a second or two."""
    import json
    import pickle

    import ray.data

    quiet_ray_data()
    ds = ray.data.from_items([{"task": pickle.dumps((fn, args))} for args in tasks], override_num_blocks=len(tasks))
    ds = ds.map_batches(_run_task_batch, batch_size=1, num_cpus=1, num_gpus=gpus or None, batch_format="numpy")
    ds.context.op_resource_reservation_enabled = False
    failed: list[str] = []
    for row in ds.iter_rows():
        result = json.loads(row["result"])
        if isinstance(result, dict) and result.get("__node__"):
            _TASK_NODES.add(result.pop("__node__"))
        if "__task_error__" in result:
            failed.append(result["__task_error__"])
            continue
        yield result
    if failed:
        raise TasksFailed(f"{len(failed)} of {len(tasks)} tasks failed (committed work is kept; rerun to finish); first: {failed[0]}")


TASK_ATTEMPTS = 5
_TASK_NODES: set[str] = set()


def take_task_nodes() -> list[str]:
    """Ids of the Ray nodes that ran ``run_tasks`` tasks since the last call (stage summaries record them)."""
    nodes = sorted(_TASK_NODES)
    _TASK_NODES.clear()
    return nodes


def _run_task_batch(batch: dict) -> dict:
    import json
    import pickle
    import time

    import numpy as np
    import ray

    from webmill.shards.objectstore import is_transient

    node = ray.get_runtime_context().get_node_id()
    out = []
    for fn, args in map(pickle.loads, batch["task"]):
        for attempt in range(TASK_ATTEMPTS):
            try:
                result = fn(*args)
                out.append(json.dumps({**result, "__node__": node} if isinstance(result, dict) else result))
                break
            except Exception as e:  # the task's own error, reported as one line by run_tasks
                if is_transient(e) and attempt + 1 < TASK_ATTEMPTS:
                    time.sleep(min(8.0, 0.5 * 2**attempt))
                    continue
                out.append(json.dumps({"__task_error__": first_line(e)}))
                break
    return {"result": np.array(out, dtype=object)}


def warm_worker() -> None:
    """Runs in each Ray worker of the embedded cluster as it starts: import the heavy
    libraries once there, not in the first task of every stage."""
    import importlib

    for name in ("pyarrow.parquet", "trafilatura", "webmill.clean.extract"):
        try:
            importlib.import_module(name)
        except Exception:
            pass


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes of Ray's retries, when nothing listens at host:port."""
    import socket

    if "://" in address or ":" not in address:
        return  # "auto", "ray://…": Ray resolves these itself
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise UserError(f"ray address {address}: cannot connect ({e})") from None


def _is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _has_auth_token() -> bool:
    from pathlib import Path

    return (
        bool(os.environ.get("RAY_AUTH_TOKEN")) or Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token")).exists()
    )


def check_root_on_cluster(ray, root_uri: str, *, shared: bool) -> None:
    """A local root on a cluster of several nodes would scatter parts and commit records over
    the nodes' disks: refused, unless the user declares it a filesystem every node mounts."""
    local = "://" not in root_uri or root_uri.startswith("file://")
    if not local or shared:
        return
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) > 1:
        raise UserError(
            f"corpus root {root_uri} is a local path, but the Ray cluster has {len(nodes)} nodes: "
            "use an object-store root (s3://…), or set [root] shared_filesystem = true "
            "if every node mounts this path"
        )


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def shutdown_ray() -> None:
    global _started_address
    import ray

    if ray.is_initialized():
        ray.shutdown()
    _started_address = None
