"""Where the end-to-end tests find real websites: ../shared/corpora beside the checkout, or the
offline corpora the project renders itself. Test modules import these by name (``from sites import
...``), never from ``conftest``: pytest loads every conftest.py as a module named ``conftest``, so
which one an import finds depends on the order the folders were collected in."""

from __future__ import annotations

from pathlib import Path

from webmill.serve import find_corpora

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


# the offline library is five times postgresql-15 (1,169 pages): tests sized to that site read the
# first STAND_IN_PAGES pages of its stand-in (real_docs(site, limit=...)); None where the site is real
STAND_IN_PAGES = None if CORPORA is not None else 1200


def real_site(name: str) -> Path:
    """The folder of the named site of ../shared/corpora, or of its offline stand-in."""
    if CORPORA is not None and (CORPORA / name).is_dir():
        return CORPORA / name
    return sites_folder() / OFFLINE_STAND_IN[name]


# a small real site and its seeds: libstdcxx-manual's version 11 (97 pages), or Python's reference topics (81)
SMALL_SITE = ("libstdcxx-manual", ["11/index.html"]) if CORPORA is not None else ("pydoc", ["index.html"])
