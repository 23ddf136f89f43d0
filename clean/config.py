"""The ``[clean]`` table: extraction, language id, quality filters, PII."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field


@dataclass
class CleanConfig:
    favor_precision: bool = field(True, "trafilatura favor_precision (as FineWeb)")
    include_tables: bool = field(True, "keep table text")
    include_comments: bool = field(False, "keep comment sections")
    dedup_lines: bool = field(False, "trafilatura's deduplication of repeated boilerplate")
    timeout: float = field(10.0, "seconds per document before it counts as 'timeout'", min=0.1)
    languages: list[str] = field([], "languages kept (ISO 639-1); empty keeps all")
    min_lang_score: float = field(0.0, "minimum language-id confidence", min=0.0, max=1.0)
    lang_chars: int = field(1000, "characters of text the language id reads", min=50)
    gopher_quality: bool = field(True, "Gopher quality rules")
    gopher_repetition: bool = field(True, "Gopher repetition rules")
    c4: bool = field(True, "C4 rules")
    c4_curly_bracket: bool = field(True, "C4: drop documents containing '{' (code)")
    c4_min_sentences: int = field(5, "C4: fewest sentences", min=0)
    fineweb: bool = field(True, "FineWeb custom rules")
    min_words: int = field(50, "Gopher: fewest words", min=0)
    max_words: int = field(100_000, "Gopher: most words", min=1)
    pii: bool = field(True, "replace emails and public IP addresses")
    email_placeholder: str = field("email@example.com", "replacement for email addresses")
    ip_placeholder: str = field("0.0.0.0", "replacement for public IP addresses")
    unit_bytes: int = field(
        32 << 20,
        "bytes of a WARC file one task cleans (a unit is a byte range; units depend on the file, never on the cluster)",
        min=1 << 16,
    )
    max_html_bytes: int = field(5 << 20, "larger payloads are dropped as 'too_large'", min=1024)
