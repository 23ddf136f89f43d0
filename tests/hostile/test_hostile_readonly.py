"""Read-only verbs on a hostile root (#29, finding 15): `trace --raw` opens a record's source only under
the root or among its clean run's recorded inputs; nothing printed carries a terminal escape."""

from __future__ import annotations

import pyarrow as pa
from hostile_helpers import webmill
from warcfiles import prose_page, write_warc

from webmill.clean.stage import DOCS_SCHEMA
from webmill.shards import CorpusRoot, DatasetWriter


def _doc(doc_id: str, source_warc: str, title: str) -> pa.Table:
    row = {f.name: None for f in DOCS_SCHEMA}
    row.update(
        id=doc_id,
        url="http://site.test/page",
        host="site.test",
        crawl_id="c1",
        title=title,
        text="Words of a page. " * 20,
        lang="en",
        lang_score=0.99,
        n_words=80,
        source={"warc": source_warc, "offset": 0, "length": 100},
    )
    return pa.Table.from_pylist([row], schema=DOCS_SCHEMA)


def test_trace_raw_reads_no_source_outside_the_root(tmp_path, hostile):
    hostile.tried("a document whose source is a file:// WARC outside the root (trace --raw)")
    outside = tmp_path / "private.warc.gz"
    write_warc(outside, [("http://intranet.test/payroll", prose_page("PAYROLL-SECRET"), "text/html")])
    root = CorpusRoot.open(tmp_path / "root")
    w = DatasetWriter(root, "clean/evil/docs", DOCS_SCHEMA)
    w.write_unit("u", [_doc("doc-1", f"file://{outside}", "A page")])
    w.finalize(inputs=["clean-input.warc.gz"])
    out = webmill("--root", root.base, "trace", "doc-1")
    assert out.returncode == 0, out.stderr[-2000:]  # the lineage itself still prints
    out = webmill("--root", root.base, "trace", "doc-1", "--raw")
    assert out.returncode == 2 and "neither under the root nor an input" in out.stderr, out.stderr[-2000:]
    assert "PAYROLL-SECRET" not in out.stdout


def test_no_terminal_escape_reaches_the_terminal(tmp_path, hostile):
    """A title holding ESC ]0; (retitle the terminal), ESC [2J (clear it), a carriage return and a
    right-to-left override: printed as escapes by `query` and `trace`."""
    hostile.tried("terminal escapes in a page title (query)", "terminal escapes in a page title (trace)")
    evil = "Nice page\x1b]0;pwned\x07\x1b[2J\rfake line\u202etxt.exe"
    root = CorpusRoot.open(tmp_path / "root")
    w = DatasetWriter(root, "clean/evil/docs", DOCS_SCHEMA)
    w.write_unit("u", [_doc("doc-2", "crawl/c1/warc/x.warc.gz", evil)])
    w.finalize(inputs=[])
    for argv in (["query", "SELECT title FROM clean_docs"], ["trace", "doc-2"]):
        out = webmill("--root", root.base, *argv)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Nice page" in out.stdout
        for c in ("\x1b", "\x07", "\r", "\u202e"):
            assert c not in out.stdout + out.stderr, (argv, c)
    # to a pipe or a file, CSV carries the values as they are (a terminal gets them escaped)
    out = webmill("--root", root.base, "query", "--format", "csv", "SELECT title FROM clean_docs")
    assert out.returncode == 0 and "\x1b]0;pwned" in out.stdout
