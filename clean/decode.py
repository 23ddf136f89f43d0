"""Bytes → text: the HTTP header's charset, then <meta charset>, then detection; mojibake repaired."""

from __future__ import annotations

import re
import unicodedata

import ftfy
from ftfy.badness import BADNESS_RE, is_bad
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
    if has_mojibake(text):
        text = ftfy.fix_text(text, normalization=None, fix_line_breaks=False)
    return unicodedata.normalize("NFC", text)


def _anchor_class() -> tuple[re.Pattern | None, int]:
    """A class of characters every match of ftfy's badness pattern contains, and the longest match.

    Each alternative of the pattern has a character class (or literal) it cannot match
    without, made only of non-ASCII characters; the smallest such class of each
    alternative, together. None where ftfy's pattern is not of that shape."""
    try:
        import re._constants as C
        import re._parser as P
    except ImportError:  # Python < 3.11
        import sre_constants as C
        import sre_parse as P

    def closed(op, av) -> set[str] | None:
        if op is C.LITERAL:
            return {chr(av)}
        if op is C.IN and all(o in (C.LITERAL, C.RANGE) for o, _ in av):
            return {chr(c) for o, a in av for c in ([a] if o is C.LITERAL else range(a[0], a[1] + 1))}
        return None

    if BADNESS_RE.flags & re.IGNORECASE:
        return None, 0
    tree = P.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    if len(tree) != 1 or tree[0][0] is not C.BRANCH:
        return None, 0
    anchors: set[str] = set()
    for branch in tree[0][1][1]:
        needed = [s for op, av in branch if (s := closed(op, av)) and all(ord(c) > 127 for c in s)]
        if not needed:
            return None, 0
        anchors |= min(needed, key=len)
    return re.compile("[" + "".join(sorted(map(re.escape, anchors))) + "]"), tree.getwidth()[1]


MOJIBAKE_ANCHORS, _WIDTH = _anchor_class()


def has_mojibake(text: str) -> bool:
    """ftfy's ``is_bad(text)``, searched only near the characters a match must contain."""
    if text.isascii():
        return False
    if MOJIBAKE_ANCHORS is None:
        return is_bad(text)
    reach = _WIDTH - 1
    start = end = -1
    for m in MOJIBAKE_ANCHORS.finditer(text):
        p = m.start()
        if p - reach > end:  # a new window: search the one before
            if end >= 0 and BADNESS_RE.search(text, start, end):
                return True
            start = max(p - reach, 0)
        end = p + reach + 1
    return end >= 0 and bool(BADNESS_RE.search(text, start, end))


def looks_binary(body: bytes) -> bool:
    """A payload that is not text, whatever its Content-Type says."""
    head = body[:4096]
    if not head:
        return False
    if head.count(b"\x00") > 0:
        return True
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12, 27))
    return ctrl / len(head) > 0.1
