"""Crawl handoff files edited in the root (#29, finding 14): the links one worker hands another lie
in ``crawl/<id>/state/handoff/``; an entry is rebuilt from what is valid, a bad line is counted."""

from __future__ import annotations

import json

from webmill.crawl.run import HANDOFF, _inbox, handoff_entry
from webmill.crawl.worker import owner_of
from webmill.shards import CorpusRoot


def _host_for(k: int, workers: int) -> str:
    return next(h for h in (f"site{i}.test" for i in range(1000)) if owner_of(h, workers) == k)


def test_handoff_lines_are_validated_and_bad_ones_counted(tmp_path, hostile):
    workers, k = 4, 1
    mine, theirs = _host_for(k, workers), _host_for(2, workers)
    good = [
        {"url": f"http://{mine}/a", "depth": 2, "referrer": f"http://{theirs}/"},
        {"url": f"https://{mine}/b?x=1#frag", "depth": 0, "referrer": None},
    ]
    bad = {
        "not JSON": b"{not json",
        "nested 100,000 deep": b"[" * 100_000,
        "negative depth (lifts max_depth)": json.dumps({"url": f"http://{mine}/c", "depth": -50}).encode(),
        "depth as a string": json.dumps({"url": f"http://{mine}/d", "depth": "1"}).encode(),
        "depth as true": json.dumps({"url": f"http://{mine}/e", "depth": True}).encode(),
        "a host another worker owns": json.dumps({"url": f"http://{theirs}/f", "depth": 1}).encode(),
        "a file: URL": json.dumps({"url": "file:///etc/passwd", "depth": 1}).encode(),
        "a referrer that is not a URL": json.dumps({"url": f"http://{mine}/g", "depth": 1, "referrer": "\r\nX-Evil: 1"}).encode(),
        "a list": b"[1, 2]",
        "an unclosed IPv6 host": json.dumps({"url": "http://[::1/", "depth": 1}).encode(),
    }
    hostile.tried(*(f"handoff line: {why}" for why in bad))
    for why, line in bad.items():
        assert handoff_entry(line, k, workers) is None, why
    root = CorpusRoot.open(tmp_path / "root")
    lines = [json.dumps(g).encode() for g in good[:1]] + list(bad.values()) + [json.dumps(good[1]).encode()]
    root.write_bytes_atomic(b"\n".join(lines) + b"\n", "crawl/c1", HANDOFF, "r0000", f"to-{k:04d}", "from-0000.jsonl")
    inbox, refused = _inbox(root, "crawl/c1", 1, k, workers)
    assert refused == len(bad)
    assert [e["url"] for e in inbox] == [f"http://{mine}/a", f"https://{mine}/b?x=1"]
    assert [e["depth"] for e in inbox] == [2, 0]
