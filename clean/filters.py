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
    """(text after C4 line removal, signals, the first rule the document fails or None).

    The rule sets run in datatrove's order, each computing its signals always (they are kept for
    every document) and checking its rules only while no earlier rule has failed."""
    doc = Doc.of(text, lang)
    doc, drop = c4_remove_lines(doc, cfg) if cfg.c4 else (doc, None)
    sig: dict[str, float] = {}
    for rules in (gopher_quality, gopher_repetition, c4_document, fineweb_rules):
        failed = rules(doc, sig, cfg, drop is None)
        drop = drop or failed
    for name in SIGNALS:
        sig.setdefault(name, None)
    return doc.text, sig, drop


@dataclass
class Doc:
    """A document as the rules see it: its words (or, in a script without spaces, its characters),
    lines and the counts repetition is measured in."""

    text: str
    lang: str
    word_rules: bool
    words: list[str]
    lines: list[str]
    nonempty: list[str]
    counts: Counter

    @classmethod
    def of(cls, text: str, lang: str) -> Doc:
        word_rules = lang not in NO_SPACE_LANGS
        words = text.split()
        lines = text.split("\n")
        counts = Counter(words) if word_rules else Counter(text.replace("\n", ""))
        return cls(text, lang, word_rules, words, lines, [line for line in map(str.strip, lines) if line], counts)


def c4_remove_lines(doc: Doc, cfg: CleanConfig) -> tuple[Doc, Drop | None]:
    """C4's line-level removal (javascript notices, policy boilerplate, over-long words), and its
    lorem-ipsum rule, which looks at the text before any line is removed."""
    low = doc.text.lower()
    drop = Drop("c4_lorem_ipsum", "lorem_ipsum", 1.0) if "lorem ipsum" in low else None
    # a line can only be removed if its trigger occurs somewhere in the text: look once, then per line
    if "javascript" in low or any(p in low for p in POLICY) or max(map(len, doc.words), default=0) > 1000:
        kept = [line for line in doc.lines if not _c4_removes(line)]
        if len(kept) != len(doc.lines):
            doc = Doc.of("\n".join(kept), doc.lang)
    return doc, drop


def gopher_quality(doc: Doc, sig: dict, cfg: CleanConfig, check: bool) -> Drop | None:
    """Gopher's quality signals (word length, symbols, alphabetic words, stop words, bullets,
    ellipses) and, if ``check``, its rules on them."""
    words, n_words, counts = doc.words, len(doc.words), doc.counts
    if doc.word_rules and words:
        sig["mean_word_length"] = sum(map(len, words)) / n_words
        sig["symbol_word_ratio"] = sum(doc.text.count(s) for s in SYMBOLS) / n_words
        sig["alpha_words_ratio"] = sum(c for w, c in counts.items() if w.isalpha() or any(map(str.isalpha, w))) / n_words
        sig["stop_words"] = float(sum(c for w, c in counts.items() if w.lower() in STOP_WORDS))
    if doc.nonempty:
        sig["bullet_lines_ratio"] = sum(map(str.startswith, doc.nonempty, repeat(BULLETS))) / len(doc.nonempty)
        sig["ellipsis_lines_ratio"] = sum(map(str.endswith, doc.nonempty, repeat(("...", "…")))) / len(doc.nonempty)
    if not (check and cfg.gopher_quality):
        return None
    if doc.word_rules:
        if n_words < cfg.min_words:
            return Drop("gopher_short_doc", "n_words", float(n_words))
        if n_words > cfg.max_words:
            return Drop("gopher_long_doc", "n_words", float(n_words))
        if not 3 <= sig["mean_word_length"] <= 10:
            return Drop("gopher_mean_word_length", "mean_word_length", float(sig["mean_word_length"]))
        if sig["symbol_word_ratio"] > 0.1:
            return Drop("gopher_symbol_word_ratio", "symbol_word_ratio", float(sig["symbol_word_ratio"]))
        if sig["alpha_words_ratio"] < 0.8:
            return Drop("gopher_below_alpha_threshold", "alpha_words_ratio", float(sig["alpha_words_ratio"]))
        if doc.lang == "en" and sig["stop_words"] < 2:
            return Drop("gopher_enough_stop_words", "stop_words", float(sig["stop_words"]))
    elif len(doc.text) < cfg.min_words * 2:
        return Drop("gopher_short_doc", "n_chars", float(len(doc.text)))
    if sig.get("bullet_lines_ratio", 0) > 0.9:
        return Drop("gopher_bullet_lines", "bullet_lines_ratio", float(sig["bullet_lines_ratio"]))
    if sig.get("ellipsis_lines_ratio", 0) > 0.3:
        return Drop("gopher_ellipsis_lines", "ellipsis_lines_ratio", float(sig["ellipsis_lines_ratio"]))
    return None


def gopher_repetition(doc: Doc, sig: dict, cfg: CleanConfig, check: bool) -> Drop | None:
    """Gopher's repetition signals (duplicated paragraphs and lines, top and duplicated n-grams;
    the n-grams only where the rule is on) and, if ``check``, its rules on them."""
    paras = [p.strip() for p in re.split(r"\n{2,}", doc.text) if p.strip()]
    sig["dup_para_frac"], sig["dup_para_char_frac"] = _dups(paras)
    sig["dup_line_frac"], sig["dup_line_char_frac"] = _dups(doc.nonempty)
    ids, lens = _word_ids(doc.words if doc.word_rules else list(doc.text.replace("\n", "")), doc.counts)
    top_fracs, dup_fracs = _ngram_repetition(ids, lens) if cfg.gopher_repetition else ({}, {})
    for n, _ in TOP_NGRAMS:
        sig[f"top_{n}gram_frac"] = top_fracs.get(n, 0.0)
    sig["dup_5gram_frac"], sig["dup_10gram_frac"] = dup_fracs.get(5, 0.0), dup_fracs.get(10, 0.0)
    if not (check and cfg.gopher_repetition):
        return None
    for signal, thr in (("dup_para_frac", 0.3), ("dup_para_char_frac", 0.2), ("dup_line_frac", 0.3), ("dup_line_char_frac", 0.2)):
        if sig[signal] > thr:
            return Drop(f"gopher_{signal}", signal, float(sig[signal]))
    for n, thr in TOP_NGRAMS:
        if sig[f"top_{n}gram_frac"] > thr:
            return Drop(f"gopher_top_{n}gram", f"top_{n}gram_frac", float(sig[f"top_{n}gram_frac"]))
    for n, thr in DUP_NGRAMS:
        if dup_fracs[n] > thr:
            return Drop(f"gopher_duplicated_{n}gram", f"dup_{n}gram_frac", float(dup_fracs[n]))
    return None


def c4_document(doc: Doc, sig: dict, cfg: CleanConfig, check: bool) -> Drop | None:
    """C4's document rules: no curly bracket (code), enough sentences. They keep no signal."""
    if not (check and cfg.c4):
        return None
    if "{" in doc.text and cfg.c4_curly_bracket:
        return Drop("c4_curly_bracket", "curly_bracket", 1.0)
    if doc.word_rules:
        sentences = len(re.findall(r"[.!?](?:\s|$)", doc.text))
        if sentences < cfg.c4_min_sentences:
            return Drop("c4_too_few_sentences", "sentences", float(sentences))
    return None


def fineweb_rules(doc: Doc, sig: dict, cfg: CleanConfig, check: bool) -> Drop | None:
    """FineWeb's own signals (lines ending in punctuation, short lines, duplicated characters,
    newlines per word) and, if ``check``, its rules on them."""
    nonempty = doc.nonempty
    if nonempty:
        sig["line_punct_ratio"] = sum(map(str.endswith, nonempty, repeat(END_PUNCT))) / len(nonempty)
        sig["short_line_ratio"] = sum(1 for n in map(len, nonempty) if n <= FW_SHORT_LINE_LEN) / len(nonempty)
        sig["char_dup_ratio"] = sig["dup_line_char_frac"]
    sig["newline_word_ratio"] = doc.text.count("\n") / max(len(doc.words), 1)
    if not (check and cfg.fineweb and nonempty):
        return None
    if sig["line_punct_ratio"] < FW_LINE_PUNCT:
        return Drop("fineweb_line_punct_ratio", "line_punct_ratio", float(sig["line_punct_ratio"]))
    if sig["short_line_ratio"] > FW_SHORT_LINE:
        return Drop("fineweb_short_line_ratio", "short_line_ratio", float(sig["short_line_ratio"]))
    if sig["char_dup_ratio"] > FW_CHAR_DUP:
        return Drop("fineweb_char_dup_ratio", "char_dup_ratio", float(sig["char_dup_ratio"]))
    if doc.word_rules and sig["newline_word_ratio"] > FW_NEWLINE_WORD:
        return Drop("fineweb_newline_word_ratio", "newline_word_ratio", float(sig["newline_word_ratio"]))
    return None
