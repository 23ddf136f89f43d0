"""Bad input is counted with its reason; the stage finishes; the rest of the batch is kept."""

import os

from helpers_clean import clean_json, read
from warcfiles import prose_page, write_warc


def test_bad_records_are_counted_and_skipped(tmp_path):
    warc = tmp_path / "bad.warc.gz"
    nested = b"<html><body>" + b"<div>" * 10000 + b"deep text " * 50 + b"</div>" * 10000 + b"</body></html>"
    pages = [
        ("http://a.test/good-1", prose_page("Good one"), "text/html; charset=utf-8"),
        ("http://a.test/garbage-headers", b"", "text/html"),
        ("http://a.test/huge", b"<html><body><p>" + b"word " * (4 << 20) + b"</p></body></html>", "text/html"),
        ("http://a.test/nested", nested, "text/html"),
        ("http://a.test/binary", os.urandom(20000), "text/html"),
        ("http://a.test/empty", b"", "text/html"),
        ("http://a.test/unknown-lang", b"<html><body><p>" + "ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾᛁᛃ ᛇᛈᛉᛊᛏᛒ ".encode() * 80 + b"</p></body></html>", "text/html"),
        ("http://a.test/good-2", prose_page("Good two"), "text/html; charset=utf-8"),
    ]
    write_warc(warc, pages, raw_http={1: b"\x00\x01garbage not http\r\n\xff\xfe\r\n\r\n<html>x</html>"})
    s = clean_json(tmp_path, "--warc", warc)
    assert s["kept"] == 2
    d = s["dropped"]
    assert d.get("bad_http_headers") == 1
    assert d.get("too_large") == 1  # 20 MB single line, over max_html_bytes
    assert d.get("binary") == 1
    assert d.get("empty") == 1
    assert sum(d.values()) == 6  # nested: dropped by some reason, never fatal
    excluded = {r["url"]: r["drop_reason"] for r in read(tmp_path, s["excluded_dataset"])}
    assert excluded["http://a.test/nested"] in ("extract_error", "no_text", "timeout") or excluded["http://a.test/nested"].startswith(
        ("gopher", "c4", "fineweb")
    )
    assert excluded["http://a.test/unknown-lang"] not in ("bad_http_headers",)
    docs = read(tmp_path, s["docs"])
    assert sorted(r["url"] for r in docs) == ["http://a.test/good-1", "http://a.test/good-2"]


def test_truncated_warc_keeps_what_came_before(tmp_path):
    warc = tmp_path / "torn.warc.gz"
    write_warc(warc, [(f"http://a.test/p{i}", prose_page(f"Page {i}"), "text/html") for i in range(6)])
    data = warc.read_bytes()
    warc.write_bytes(data[: int(len(data) * 0.75)])
    s = clean_json(tmp_path, "--warc", warc)
    assert s["warc_truncated"] == 1
    assert 3 <= s["kept"] <= 5


def test_warc_by_uri_reads_the_same(tmp_path):
    warc = tmp_path / "in" / "site.warc.gz"
    warc.parent.mkdir()
    write_warc(warc, [(f"http://a.test/p{i}", prose_page(f"Page {i}"), "text/html") for i in range(3)])
    s = clean_json(tmp_path, "--warc", f"file://{tmp_path}/in/*.warc.gz", "--name", "by-uri")
    assert s["kept"] == 3
    assert {d["source"]["warc"] for d in read(tmp_path, s["docs"])} == {f"file://{tmp_path}/in/site.warc.gz"}


def test_timeout_watchdog(tmp_path, monkeypatch):
    import trafilatura

    from webmill.clean.config import CleanConfig
    from webmill.clean.extract import process_record

    def slow(*a, **k):
        import time

        time.sleep(5)

    monkeypatch.setattr(trafilatura, "extract", slow)
    kind, row = process_record(
        {"url": "http://a.test/x", "body": prose_page("x"), "content_type": "text/html", "source": {"warc": "w", "offset": 0, "length": 1}},
        CleanConfig(timeout=0.5),
    )
    assert (kind, row["drop_reason"]) == ("excluded", "timeout")


def test_missing_crawl_is_a_clear_error(tmp_path):
    from helpers_clean import webmill_run

    out = webmill_run("--root", tmp_path / "root", "clean", "--crawl", "nope")
    assert out.returncode == 2 and "crawl nope: not found" in out.stderr
    out = webmill_run("--root", tmp_path / "root", "clean", "--warc", tmp_path / "none*.warc.gz")
    assert out.returncode == 2 and "no WARC files there" in out.stderr
