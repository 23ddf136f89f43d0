"""The cluster path, for real: a separate Ray head on 127.0.0.1, joined through --ray-address."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from webmill.shards import CorpusRoot, DatasetReader


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    ray_bin = Path(sys.executable).parent / "ray"
    port = free_port()
    temp = tempfile.mkdtemp(prefix="wmray")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--block",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("ray head did not start")
    time.sleep(2)
    yield f"127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)  # a graceful stop took 30 s in CI; the session's processes are killed below
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    shutil.rmtree(temp, ignore_errors=True)


JOB = textwrap.dedent("""
    import json, sys
    import pyarrow as pa
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot, DatasetWriter

    ray = ensure_ray(sys.argv[1])
    root = CorpusRoot.open(sys.argv[2])
    schema = pa.schema([("unit", pa.int64()), ("node", pa.string())])

    @ray.remote
    def write(u):
        node = ray.get_runtime_context().get_node_id()
        rows = [{"unit": u, "node": node}] * 10
        DatasetWriter(root, "job", schema).write_unit(f"u{u}", [pa.Table.from_pylist(rows, schema=schema)])
        return node

    nodes = ray.get([write.remote(u) for u in range(3)])
    print(json.dumps({"cpus": ray.cluster_resources().get("CPU"), "nodes": sorted(set(nodes)),
                      "address": ray.get_runtime_context().gcs_address}))
""")


def test_job_runs_on_a_separate_cluster(ray_head, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run(
        [sys.executable, "-c", JOB, ray_head, str(tmp_path / "root")], capture_output=True, text=True, timeout=180, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cpus"] == 1.0  # the head's one CPU, not an embedded cluster sized to the machine
    assert result["address"] == ray_head
    assert DatasetReader(CorpusRoot.open(tmp_path / "root"), "job").num_rows == 30


def test_unreachable_ray_address_is_a_clear_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from webmill.runtime import ensure_ray; ensure_ray('127.0.0.1:%d')" % free_port()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode != 0
    assert "cannot connect" in out.stderr
