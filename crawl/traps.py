"""Spider-trap guards: URLs a crawler should not follow, each with a named reason."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import parse_qsl, urlsplit

_DATE = re.compile(r"(?:19|20)\d\d[/_-](?:0?[1-9]|1[0-2])(?:\b|[/_-])")
_DIGITS = re.compile(r"\d+")


class TrapGuard:
    """Counts URL templates per host; returns a reason for URLs that look like traps."""

    def __init__(
        self,
        max_url_length: int = 2048,
        max_repeated_segments: int = 3,
        max_query_params: int = 8,
        max_calendar_pages: int = 24,
        max_template_pages: int = 5000,
    ):
        self.max_url_length = max_url_length
        self.max_repeated_segments = max_repeated_segments
        self.max_query_params = max_query_params
        self.max_calendar_pages = max_calendar_pages
        self.max_template_pages = max_template_pages
        self._templates: Counter = Counter()

    def check(self, url: str) -> str | None:
        if len(url) > self.max_url_length:
            return "trap_url_length"
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if segments and max(Counter(segments).values()) > self.max_repeated_segments:
            return "trap_repeated_segments"
        if len(parse_qsl(parts.query, keep_blank_values=True)) > self.max_query_params:
            return "trap_query_params"
        template = (parts.netloc, _DIGITS.sub("#", parts.path + "?" + parts.query))
        self._templates[template] += 1
        seen = self._templates[template]
        if _DATE.search(parts.path + "?" + parts.query) and seen > self.max_calendar_pages:
            return "trap_calendar"
        if seen > self.max_template_pages:
            return "trap_template"
        return None
