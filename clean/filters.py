"""Quality filters: Gopher quality and repetition, C4, FineWeb — with their published thresholds.

Each rule computes a signal, and a document failing a rule gets a named drop reason
and the signal that tripped. The signals of kept documents are stored as columns, so
users can re-filter without re-extracting. Definitions follow datatrove's filters.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd

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
    "mean_word_length",
    "symbol_word_ratio",
    "bullet_lines_ratio",
    "ellipsis_lines_ratio",
    "alpha_words_ratio",
    "stop_words",
    "dup_line_frac",
    "dup_para_frac",
    "dup_line_char_frac",
    "dup_para_char_frac",
    "top_2gram_frac",
    "top_3gram_frac",
    "top_4gram_frac",
    "dup_5gram_frac",
    "dup_10gram_frac",
    "line_punct_ratio",
    "short_line_ratio",
    "char_dup_ratio",
    "newline_word_ratio",
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
    unique = set(items)
    total_chars = sum(map(len, items))
    dup_chars = total_chars - sum(map(len, unique))  # every occurrence after the first is a repeat
    return (len(items) - len(unique)) / len(items), dup_chars / (total_chars or 1)


def _ngram_repetition(ids: np.ndarray, lens: np.ndarray) -> tuple[dict[int, float], dict[int, float]]:
    """Gopher's n-gram signals: the share of characters in the most frequent n-gram
    (n = 2, 3, 4; a tie goes to the smallest hash) and inside n-grams that repeat an
    earlier one (n = 5 … 10), over word ids.

    An n-gram can only repeat where its (n-1)-gram repeats, so each n hashes only the
    positions whose shorter n-gram occurs more than once."""
    top = {n: 0.0 for n, _ in TOP_NGRAMS}
    dup = {n: 0.0 for n, _ in DUP_NGRAMS}
    total = max(int(lens.sum()), 1)
    words = ids.view(np.int64)  # small ids: the same numbers
    pos = np.flatnonzero(np.bincount(words)[words] >= 2)  # words that repeat
    h = ids[pos]
    for n in range(2, DUP_NGRAMS[-1][0] + 1):
        inside = pos + n <= len(ids)
        pos, h = pos[inside], h[inside]
        if len(pos) < 2:
            break
        h = h * np.uint64(1_000_003) + ids[pos + n - 1]  # polynomial hash of the n-gram at each position
        codes, uniques = pd.factorize(h)  # numbered by first occurrence
        counts = np.bincount(codes)
        if n in top and counts.max() > 1:
            most = counts.max()
            tied = np.flatnonzero(counts == most)
            first = int(pos[np.argmax(codes == tied[np.argmin(uniques[tied])])])
            top[n] = float(lens[first : first + n].sum() * most / total)
        if n in dup:
            later = pos[np.diff(np.maximum.accumulate(codes), prepend=-1) == 0]  # not a first occurrence
            if len(later):
                cover = np.zeros(len(ids) + 1, dtype=np.int32)
                cover[later] += 1  # the starts are distinct, and so are their ends
                cover[later + n] -= 1
                dup[n] = float(lens[np.cumsum(cover[:-1]) > 0].sum() / total)
        repeated = counts[codes] >= 2
        pos, h = pos[repeated], h[repeated]
    return top, dup


def _word_ids(words: list[str], counts: Counter) -> tuple[np.ndarray, np.ndarray]:
    """(ids numbered 1, 2, … by first occurrence, each word's length); ``counts`` is ``Counter(words)``,
    whose keys are in order of first occurrence."""
    vocab = {w: i for i, w in enumerate(counts, 1)}
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.uint64, count=len(words))
    lens = np.fromiter(map(len, counts), dtype=np.int64, count=len(counts))
    return ids, lens[ids - np.uint64(1)]


def signals_and_verdict(text: str, lang: str, cfg: CleanConfig) -> tuple[str, dict, Drop | None]:
    """(text after C4 line removal, signals, the first rule the document fails or None)."""
    sig: dict[str, float] = {}
    word_rules = lang not in NO_SPACE_LANGS
    words = text.split()
    n_words = len(words)
    lines = text.split("\n")
    nonempty = [line for line in map(str.strip, lines) if line]
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
        if "javascript" in low or any(p in low for p in POLICY) or max(map(len, words), default=0) > 1000:
            kept = [line for line in lines if not _c4_removes(line)]
        else:
            kept = lines
        if len(kept) != len(lines):
            text = "\n".join(kept)
            words = text.split()
            n_words = len(words)
            lines = kept
            nonempty = [line for line in map(str.strip, lines) if line]

    # ---- Gopher quality
    counts = Counter(words) if word_rules else Counter(text.replace("\n", ""))  # the units repetition counts
    if word_rules and words:
        sig["mean_word_length"] = sum(map(len, words)) / n_words
        sig["symbol_word_ratio"] = sum(text.count(s) for s in SYMBOLS) / n_words
        sig["alpha_words_ratio"] = sum(c for w, c in counts.items() if w.isalpha() or any(map(str.isalpha, w))) / n_words
        sig["stop_words"] = float(sum(c for w, c in counts.items() if w.lower() in STOP_WORDS))
    if nonempty:
        sig["bullet_lines_ratio"] = sum(map(str.startswith, nonempty, repeat(BULLETS))) / len(nonempty)
        sig["ellipsis_lines_ratio"] = sum(map(str.endswith, nonempty, repeat(("...", "…")))) / len(nonempty)
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
    ids, lens = _word_ids(words if word_rules else list(text.replace("\n", "")), counts)
    top_fracs, dup_fracs = _ngram_repetition(ids, lens) if cfg.gopher_repetition else ({}, {})
    for n, _ in TOP_NGRAMS:
        sig[f"top_{n}gram_frac"] = top_fracs.get(n, 0.0)
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
        sig["line_punct_ratio"] = sum(map(str.endswith, nonempty, repeat(END_PUNCT))) / len(nonempty)
        sig["short_line_ratio"] = sum(1 for n in map(len, nonempty) if n <= FW_SHORT_LINE_LEN) / len(nonempty)
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
