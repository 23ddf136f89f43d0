"""One WARC response record → a document row, or an exclusion with its reason."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from datetime import datetime, timezone
from html import unescape
from urllib.parse import urlsplit

import xxhash

from webmill.clean.config import CleanConfig
from webmill.clean.decode import decode_html, fix_mojibake, looks_binary
from webmill.clean.faster_trafilatura import install as faster_trafilatura
from webmill.clean.filters import signals_and_verdict
from webmill.clean.langid import detect
from webmill.clean.pii import scrub


class ExtractTimeout(BaseException):
    """A BaseException on purpose: trafilatura runs readability and justext inside
    ``except Exception`` and would swallow a timeout raised there, then go on for minutes."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt pathological HTML after ``seconds`` (SIGALRM; only in a main thread)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def alarm(signum, frame):
        raise ExtractTimeout()

    old = signal.signal(signal.SIGALRM, alarm)
    # re-fires every 0.1 s after the first: a C call or a cleanup block that outlives one alarm
    # meets the next
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_TITLE_OPEN = re.compile(r"<title\b", re.I)
_TITLE_CLOSE = re.compile(r"</title", re.I)


def html_title(html: str) -> str | None:
    """The first <title>'s text, found by three forward searches (linear in the page: a
    lazy ``<title[^>]*>(.*?)</title>`` retried at each of many unclosed tags is quadratic)."""
    head = html[:100_000]
    m = _TITLE_OPEN.search(head)
    if m is None:
        return None
    start = head.find(">", m.end())
    close = _TITLE_CLOSE.search(head, start + 1) if start != -1 else None
    if close is None:
        return None
    return " ".join(unescape(head[start + 1 : close.start()]).split()) or None


def doc_id(url: str, digest: str | None, body: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(f"{url}\n{digest or xxhash.xxh3_128_hexdigest(body)}".encode())


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def process_record(rec: dict, cfg: CleanConfig) -> tuple[str, dict]:
    """('doc', row) or ('excluded', row). ``rec`` has url, body, content_type, date, digest, source, crawl_id."""
    url, body = rec["url"], rec["body"]
    base = {
        "id": doc_id(url, rec.get("digest"), body),
        "url": url,
        "host": (urlsplit(url).netloc or "").lower(),
        "crawl_id": rec.get("crawl_id"),
        "source": rec["source"],
        "fetched_at": parse_date(rec.get("date")),
    }

    def excluded(reason: str, signal_name: str | None = None, value: float | None = None, **extra) -> tuple[str, dict]:
        return "excluded", {
            **base,
            "drop_reason": reason,
            "signal": signal_name,
            "value": value,
            "title": extra.get("title"),
            "lang": extra.get("lang"),
            "n_words": extra.get("n_words"),
        }

    if not body or not body.strip():
        return excluded("empty")
    if len(body) > cfg.max_html_bytes:
        return excluded("too_large", "bytes", len(body))
    if looks_binary(body):
        return excluded("binary")
    try:
        html, _ = decode_html(body, rec.get("content_type"))
    except Exception:
        return excluded("decode_error")
    try:
        import trafilatura

        faster_trafilatura()
        with time_limit(cfg.timeout):
            # metadata extraction (dates through dateparser) would double the cost; the title is read below
            text = (
                trafilatura.extract(
                    html,
                    url=url,
                    favor_precision=cfg.favor_precision,
                    include_tables=cfg.include_tables,
                    include_comments=cfg.include_comments,
                    deduplicate=cfg.dedup_lines,
                )
                or ""
            )
    except ExtractTimeout:
        return excluded("timeout", "seconds", cfg.timeout)
    except RecursionError:
        return excluded("extract_error", "recursion", None)
    except Exception:
        return excluded("extract_error")
    title = html_title(html)
    text = fix_mojibake(text)
    if not text.strip():
        return excluded("no_text", title=title)
    lang, lang_score = detect(text, cfg.lang_chars)
    if lang == "und":
        return excluded("no_language", title=title)
    if cfg.languages and lang not in cfg.languages:
        return excluded("language", "lang_score", lang_score, title=title, lang=lang)
    if lang_score < cfg.min_lang_score:
        return excluded("lang_score", "lang_score", lang_score, title=title, lang=lang)
    text, signals, drop = signals_and_verdict(text, lang, cfg)
    n_words = len(text.split())
    if drop is not None:
        return excluded(drop.reason, drop.signal, drop.value, title=title, lang=lang, n_words=n_words)
    n_email = n_ip = 0
    if cfg.pii:
        text, n_email, n_ip = scrub(text, cfg.email_placeholder, cfg.ip_placeholder)
    return "doc", {
        **base,
        "title": title,
        "text": text,
        "lang": lang,
        "lang_score": lang_score,
        "n_chars": len(text),
        "n_words": n_words,
        "date": None,
        "pii_emails": n_email,
        "pii_ips": n_ip,
        **signals,
    }
