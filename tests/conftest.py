from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_HELPERS = [str(Path(__file__).parent / sub) for sub in ("", "crawl", "clean", "objectstore", "train", "hostile")]
for path in _HELPERS:
    sys.path.insert(0, path)
# Ray workers import test helpers (a fault-injecting filesystem) by name: they inherit this
os.environ["PYTHONPATH"] = os.pathsep.join([*_HELPERS, *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WEBMILL_VERIFY_PARTS", "1")  # every read in the tests checks part checksums

from faultserver import fault_server  # noqa: E402

# the hostile suite's tally (a fixture and two hooks)
from hostile_tally import hostile, pytest_runtest_makereport, pytest_terminal_summary  # noqa: E402,F401
from s3server import S3Server  # noqa: E402
from sites import sites_folder  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def s3():
    """A real S3-compatible server (moto) on 127.0.0.1 for the whole session. It starts before
    any Ray does, so every Ray worker inherits its credentials from the environment."""
    server = S3Server()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="session")
def ray_local():
    """One embedded Ray for the whole session (started through webmill's runtime)."""
    from webmill.runtime import ensure_ray

    ray = ensure_ray(None, num_cpus=2)
    yield ray


@pytest.fixture
def site():
    """The real sites served on 127.0.0.1 (../shared/corpora, or the offline site where it is absent),
    plus the /_fault/ routes."""
    with fault_server(sites_folder()) as server:
        yield server


@pytest.fixture
def fault_site(tmp_path):
    """Only the /_fault/ routes (and an empty folder) on 127.0.0.1."""
    (tmp_path / "index.html").write_text("<html><body><a href='/_fault/status/404'>x</a></body></html>")
    with fault_server(tmp_path) as server:
        yield server
