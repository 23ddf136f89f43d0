"""Quality filters: Gopher quality and repetition, C4, FineWeb — with their published thresholds.

Each rule computes a signal, and a document failing a rule gets a named drop reason
and the signal that tripped. The signals of kept documents are stored as columns, so
users can re-filter without re-extracting. Definitions follow datatrove's filters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from webmill.clean.config import CleanConfig

# Gopher (Rae et al. 2021), as datatrove's GopherQualityFilter / GopherRepetitionFilter
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}
SYMBOLS = ("#", "...", "…")
BULLETS = ("•", "‣", "⁃", "◦", "-", "*", "·", "●", "○")
TOP_NGRAMS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUP_NGRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
# C4 (Raffel et al. 2020), as FineWeb used it (no terminal-punctuation line filter)
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
END_PUNCT = (".", "?", "!", '"', "'", "。", "！", "？", "…", "”", "’")
# FineWeb custom filters
FW_LINE_PUNCT = 0.12
FW_SHORT_LINE_LEN, FW_SHORT_LINE = 30, 0.67
FW_CHAR_DUP = 0.01
FW_NEWLINE_WORD = 0.3

NO_SPACE_LANGS = {"ja", "zh", "th", "lo", "km", "my"}  # no spaces between words: word rules do not apply

SIGNALS = [
    "mean_word_length", "symbol_word_ratio", "bullet_lines_ratio", "ellipsis_lines_ratio", "alpha_words_ratio",
    "stop_words", "dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac",
    "top_2gram_frac", "top_3gram_frac", "top_4gram_frac", "dup_5gram_frac", "dup_10gram_frac",
    "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "newline_word_ratio",
]

_WORD = re.compile(r"\w+", re.UNICODE)


def _c4_removes(line: str) -> bool:
    """C4's line rules: a line mentioning javascript or a policy, or holding a word over 1,000 characters."""
    low = line.lower()
    return "javascript" in low or any(p in low for p in POLICY) or max((len(w) for w in line.split()), default=0) > 1000


@dataclass
class Drop:
    reason: str
    signal: str
    value: float


def _dups(items: list[str]) -> tuple[float, float]:
    """(share of items that repeat an earlier one, share of their characters)."""
    if not items:
        return 0.0, 0.0
    seen, dup_n, dup_chars = set(), 0, 0
    for x in items:
        if x in seen:
            dup_n += 1
            dup_chars += len(x)
        else:
            seen.add(x)
    total_chars = sum(len(x) for x in items) or 1
    return dup_n / len(items), dup_chars / total_chars


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A polynomial hash of every n-gram of word ids (vectorized over positions)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    for k in range(n):
        h = h * np.uint64(1_000_003) + ids[k:len(ids) - n + 1 + k]
    return h


def _top_ngram_frac(ids: np.ndarray, lens: np.ndarray, n: int) -> float:
    """Share of characters in the most frequent n-gram (Gopher)."""
    if len(ids) < n:
        return 0.0
    h = _ngram_hashes(ids, n)
    values, first, counts = np.unique(h, return_index=True, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] <= 1:
        return 0.0
    i = int(first[top])
    return float(lens[i:i + n].sum() * counts[top] / max(lens.sum(), 1))


def _dup_ngram_frac(ids: np.ndarray, lens: np.ndarray, n: int) -> float:
    """Share of characters inside n-grams that repeat an earlier n-gram (Gopher)."""
    if len(ids) < n:
        return 0.0
    h = _ngram_hashes(ids, n)
    _, first = np.unique(h, return_index=True)
    dup = np.ones(len(h), dtype=bool)
    dup[first] = False
    starts = np.flatnonzero(dup)
    if not len(starts):
        return 0.0
    cover = np.zeros(len(ids) + 1, dtype=np.int32)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + n, -1)
    covered = np.cumsum(cover[:-1]) > 0
    return float(lens[covered].sum() / max(lens.sum(), 1))


def signals_and_verdict(text: str, lang: str, cfg: CleanConfig) -> tuple[str, dict, Drop | None]:
    """(text after C4 line removal, signals, the first rule the document fails or None)."""
    sig: dict[str, float] = {}
    word_rules = lang not in NO_SPACE_LANGS
    words = text.split()
    n_words = len(words)
    lines = [l for l in text.split("\n")]
    nonempty = [l.strip() for l in lines if l.strip()]
    drop: Drop | None = None

    def fail(reason: str, signal: str, value: float) -> None:
        nonlocal drop
        if drop is None:
            drop = Drop(reason, signal, float(value))

    # ---- C4: line-level removal first, then document rules
    if cfg.c4:
        low = text.lower()
        if "lorem ipsum" in low:
            fail("c4_lorem_ipsum", "lorem_ipsum", 1)
        # a line can only be removed if its trigger occurs somewhere in the text: look once, then per line
        if "javascript" in low or any(p in low for p in POLICY) or any(len(w) > 1000 for w in words):
            kept = [line for line in lines if not _c4_removes(line)]
        else:
            kept = lines
        if len(kept) != len(lines):
            text = "\n".join(kept)
            words = text.split()
            n_words = len(words)
            lines = kept
            nonempty = [l.strip() for l in lines if l.strip()]

    # ---- Gopher quality
    if word_rules and words:
        sig["mean_word_length"] = sum(len(w) for w in words) / n_words
        sig["symbol_word_ratio"] = sum(text.count(s) for s in SYMBOLS) / n_words
        sig["alpha_words_ratio"] = sum(1 for w in words if w.isalpha() or any(c.isalpha() for c in w)) / n_words
        sig["stop_words"] = float(sum(1 for w in words if w.lower() in STOP_WORDS))
    if nonempty:
        sig["bullet_lines_ratio"] = sum(1 for l in nonempty if l.startswith(BULLETS)) / len(nonempty)
        sig["ellipsis_lines_ratio"] = sum(1 for l in nonempty if l.endswith(("...", "…"))) / len(nonempty)
    if cfg.gopher_quality:
        if word_rules:
            if n_words < cfg.min_words:
                fail("gopher_short_doc", "n_words", n_words)
            elif n_words > cfg.max_words:
                fail("gopher_long_doc", "n_words", n_words)
            elif not 3 <= sig["mean_word_length"] <= 10:
                fail("gopher_mean_word_length", "mean_word_length", sig["mean_word_length"])
            elif sig["symbol_word_ratio"] > 0.1:
                fail("gopher_symbol_word_ratio", "symbol_word_ratio", sig["symbol_word_ratio"])
            elif sig["alpha_words_ratio"] < 0.8:
                fail("gopher_below_alpha_threshold", "alpha_words_ratio", sig["alpha_words_ratio"])
            elif lang == "en" and sig["stop_words"] < 2:
                fail("gopher_enough_stop_words", "stop_words", sig["stop_words"])
        elif len(text) < cfg.min_words * 2:
            fail("gopher_short_doc", "n_chars", len(text))
        if drop is None and sig.get("bullet_lines_ratio", 0) > 0.9:
            fail("gopher_bullet_lines", "bullet_lines_ratio", sig["bullet_lines_ratio"])
        if drop is None and sig.get("ellipsis_lines_ratio", 0) > 0.3:
            fail("gopher_ellipsis_lines", "ellipsis_lines_ratio", sig["ellipsis_lines_ratio"])

    # ---- Gopher repetition
    paras = [p.strip() for p in re.split(r"\n{2,}", text) if p.strip()]
    sig["dup_para_frac"], sig["dup_para_char_frac"] = _dups(paras)
    sig["dup_line_frac"], sig["dup_line_char_frac"] = _dups(nonempty)
    rep_words = words if word_rules else list(text.replace("\n", ""))
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab) + 1) for w in rep_words), dtype=np.uint64, count=len(rep_words))
    lens = np.fromiter((len(w) for w in rep_words), dtype=np.int64, count=len(rep_words))
    for n, _ in TOP_NGRAMS:
        sig[f"top_{n}gram_frac"] = _top_ngram_frac(ids, lens, n) if cfg.gopher_repetition else 0.0
    dup_fracs = {n: _dup_ngram_frac(ids, lens, n) for n, _ in DUP_NGRAMS} if cfg.gopher_repetition else {}
    sig["dup_5gram_frac"], sig["dup_10gram_frac"] = dup_fracs.get(5, 0.0), dup_fracs.get(10, 0.0)
    if cfg.gopher_repetition and drop is None:
        if sig["dup_para_frac"] > 0.3:
            fail("gopher_dup_para_frac", "dup_para_frac", sig["dup_para_frac"])
        elif sig["dup_para_char_frac"] > 0.2:
            fail("gopher_dup_para_char_frac", "dup_para_char_frac", sig["dup_para_char_frac"])
        elif sig["dup_line_frac"] > 0.3:
            fail("gopher_dup_line_frac", "dup_line_frac", sig["dup_line_frac"])
        elif sig["dup_line_char_frac"] > 0.2:
            fail("gopher_dup_line_char_frac", "dup_line_char_frac", sig["dup_line_char_frac"])
        else:
            for n, thr in TOP_NGRAMS:
                if sig[f"top_{n}gram_frac"] > thr:
                    fail(f"gopher_top_{n}gram", f"top_{n}gram_frac", sig[f"top_{n}gram_frac"])
                    break
            else:
                for n, thr in DUP_NGRAMS:
                    if dup_fracs[n] > thr:
                        fail(f"gopher_duplicated_{n}gram", f"dup_{n}gram_frac", dup_fracs[n])
                        break

    # ---- C4 document rules
    if cfg.c4 and drop is None:
        if "{" in text and cfg.c4_curly_bracket:
            fail("c4_curly_bracket", "curly_bracket", 1)
        elif word_rules and len(re.findall(r"[.!?](?:\s|$)", text)) < cfg.c4_min_sentences:
            fail("c4_too_few_sentences", "sentences", len(re.findall(r"[.!?](?:\s|$)", text)))

    # ---- FineWeb custom rules
    if nonempty:
        sig["line_punct_ratio"] = sum(1 for l in nonempty if l.endswith(END_PUNCT)) / len(nonempty)
        sig["short_line_ratio"] = sum(1 for l in nonempty if len(l) <= FW_SHORT_LINE_LEN) / len(nonempty)
        sig["char_dup_ratio"] = sig["dup_line_char_frac"]
    sig["newline_word_ratio"] = text.count("\n") / max(n_words, 1)
    if cfg.fineweb and drop is None and nonempty:
        if sig["line_punct_ratio"] < FW_LINE_PUNCT:
            fail("fineweb_line_punct_ratio", "line_punct_ratio", sig["line_punct_ratio"])
        elif sig["short_line_ratio"] > FW_SHORT_LINE:
            fail("fineweb_short_line_ratio", "short_line_ratio", sig["short_line_ratio"])
        elif sig["char_dup_ratio"] > FW_CHAR_DUP:
            fail("fineweb_char_dup_ratio", "char_dup_ratio", sig["char_dup_ratio"])
        elif word_rules and sig["newline_word_ratio"] > FW_NEWLINE_WORD:
            fail("fineweb_newline_word_ratio", "newline_word_ratio", sig["newline_word_ratio"])

    for name in SIGNALS:
        sig.setdefault(name, None)
    return text, sig, drop
