"""A small website rendered from the documentation inside Python itself (``pydoc_data``).

The demo serves it when ``../shared/corpora`` is not beside the checkout, so
``make demo`` works on any machine with no network.
"""

from __future__ import annotations

import html
import re
from pathlib import Path


def render_site(folder: Path) -> Path:
    """Write ``folder/pydoc/index.html`` and one page per help topic; returns the site folder."""
    from pydoc_data.topics import topics

    site = folder / "pydoc"
    site.mkdir(parents=True, exist_ok=True)
    names = sorted(topics)
    slug = {n: re.sub(r"[^A-Za-z0-9_-]+", "_", n) + ".html" for n in names}
    for i, name in enumerate(names):
        paragraphs = [p.strip() for p in topics[name].split("\n\n") if p.strip()]
        body = "\n".join(
            f"<pre>{html.escape(p)}</pre>" if p.startswith("   ") else f"<p>{html.escape(' '.join(p.split()))}</p>" for p in paragraphs
        )
        nav = " | ".join(f'<a href="{slug[n]}">{html.escape(n)}</a>' for n in names[max(0, i - 2) : i + 3] if n != name)
        (site / slug[name]).write_text(
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(name)} — Python reference</title></head>"
            f"<body><nav><a href=index.html>Index</a> | {nav}</nav><main><h1>{html.escape(name)}</h1>{body}</main>"
            f"<footer>Python documentation, rendered from pydoc_data</footer></body></html>",
            encoding="utf-8",
        )
    links = "\n".join(f'<li><a href="{slug[n]}">{html.escape(n)}</a></li>' for n in names)
    (site / "index.html").write_text(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Python reference topics</title>"
        f"</head><body><h1>Python reference topics</h1><ul>{links}</ul></body></html>",
        encoding="utf-8",
    )
    return folder
