"""Bytes → text: the HTTP header's charset, then <meta charset>, then detection; mojibake repaired."""
from __future__ import annotations

import unicodedata

import ftfy
from w3lib.encoding import html_to_unicode


def _detect(body: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()
    return best.encoding if best else None


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, encoding used)."""
    encoding, text = html_to_unicode(content_type, body, auto_detect_fun=_detect)
    return text, encoding


def fix_mojibake(text: str) -> str:
    """ftfy's repair of text decoded with the wrong codec (run on extracted text: HTML is 10x larger)."""
    from ftfy.badness import is_bad

    if not text.isascii() and is_bad(text):  # mojibake needs non-ASCII characters; the check is a C-speed scan
        text = ftfy.fix_text(text, normalization=None, fix_line_breaks=False)
    return unicodedata.normalize("NFC", text)


def looks_binary(body: bytes) -> bool:
    """A payload that is not text, whatever its Content-Type says."""
    head = body[:4096]
    if not head:
        return False
    if head.count(b"\x00") > 0:
        return True
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12, 27))
    return ctrl / len(head) > 0.1
