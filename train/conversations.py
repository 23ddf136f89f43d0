"""Conversations synthesized from the corpus itself, so fine-tuning needs nothing from outside.

Each page of a shard set with a title and an explanatory paragraph becomes one exchange:
the user asks about the page's subject, taken from its title ("What is VACUUM?", "Explain
Pattern Matching.", ...: the form is picked by a hash of the URL), and the assistant answers
with the page's first paragraph that reads as prose (at least 12 words, ending a sentence),
cropped to two sentences (short answers, as a chat model gives); where the paragraph goes
on, the user asks "Tell me more." and the next two sentences answer. They are documentation answers, not a chat model's: enough
to teach the format, the turn-taking and the end of a turn, which is what the tests and the
demo fine-tune for. Written as the common chat JSONL, so ``webmill sft --data`` reads them
like any user file.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Iterator

import pyarrow.parquet as pq

QUESTIONS = ("What is {t}?", "Explain {t}.", "Tell me about {t}.", "What does the documentation say about {t}?")
_NUMBERING = re.compile(r"^\s*(?:chapter\s+)?[\dA-Z]{0,3}(?:\.\d+)*\.?\s+", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def subject(title: str) -> str | None:
    """The subject a page's title names: section numbers and the site's name cut off."""
    t = (title or "").replace("\xa0", " ").strip()
    for sep in (" — ", " | ", " - "):  # "OpenSSL.SSL — Python library reference": the page, then the site
        if sep in t:
            t = t.split(sep)[0].strip()
    if ": " in t:  # "PostgreSQL: Documentation: 15: 9.7. Pattern Matching": a breadcrumb, the page last
        t = t.split(": ")[-1].strip()
    t = _NUMBERING.sub("", t).strip(" .")
    return t if 2 <= len(t) <= 80 and any(c.isalpha() for c in t) else None


def answer(text: str, title: str) -> tuple[str | None, str | None]:
    """The page's first paragraph that reads as prose, cropped to two sentences (360 characters),
    and the next two sentences of it when they read as prose too (else None). What comes before
    the title's last mention near the top (navigation, the title itself) is cut."""
    title = " ".join((title or "").split())
    text = text or ""
    head = text[:1500].replace("\xa0", " ")
    for mark in (title, subject(title)):  # the whole title where the page repeats it, else its subject
        cut = head.rfind(mark) if mark else -1
        if cut >= 0:
            text = text[cut + len(mark) :]
            break
    for para in text.split("\n"):
        para = " ".join(para.split())
        sentences = _SENTENCE_END.split(para)
        first, rest = _take(sentences), _take(sentences[2:])
        if first:
            return first, rest
    return None, None


def _take(sentences: list[str]) -> str | None:
    """Up to two sentences, at most 360 characters, if they make at least 12 words of prose."""
    out = ""
    for sentence in sentences[:2]:
        if len(out) + len(sentence) > 360:
            break
        out = f"{out} {sentence}".strip()
    return out if len(out.split()) >= 12 and out.endswith((".", "!", "?")) else None


def conversation(title: str, text: str, url: str) -> dict | None:
    """One exchange about the page's subject; a second turn ("Tell me more.") where the paragraph
    goes on, so that the model also learns a conversation of several turns."""
    t = subject(title)
    first, more = answer(text, title) if t else (None, None)
    if not first:
        return None
    form = QUESTIONS[hashlib.blake2b(url.encode(), digest_size=2).digest()[0] % len(QUESTIONS)]
    if form.startswith("What is") and len(t.split()) > 4:
        form = QUESTIONS[1]  # "What is Structure of the Bootstrap BKI File?" reads badly
    messages = [{"role": "user", "content": form.format(t=t)}, {"role": "assistant", "content": first}]
    if more:
        messages += [{"role": "user", "content": "Tell me more."}, {"role": "assistant", "content": more}]
    return {"messages": messages}


def from_parts(fs, paths: list[str], limit: int) -> Iterator[dict]:
    """Conversations from the pages of these Parquet parts, one row group at a time, one per
    subject (the first page that answers it), at most ``limit``."""
    seen: set[str] = set()  # subjects, bounded by ``limit``
    for path in paths:
        with fs.open_input_file(path) as f:
            pf = pq.ParquetFile(f)
            for g in range(pf.num_row_groups):
                rows = pf.read_row_group(g, columns=["title", "text", "url"]).to_pylist()
                for r in rows:
                    c = conversation(r["title"], r["text"], r["url"])
                    if c is None or c["messages"][0]["content"] in seen:
                        continue
                    seen.add(c["messages"][0]["content"])
                    yield c
                    if len(seen) >= limit:
                        return


def write_jsonl(conversations: Iterator[dict], out) -> int:
    n = 0
    for c in conversations:
        out.write((json.dumps(c, ensure_ascii=False) + "\n").encode())
        n += 1
    return n
