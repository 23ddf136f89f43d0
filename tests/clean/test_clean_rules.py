"""The per-document rules, each against a plain reference: filters, mojibake check, PII, language id."""

import random

import pytest
from ftfy.badness import is_bad

from webmill.clean.config import CleanConfig
from webmill.clean.decode import fix_mojibake, has_mojibake
from webmill.clean.filters import signals_and_verdict
from webmill.clean.langid import detect
from webmill.clean.pii import scrub

WORDS = "the cat sat on a mat and then it ran to the big red door of old house".split()


def naive_dup_ngram_frac(words, n):
    """Characters inside n-grams that repeat an earlier n-gram, over all characters (quadratic, obvious)."""
    covered = [False] * len(words)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    for j, g in enumerate(grams):
        if g in grams[:j]:
            for k in range(j, j + n):
                covered[k] = True
    total = sum(map(len, words)) or 1
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def naive_top_ngram_fracs(words, n):
    """The values the most frequent n-gram's character share can take (one per n-gram tied for most)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return {0.0}
    counts = {g: grams.count(g) for g in grams}
    most = max(counts.values())
    if most <= 1:
        return {0.0}
    total = sum(map(len, words)) or 1
    return {sum(map(len, g)) * most / total for g, c in counts.items() if c == most}


@pytest.mark.parametrize("seed", range(40))
def test_repetition_signals_match_the_definition(seed):
    rnd = random.Random(seed)
    words = [rnd.choice(WORDS[: rnd.randint(3, len(WORDS))]) for _ in range(rnd.randint(0, 400))]
    if rnd.random() < 0.5 and len(words) > 20:  # a copied passage
        i = rnd.randrange(len(words) - 12)
        words += words[i : i + 12]
    _, sig, _ = signals_and_verdict(" ".join(words), "en", CleanConfig())
    for n in (5, 10):
        assert sig[f"dup_{n}gram_frac"] == pytest.approx(naive_dup_ngram_frac(words, n), abs=1e-12)
    for n in (2, 3, 4):
        assert any(sig[f"top_{n}gram_frac"] == pytest.approx(v, abs=1e-12) for v in naive_top_ngram_fracs(words, n))


def test_quality_signals_and_drop_reasons():
    prose = "\n".join(
        [
            "The mill stood by the river for two hundred years before anyone wrote down its history.",
            "Farmers brought their grain in autumn, and the miller ground it into flour for the whole valley.",
            "In the spring floods the wheel turned so fast that the stones had to be lifted to save them.",
            "A fire in the winter of 1890 destroyed the roof, but the walls of the building survived.",
            "The owner's daughter rebuilt it with timber from the forest that grew on the northern hill.",
            "Later the village council bought the mill and opened it to visitors on summer weekends.",
            "Children now learn how water power works by watching the gears move behind a glass panel.",
            "Volunteers keep the machinery oiled and repair the paddles whenever the current breaks one.",
            "Every October there is a festival with bread baked from flour that the mill produced.",
            "Old photographs of the workers hang in the office, next to the ledger they kept by hand.",
        ]
    )
    text, sig, drop = signals_and_verdict(prose, "en", CleanConfig())
    assert drop is None and text == prose
    words = prose.split()
    assert sig["line_punct_ratio"] == 1.0 and sig["dup_line_frac"] == 0.0
    assert sig["stop_words"] == sum(w.lower() in ("the", "be", "to", "of", "and", "that", "have", "with") for w in words)
    assert sig["mean_word_length"] == pytest.approx(sum(map(len, words)) / len(words))
    assert signals_and_verdict("too short.", "en", CleanConfig())[2].reason == "gopher_short_doc"
    repeated = "\n".join(["The same line of text is repeated here again."] * 30)
    assert signals_and_verdict(repeated, "en", CleanConfig())[2].reason.startswith("gopher_dup")
    code = prose + "\nint main() { return 0; }"
    assert signals_and_verdict(code, "en", CleanConfig())[2].reason == "c4_curly_bracket"
    assert signals_and_verdict(code, "en", CleanConfig(c4_curly_bracket=False))[2] is None
    policy = prose + "\nRead our privacy policy before you go."
    text, _, _ = signals_and_verdict(policy, "en", CleanConfig())
    assert "privacy policy" not in text and text == prose


def test_mojibake_check_is_ftfys_check():
    rnd = random.Random(0)
    samples = ["plain ascii", "café crème brûlée", "naïve “quotes” — dashes…", "日本語のテキスト", "Ελληνικά κείμενα", "Ünïcödé ©®°"]
    for s in list(samples):
        for codec in ("cp1252", "latin-1", "mac_roman", "cp1251", "cp1253"):
            bad = s.encode("utf-8").decode(codec, errors="replace")
            samples += [bad, "Some English prose around it. " * 5 + bad + " and more prose after." * 5]
    for s in list(samples):
        i = rnd.randrange(len(s))
        samples.append(s[i : i + rnd.randrange(1, 12)])
    assert any(is_bad(s) for s in samples) and not all(is_bad(s) for s in samples)
    for s in samples:
        assert has_mojibake(s) == is_bad(s), s
    assert fix_mojibake("The cafÃ© on the corner") == "The café on the corner"
    assert fix_mojibake("clean text, untouched") == "clean text, untouched"


def test_pii_placeholders_and_counts():
    text, emails, ips = scrub(
        "Mail jane.doe@example.org or ops@mail.example.com; server 8.8.8.8, router 192.168.1.1, version 15.3.2.1000", "<email>", "<ip>"
    )
    assert (emails, ips) == (2, 1)
    assert text == "Mail <email> or <email>; server <ip>, router 192.168.1.1, version 15.3.2.1000"
    assert scrub("no addresses at all", "<email>", "<ip>") == ("no addresses at all", 0, 0)


def test_language_id():
    assert detect("Der schnelle braune Fuchs springt über den faulen Hund und läuft in den Wald.")[0] == "de"
    assert detect("Le renard brun rapide saute par-dessus le chien paresseux et court dans la forêt.")[0] == "fr"
    assert detect("素早い茶色の狐がのろまな犬を飛び越えて森へ走っていきます。")[0] == "ja"
    _, score = detect("ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾᛁᛃ ᛇᛈᛉᛊᛏᛒ " * 40)  # a script the model never saw: low confidence
    assert score < 0.5
    assert detect("12345 678 -- ++ 90") == ("und", 0.0)
    assert 0.9 < detect("This is plainly an English sentence about language identification.")[1] <= 1.0
