from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_HELPERS = [str(Path(__file__).parent / sub) for sub in ("", "crawl", "clean", "objectstore")]
for path in _HELPERS:
    sys.path.insert(0, path)
# Ray workers import test helpers (a fault-injecting filesystem) by name: they inherit this
os.environ["PYTHONPATH"] = os.pathsep.join([*_HELPERS, *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WEBMILL_VERIFY_PARTS", "1")  # every read in the tests checks part checksums

from faultserver import fault_server  # noqa: E402

# the hostile suite's tally (a fixture and two hooks; here, since a second conftest.py would shadow this one
# for the test modules that import from it)
from hostile_tally import hostile, pytest_runtest_makereport, pytest_terminal_summary  # noqa: E402,F401
from s3server import S3Server  # noqa: E402

from webmill.serve import find_corpora  # noqa: E402

CORPORA = find_corpora()


def sites_folder() -> Path:
    """The folder of real sites the end-to-end tests serve: ../shared/corpora, or where it is
    absent the offline corpora the project renders itself (``pylib/``, ``pydoc/``)."""
    if CORPORA is not None:
        return CORPORA
    from webmill.pylib_site import offline_corpora

    return offline_corpora()


# what stands in for a site of ../shared/corpora where it is absent, for tests that need real pages
# but not that site's particulars: the Python library (over a thousand pages) or its reference topics (81)
OFFLINE_STAND_IN = {"postgresql-15": "pylib", "libstdcxx-manual": "pylib", "debian-handbook": "pylib", "sqlite-3": "pydoc"}


def real_site(name: str) -> Path:
    """The folder of the named site of ../shared/corpora, or of its offline stand-in."""
    if CORPORA is not None and (CORPORA / name).is_dir():
        return CORPORA / name
    return sites_folder() / OFFLINE_STAND_IN[name]


# a small real site and its seeds: libstdcxx-manual's version 11 (97 pages), or Python's reference topics (81)
SMALL_SITE = ("libstdcxx-manual", ["11/index.html"]) if CORPORA is not None else ("pydoc", ["index.html"])


def corpus_dir(name: str) -> Path:
    """A real website from ../shared/corpora, or skip with the reason."""
    if CORPORA is None or not (CORPORA / name).is_dir():
        pytest.skip(f"../shared/corpora/{name} is not present beside this checkout")
    return CORPORA / name


@pytest.fixture(scope="session")
def corpora() -> Path:
    if CORPORA is None:
        pytest.skip("../shared/corpora is not present beside this checkout")
    return CORPORA


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
def site(corpora):
    """The real corpora served on 127.0.0.1, plus the /_fault/ routes."""
    with fault_server(corpora) as server:
        yield server


@pytest.fixture
def fault_site(tmp_path):
    """Only the /_fault/ routes (and an empty folder) on 127.0.0.1."""
    (tmp_path / "index.html").write_text("<html><body><a href='/_fault/status/404'>x</a></body></html>")
    with fault_server(tmp_path) as server:
        yield server
