"""Text from the corpus made safe to print on a terminal.

Page titles, URLs, error texts and WARC payloads are written by strangers. Printed raw, an
ESC sequence in a title (``\\x1b]0;…\\x07``, ``\\x1b[2J``) retitles, clears or rewrites the
user's terminal, a carriage return overwrites the line before it, and a bidi override
reorders what the user reads. Every line webmill prints passes through ``printable``: such
characters come out as their Python escapes (``\\x1b``, ``\\r``, ``\\u202e``).
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL and the C1 controls, line and paragraph separators, bidi embeddings,
# overrides and isolates
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    return m.group().encode("unicode_escape").decode("ascii")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every character that could act on a terminal written as its escape."""
    return (_UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE).sub(_escape, text)
