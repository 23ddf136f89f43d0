"""Language id: accuracy and docs/s of the candidates on the real multilingual pages.

Crawls debian-handbook (en, de, fr, es, ar, ja, ko) served on 127.0.0.1, extracts each
page as the clean stage does, and labels each translated page with the language of its
folder unless its lines are mostly the English page's lines (the handbook leaves many
paragraphs untranslated; English is then the right answer and the page is left out).

    python bench/langid.py
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time

FOLDERS = {"en-US": "en", "de-DE": "de", "fr-FR": "fr", "es-ES": "es", "ar-MA": "ar", "ja-JP": "ja", "ko-KR": "ko"}


def labelled_pages(docs: list[dict]) -> list[tuple[str, str]]:
    english = {d["url"].rsplit("/", 1)[1]: set(d["text"].split("\n")) for d in docs if "/en-US/" in d["url"]}
    out = []
    for d in docs:
        folder = d["url"].split("/debian-handbook/")[1].split("/")[0]
        lang = FOLDERS.get(folder)
        if lang is None:
            continue
        if lang != "en":
            en = english.get(d["url"].rsplit("/", 1)[1])
            lines = [line for line in d["text"].split("\n") if line.strip()]
            if en is None or not lines or sum(line in en for line in lines) / len(lines) > 0.2:
                continue
        out.append((d["text"], lang))
    return out


def candidates() -> dict:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from webmill.clean.langid import detect

    py3 = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    out = {f"fastText lid.176.ftz, first {n:,} chars": (lambda t, n=n: detect(t, n)[0]) for n in (1000, 2000, 5000)}
    out.update({f"py3langid, first {n:,} chars": (lambda t, n=n: py3.classify(t[:n])[0]) for n in (2000, 5000)})
    return out


def main() -> None:
    import trafilatura
    from sites import crawl_sites, html_records

    from webmill.clean.decode import decode_html, fix_mojibake

    work = tempfile.mkdtemp(prefix="wm-langid-bench-")
    try:
        crawl_id = crawl_sites(["debian-handbook"], work)
        warcs = sorted(glob.glob(os.path.join(work, "crawl", crawl_id, "warc", "*.warc.gz")))
        docs = []
        for url, body in html_records(warcs):
            html, _ = decode_html(body, None)
            text = trafilatura.extract(html, url=url, favor_precision=True, include_tables=True) or ""
            if text.strip():
                docs.append({"url": url, "text": fix_mojibake(text)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pages = labelled_pages(docs)
    per_lang = {lang: sum(1 for _, x in pages if x == lang) for lang in FOLDERS.values()}
    print(f"{len(pages)} labelled pages {per_lang}; speed over all {len(docs)} extracted pages")
    for name, identify in candidates().items():
        identify("warm up")
        right = sum(identify(t) == lang or (lang == "ar" and identify(t) == "ary") for t, lang in pages)
        t0 = time.perf_counter()
        for d in docs:
            identify(d["text"])
        rate = len(docs) / (time.perf_counter() - t0)
        print(f"{name:36s} {right:4d}/{len(pages)} right = {100 * right / len(pages):5.1f}%   {rate:8,.0f} docs/s")


if __name__ == "__main__":
    main()
