"""A real two-node Ray cluster on 127.0.0.1 (``ray start --head``, then ``ray start --address``)
running ``webmill run`` on an ``s3://`` root; and a local root refused on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from pipeline_config import config_text
from s3server import free_port, wait_port

RAY = str(Path(sys.executable).parent / "ray")


def cluster_config(seed: str) -> str:
    """Two crawl workers and small WARC files and clean units, so every stage has tasks for both nodes."""
    return config_text(
        seed, max_steps=4, eval_every=2, checkpoint_every=2, crawl="workers = 2\nwarc_max_bytes = 100000", clean="unit_bytes = 65536"
    )


@pytest.fixture(scope="module")
def two_nodes(s3):
    """A head and a second node, one CPU each, each with its own temp dir; both see the S3 credentials."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    temps = [tempfile.mkdtemp(prefix="wmh"), tempfile.mkdtemp(prefix="wmn")]  # Ray's socket paths stay short
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--block", "--disable-usage-stats"]
    procs = [
        subprocess.Popen(
            [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temps[0]}", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    wait_port(port, 90)
    time.sleep(2)
    procs.append(
        subprocess.Popen(
            [RAY, "start", f"--address=127.0.0.1:{port}", f"--temp-dir={temps[1]}", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    address = f"127.0.0.1:{port}"
    check = (
        "import ray,time,sys; ray.init(address=sys.argv[1]); t=time.time()\n"
        "while len([n for n in ray.nodes() if n['Alive']]) < 2 and time.time()-t < 90: time.sleep(1)\n"
        "print(len([n for n in ray.nodes() if n['Alive']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check, address],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
    )
    assert out.stdout.strip().endswith("2"), out.stderr[-2000:]
    yield address
    for p in reversed(procs):
        os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 5  # a graceful stop of both took 20 s in CI; what is left is killed
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    for t in temps:
        shutil.rmtree(t, ignore_errors=True)


def webmill_run(address, root, *args, cwd, config_text):
    """``webmill --ray-address A --root R run CONFIG …``"""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cfg = Path(cwd).parent / f"webmill-{abs(hash(config_text))}.toml"
    cfg.write_text(config_text)
    cmd = [sys.executable, "-m", "webmill", "--ray-address", address, "--root", str(root), "run", str(cfg)]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=900, cwd=cwd, env=env)


@pytest.mark.slow
def test_webmill_run_on_two_nodes_and_an_object_store(two_nodes, s3, pydoc_site, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    text = cluster_config(pydoc_site.url("pydoc/index.html"))
    uri = s3.uri()
    out = webmill_run(two_nodes, uri, "--json", cwd=cwd, config_text=text)
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout.strip().splitlines()[-1])["stages"]
    assert s["crawl"]["pages_stored"] == 80 and s["train"]["finished"]
    nodes = {stage: set(s[stage]["nodes"]) for stage in ("crawl", "clean", "dedup", "shard")}
    assert len(set().union(*nodes.values())) == 2, nodes  # stage tasks ran on both nodes
    assert len(nodes["crawl"]) == 2 and len(nodes["clean"]) == 2, nodes
    prefix = uri.split("corpus/", 1)[1].split("?")[0]
    keys = s3.keys(prefix + "/")
    assert f"{prefix}/runs/{s['train']['name']}/final/model.safetensors" in keys
    assert list(cwd.iterdir()) == []  # nothing written to any local path but temp dirs


@pytest.mark.slow
def test_a_local_root_on_two_nodes_is_refused_unless_shared(two_nodes, pydoc_site, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    text = cluster_config(pydoc_site.url("pydoc/index.html"))
    out = webmill_run(two_nodes, tmp_path / "root", "--to", "crawl", cwd=cwd, config_text=text)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "local path" in lines[0] and "shared_filesystem" in lines[0], out.stderr
    assert not (tmp_path / "root" / "crawl").exists()
    shared = text + "[root]\nshared_filesystem = true\n"
    out = webmill_run(two_nodes, tmp_path / "root", "--to", "crawl", "--json", cwd=cwd, config_text=shared)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["stages"]["crawl"]["pages_stored"] == 80
