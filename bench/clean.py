"""Extraction speed: webmill's clean stage vs datatrove's WarcReader + Trafilatura, and the raw loop.

All read the same WARC files (a webmill crawl of real sites served on 127.0.0.1,
rolled into several files so every pipeline can use every core) with the same
trafilatura settings (favor_precision, no comments, tables, no line dedup).
webmill's stage runs trafilatura with its pruning expressions compiled to Python and C-level
element classes (webmill.clean.faster_trafilatura: the same text, faster); datatrove and
the first raw loop run trafilatura as it ships, a second raw loop shows the speed-up alone.
webmill's stage also identifies the language, applies the Gopher/C4/FineWeb filters,
scrubs PII and writes documents and exclusions through the shard store; so a second
datatrove pipeline does that work too, with datatrove's own steps (its language
filter's fastText call is made on the lid.176 model file webmill reads, since
datatrove's LanguageFilter downloads its model and asks for a fasttext build that
clashes with the one webmill uses).

    python bench/clean.py [--sites postgresql-15,sqlite-3,...] [--workers 2] [--repeat 3]
                          [--save-warcs DIR | --warcs DIR]

Each round runs every pipeline once, in turn, so a slow minute of the machine falls on all of
them; with ``--repeat`` the lines give each round's ratios and then their medians. Two runs
compare on the same input with ``--save-warcs DIR`` on the first (the crawl's WARC files are
kept there) and ``--warcs DIR`` on the next (no crawl: the files there are the input).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import tempfile
import time

from sites import crawl_sites, html_records

_LID = None


def label_language(doc) -> bool:
    """datatrove's LanguageFilter (FT176LID.predict, every language kept) on webmill's model file."""
    global _LID
    if _LID is None:
        import fasttext

        from webmill.clean.langid import model_path

        _LID = fasttext.load_model(model_path())
    labels, scores = _LID.predict(doc.text.replace("\n", " "), k=-1)
    label, score = max(zip(labels, scores), key=lambda pair: pair[1])
    doc.metadata["language"], doc.metadata["language_score"] = label.split("__")[2], float(score)
    return True


def run_datatrove(warc_dir: str, out_dir: str, tasks: int, workers: int, same_work: bool) -> float:
    """Seconds for datatrove's WarcReader + Trafilatura, or with the filters, PII and Parquet after it."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter, LambdaFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import ParquetWriter

    steps = [WarcReader(warc_dir, glob_pattern="*.warc.gz"), Trafilatura(favour_precision=True, deduplicate=False, timeout=10.0)]
    if same_work:  # FineWeb's order: language, Gopher repetition and quality, C4, FineWeb; then PII and Parquet
        steps += [
            LambdaFilter(label_language),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(filter_no_terminal_punct=False),
            FineWebQualityFilter(),
            PIIFormatter(),
            ParquetWriter(os.path.join(out_dir, "docs")),
        ]
    t = time.perf_counter()
    LocalPipelineExecutor(pipeline=steps, tasks=tasks, workers=workers, logging_dir=os.path.join(out_dir, "logs")).run()
    return time.perf_counter() - t


def raw_loop(records: list) -> float:
    """Seconds for trafilatura.extract over every record, in this process."""
    import trafilatura

    t = time.perf_counter()
    for url, body in records:
        trafilatura.extract(body, url=url, favor_precision=True, include_comments=False, include_tables=True, deduplicate=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", default="postgresql-15,sqlite-3,libstdcxx-manual,debian-handbook")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the ratios printed last are their medians")
    ap.add_argument("--save-warcs", metavar="DIR", help="keep the crawl's WARC files in DIR for a later --warcs run")
    ap.add_argument("--warcs", metavar="DIR", help="no crawl: the *.warc.gz files in DIR are the input")
    args = ap.parse_args()

    from webmill.clean import faster_trafilatura
    from webmill.clean.config import CleanConfig
    from webmill.clean.stage import run_clean
    from webmill.clean.warcs import uri_inputs
    from webmill.runtime import ensure_ray
    from webmill.shards import CorpusRoot

    work = tempfile.mkdtemp(prefix="wm-clean-bench-")
    try:
        if args.warcs:
            warc_dir, source = os.path.abspath(args.warcs), f"the WARC files in {args.warcs}"
        else:
            crawl_root = os.path.join(work, "crawl-root")
            crawl_id = crawl_sites(args.sites.split(","), crawl_root)
            warc_dir, source = os.path.join(crawl_root, "crawl", crawl_id, "warc"), args.sites
            if args.save_warcs:
                shutil.copytree(warc_dir, args.save_warcs, dirs_exist_ok=True)
        warcs = sorted(glob.glob(os.path.join(warc_dir, "*.warc.gz")))
        if not warcs:
            raise SystemExit(f"bench/clean.py: no *.warc.gz files in {warc_dir}")
        records = html_records(warcs)
        n = len(records)
        print(
            f"input: {n} HTML responses in {len(warcs)} WARC files ({source}), {args.workers} workers, {args.repeat} round(s)", flush=True
        )

        rounds = []
        for i in range(args.repeat):
            # raw trafilatura.extract loop, one core: the per-core limit of trafilatura as it ships
            raw = n / raw_loop(records)
            # datatrove, local executor: extraction only, then the same work as webmill's stage
            assert not faster_trafilatura.installed()  # its workers start from this process
            dt = n / run_datatrove(warc_dir, os.path.join(work, f"datatrove-{i}"), len(warcs), args.workers, same_work=False)
            dt_same = n / run_datatrove(warc_dir, os.path.join(work, f"datatrove-same-{i}"), len(warcs), args.workers, same_work=True)
            # the same raw loop with webmill's speed-up of trafilatura (the same text)
            faster_trafilatura.install()
            raw_faster = n / raw_loop(records)
            faster_trafilatura.uninstall()
            # webmill: the clean stage on Ray Data, into a fresh root each round
            ray = ensure_ray(None)
            root = CorpusRoot.open(os.path.join(work, f"root-{i}"))
            t = time.perf_counter()
            s = run_clean(root, ray, uri_inputs(warcs), "bench", CleanConfig())
            wm = s["documents_in"] / (time.perf_counter() - t)
            rounds.append((raw, raw_faster, dt, dt_same, wm))
            if args.repeat > 1:
                print(
                    f"round {i + 1}: webmill {wm:.1f}, datatrove {dt:.1f} and {dt_same:.1f} docs/s; "
                    f"ratios {wm / dt:.2f} and {wm / dt_same:.2f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    raw, raw_faster, dt, dt_same, wm = (med(r[k] for r in rounds) for k in range(5))
    extraction, same = med(r[4] / r[2] for r in rounds), med(r[4] / r[3] for r in rounds)
    of = " (medians)" if args.repeat > 1 else ""
    print(f"raw trafilatura.extract loop (1 core):   {raw:7.1f} docs/s   (x{args.workers} cores = {raw * args.workers:.1f}, the limit)")
    print(
        f"  the same, trafilatura sped up by webmill: {raw_faster:6.1f} docs/s   "
        f"(x{args.workers} cores = {raw_faster * args.workers:.1f}, webmill's limit)"
    )
    print(f"datatrove WarcReader + Trafilatura:      {dt:7.1f} docs/s")
    print(f"datatrove, the same work as webmill:     {dt_same:7.1f} docs/s   (+ language id, Gopher, C4, FineWeb, PII, Parquet)")
    print(f"webmill clean stage:                     {wm:7.1f} docs/s   (+ language id, Gopher, C4, FineWeb, PII, Parquet)")
    print(f"ratio webmill/datatrove extraction:      {extraction:7.2f}   (target >= 1.0){of}")
    print(f"ratio webmill/datatrove, the same work:  {same:7.2f}{of}")


if __name__ == "__main__":
    main()
