"""Language identification with py3langid (its model ships inside the PyPI package).

Chosen by measurement on the real multilingual pages (see README: accuracy and docs/s).
"""
from __future__ import annotations

_IDENTIFIER = None


def identifier():
    global _IDENTIFIER
    if _IDENTIFIER is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _IDENTIFIER


def detect(text: str, max_chars: int = 5000) -> tuple[str, float]:
    """(ISO 639-1 code, probability). Text with no letters is 'und'."""
    sample = text[:max_chars]
    if not any(c.isalpha() for c in sample):
        return "und", 0.0
    lang, prob = identifier().classify(sample)
    return lang, float(prob)
