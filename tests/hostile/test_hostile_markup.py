"""Every pattern that runs on page content, on pathological pages, under a time bound.

The bounds are about 20x what a linear scan takes here on two loaded cores, and far below
what the patterns these replaced took (the ``<meta`` one ~20 s, the ``<title`` one ~11 s)."""

from __future__ import annotations

import time

import pytest

from webmill.clean.config import CleanConfig
from webmill.clean.decode import decode_html
from webmill.clean.extract import html_title
from webmill.clean.filters import signals_and_verdict
from webmill.clean.pii import scrub
from webmill.crawl.spider import robots_directives
from webmill.crawl.traps import TrapGuard

N = 200_000
PAGES = {
    "unclosed <meta": b"<meta " * (N // 6),
    "<meta name=robots without >": b"<meta name=robots " * (N // 18),
    "<meta> then no >": b"<meta>" + b"<meta name='ai' content='" * (N // 25),
    "unclosed <title": b"<title" * (N // 6),
    "<title> without </title>": b"<title>" * (N // 7),
    "email-like run": b"a" * 64 + b"@" + b"a." * (N // 2),
    "many @": b"a@" * (N // 2),
    "dotted digits": b"1." * (N // 2),
    "angle flood": b"<" * N,
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_content_patterns_are_linear(name, hostile):
    hostile.tried(f"pathological page: {name}")
    body = PAGES[name]
    text = body.decode("latin-1")
    cfg = CleanConfig()
    checks = {
        "robots_directives": lambda: robots_directives([], body),
        "html_title": lambda: html_title(text),
        "decode_html": lambda: decode_html(body, "text/html"),
        "pii.scrub": lambda: scrub(text, "<email>", "<ip>"),
        "signals_and_verdict": lambda: signals_and_verdict(text, "en", cfg),
        "traps": lambda: TrapGuard(2048, 3, 8).check("http://h/" + text[:4096]),
    }
    for what, fn in checks.items():
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        assert took < 2.0, f"{what} took {took:.1f}s on {name!r}"
