"""Corpus statistics per stage, from manifests where they hold the answer and
from single-column DuckDB scans where they do not (outcomes, hosts, lengths)."""

from __future__ import annotations

from collections import Counter

from webmill.insight.views import connect
from webmill.shards import jsonfile, layout
from webmill.shards.manifest import Manifest
from webmill.shards.root import CorpusRoot
from webmill.shards.training import list_shard_sets, read_manifest

CHARS_PER_TOKEN_GUESS = 4.0  # used only where no tokenizer was trained, and said so


def corpus_stats(root: CorpusRoot, *, top: int = 10) -> dict:
    con, views = connect(root)
    out: dict = {"root": root.display(), "views": sorted(views)}
    out["crawl"] = _crawl(root, con, views)
    out["clean"] = _clean(root, views)
    out["dedup"] = _dedup(root, con, views)
    out["docs"] = _docs(con, views, top)
    out["shards"] = _shards(root)
    out["damaged"] = []
    out["training"] = _training(root, out["damaged"])
    out["funnel"] = _funnel(out)
    return out


def _q(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _crawl(root, con, views) -> dict:
    if "crawl_log" not in views:
        return {"crawls": 0}
    outcomes = dict(_q(con, "SELECT outcome, count(*) FROM crawl_log GROUP BY 1 ORDER BY 2 DESC"))
    per = {}
    for ds in views["crawl_log"]:
        m = Manifest.load(root, ds)
        per[ds.split("/")[1]] = {"urls": m.rows, "bytes": m.stats.get("bytes", 0)}
    return {
        "crawls": len(per),
        "urls_attempted": sum(outcomes.values()),
        "pages_by_outcome": outcomes,
        "pages_stored": outcomes.get("stored", 0),
        "bytes": sum(p["bytes"] for p in per.values()),
        "per_crawl": per,
    }


def _clean(root, views) -> dict:
    runs, dropped, langs = {}, Counter(), Counter()
    totals = {"records": 0, "documents_in": 0, "kept": 0, "excluded": 0, "bytes_in": 0, "bytes_out": 0}
    for ds in views.get("clean_docs", []):
        m = Manifest.load(root, ds)
        st = m.stats
        run = {
            "records": st.get("records", 0),
            "documents_in": st.get("documents_in", 0),
            "kept": m.rows,
            "bytes_in": st.get("bytes_in", 0),
            "bytes_out": st.get("bytes_out", 0),
        }
        excl = ds.rsplit("/", 1)[0] + "/excluded"
        run["excluded"] = Manifest.load(root, excl).rows if root.exists(excl) else 0
        runs[ds.split("/")[1]] = run
        for k in totals:
            totals[k] += run[k]
        dropped.update(st.get("dropped") or {})
        langs.update(st.get("languages") or {})
    return {
        **totals,
        "runs": runs,
        "drop_reasons": dict(dropped.most_common()),
        "languages": dict(langs.most_common()),
        "kept_rate": round(totals["kept"] / totals["documents_in"], 4) if totals["documents_in"] else None,
    }


def _dedup(root, con, views) -> dict:
    if "dedup_docs" not in views:
        return {"runs": 0}
    docs_in = kept = 0
    kinds: Counter = Counter()
    for ds in views["dedup_docs"]:
        mj = Manifest.read_json(root, ds) or {}
        docs_in += mj.get("documents_in", 0)
        kept += Manifest.load(root, ds).rows
        kinds.update(mj.get("duplicates") or {})
    docs_in = docs_in or None  # datasets not written by `webmill dedup` do not say how many came in
    out = {
        "runs": len(views["dedup_docs"]),
        "documents_in": docs_in,
        "kept": kept,
        "duplicates": dict(kinds),
        "duplicate_rate": round(1 - kept / docs_in, 4) if docs_in else None,
    }
    if "clusters" in views:
        sizes = _q(
            con, "SELECT n, count(*) FROM (SELECT cluster, count(*) AS n FROM clusters GROUP BY 1) WHERE n > 1 GROUP BY 1 ORDER BY 1"
        )
        out["cluster_sizes"] = {int(n): int(c) for n, c in sizes}
        out["top_duplicate_hosts"] = dict(
            _q(con, "SELECT host, count(*) FILTER (WHERE NOT kept) AS d FROM clusters GROUP BY 1 HAVING d > 0 ORDER BY 2 DESC, 1 LIMIT 10")
        )
    return out


def _docs(con, views, top) -> dict:
    if "docs" not in views:
        return {"documents": 0}
    n, chars, words = _q(con, "SELECT count(*), coalesce(sum(n_chars), 0), coalesce(sum(n_words), 0) FROM docs")[0]
    out = {"documents": n, "chars": int(chars), "words": int(words)}
    if n:
        qs = _q(con, "SELECT quantile_cont(n_chars, [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) FROM docs")[0][0]
        out["length_percentiles_chars"] = dict(zip(("p10", "p25", "p50", "p75", "p90", "p99"), [round(x) for x in qs]))
        out["top_hosts"] = dict(_q(con, f"SELECT host, count(*) FROM docs GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(top)}"))
        out["languages"] = dict(_q(con, "SELECT lang, count(*) FROM docs GROUP BY 1 ORDER BY 2 DESC, 1"))
    return out


def _shards(root) -> dict:
    sets = {}
    for name in list_shard_sets(root):
        m = read_manifest(root, name)
        entry = {}
        for split, sp in m["splits"].items():
            exact = "tokens" in sp
            entry[split] = {
                "documents": sp["rows"],
                "bytes": sp["bytes"],
                "chars": sp["chars"],
                "shards": len(sp["shards"]),
                "tokens": sp["tokens"] if exact else round(sp["chars"] / CHARS_PER_TOKEN_GUESS),
                "tokens_exact": exact,
            }
        entry["tokenizer"] = (m.get("tokenizer") or {}).get("path")
        entry["seed"] = m["seed"]
        sets[name] = entry
    return sets


def _training(root, damaged: list[str]) -> dict:
    runs = {}
    for name in root.listdir(layout.RUNS):
        if root.exists(layout.run(name), "summary.json"):
            try:
                s = jsonfile.read(root, layout.run(name), "summary.json")
            except jsonfile.DamagedFile as e:  # one run's damaged summary must not hide the whole root
                damaged.append(str(e))
                continue
            keys = ("kind", "step", "max_steps", "tokens_seen", "train_loss", "val_loss", "val_unigram_entropy", "parameters", "finished")
            runs[name] = {k: s.get(k) for k in keys}
    return runs


def _funnel(s: dict) -> list[tuple[str, int]]:
    steps = [
        ("URLs attempted", s["crawl"].get("urls_attempted")),
        ("pages stored", s["crawl"].get("pages_stored")),
        ("HTML documents", s["clean"].get("documents_in")),
        ("kept by clean", s["clean"].get("kept")),
        ("after dedup", s["dedup"].get("kept")),
    ]
    if s["shards"]:
        steps.append(("in training shards", sum(v["train"]["documents"] + v["val"]["documents"] for v in s["shards"].values())))
    return [(k, int(v)) for k, v in steps if v]


def render(s: dict) -> list[str]:
    """The human-readable lines of ``webmill stats``."""
    lines = [f"corpus {s['root']}"]
    c = s["crawl"]
    if c.get("crawls"):
        lines.append(
            f"  crawl:  {c['crawls']} crawl(s), {c['urls_attempted']:,} URLs, {c['pages_stored']:,} stored, "
            f"{c['bytes'] / 1e6:.1f} MB; " + ", ".join(f"{k} {v:,}" for k, v in c["pages_by_outcome"].items())
        )
    cl = s["clean"]
    if cl["documents_in"]:
        lines.append(
            f"  clean:  {cl['kept']:,} of {cl['documents_in']:,} documents kept ({100 * cl['kept_rate']:.1f}%); "
            "dropped: " + ", ".join(f"{k} {v:,}" for k, v in list(cl["drop_reasons"].items())[:6])
        )
        lines.append("          languages: " + ", ".join(f"{k} {v:,}" for k, v in list(cl["languages"].items())[:8]))
    d = s["dedup"]
    if d.get("runs"):
        if d["documents_in"]:
            lines.append(
                f"  dedup:  {d['kept']:,} of {d['documents_in']:,} kept (duplicate rate {100 * d['duplicate_rate']:.1f}%); "
                + ", ".join(f"{k} {v:,}" for k, v in d["duplicates"].items())
            )
        else:
            lines.append(f"  dedup:  {d['kept']:,} documents")
    docs = s["docs"]
    if docs.get("documents"):
        p = docs["length_percentiles_chars"]
        lines.append(
            f"  docs:   {docs['documents']:,} documents, {docs['chars'] / 1e6:.1f}M chars; length p10/p50/p90/p99 "
            f"{p['p10']:,}/{p['p50']:,}/{p['p90']:,}/{p['p99']:,} chars"
        )
        lines.append("          top hosts: " + ", ".join(f"{k} {v:,}" for k, v in docs["top_hosts"].items()))
    for name, sh in s["shards"].items():
        tr, va = sh["train"], sh["val"]
        kind = "tokens" if tr["tokens_exact"] else "tokens (estimate: chars/4, no tokenizer yet)"
        lines.append(f"  shards {name}: train {tr['documents']:,} docs, {tr['tokens']:,} {kind}; val {va['documents']:,} docs")
    for name, r in s["training"].items():
        val = f"{r['val_loss']:.3f}" if r.get("val_loss") is not None else "n/a"
        if r.get("kind") == "sft":
            lines.append(f"  run {name} (fine-tuned): step {r['step']}/{r['max_steps']}, held-out assistant-token loss {val}")
        else:
            lines.append(f"  run {name}: step {r['step']}/{r['max_steps']}, {r['tokens_seen'] or 0:,} tokens, val loss {val}")
    for line in s.get("damaged", []):
        lines.append(f"  skipped {line}")
    return lines
