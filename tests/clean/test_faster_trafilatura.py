"""trafilatura sped up by webmill selects the same elements and extracts the same text as it ships."""

import random
import re

import pytest
import trafilatura
from lxml import html as lxml_html
from sites import sites_folder
from trafilatura import xpaths as trafilatura_xpaths

from webmill.clean import faster_trafilatura as faster

TAGS = ["div", "item", "list", "p", "section", "span", "header", "a", "head", "td", "quote"]
ATTRS = ["id", "class", "style", "role", "aria-hidden", "data-component", "data-lp-replacement-content"]
NOISE = ["", " ", "x", "main", "content", "-", "_", "Bottom", "hidden", "border", "link", "ad", "nav"]


@pytest.fixture
def stock_and_faster():
    """Pairs of (trafilatura's expression, the compiled one), installed for the test's duration."""
    faster.uninstall()
    stock = {
        name: list(value)
        for name, value in vars(trafilatura_xpaths).items()
        if isinstance(value, list) and value and all(hasattr(e, "path") for e in value)
    }
    assert faster.install() > 0
    yield [(s, f) for name, exprs in stock.items() for s, f in zip(exprs, getattr(trafilatura_xpaths, name)) if s is not f]
    faster.uninstall()


def tokens_of(path: str) -> list[str]:
    """Words the expression looks for: its string literals and their regex alternatives, unescaped."""
    out = []
    for literal in re.findall(r"'([^']*)'", path):
        for alt in literal.split("|"):
            out.append(re.sub(r"[\\^$()?:\[\]]", "", alt.replace("-?", "-").replace("(?:^| )", " ")))
    return [t for t in out if t] or ["x"]


def random_tree(rng: random.Random, words: list[str]):
    root = lxml_html.fromstring("<html><body></body></html>")
    nodes = [root.find("body")]
    for _ in range(rng.randint(1, 60)):
        elem = nodes[rng.randrange(len(nodes))].makeelement(rng.choice(TAGS), {})
        nodes[rng.randrange(len(nodes))].append(elem)
        for name in rng.sample(ATTRS, rng.randint(0, 4)):  # random attribute order: @id|@class reads the first
            parts = [rng.choice(words + NOISE) for _ in range(rng.randint(0, 3))]
            elem.set(name, rng.choice(["", " ", "-"]).join(parts))
        nodes.append(elem)
    return root


@pytest.mark.parametrize("seed", range(3))
def test_same_elements_on_random_trees(stock_and_faster, seed):
    rng = random.Random(seed)
    for stock, compiled in stock_and_faster:
        words = tokens_of(stock.path)
        for _ in range(40):
            tree = random_tree(rng, words)
            getpath = tree.getroottree().getpath
            assert [getpath(e) for e in compiled(tree)] == [getpath(e) for e in stock(tree)], stock.path


def test_same_text_extracted_from_real_pages(stock_and_faster):
    pages = sorted(p for p in sites_folder().rglob("*.htm*") if p.is_file())
    assert pages
    sample = pages[:: max(1, len(pages) // 60)]
    for page in sample:
        html = page.read_text(encoding="utf-8", errors="replace")
        faster.uninstall()
        stock_text = trafilatura.extract(html, favor_precision=True, include_tables=True, deduplicate=False)
        faster.install()
        faster_text = trafilatura.extract(html, favor_precision=True, include_tables=True, deduplicate=False)
        assert faster_text == stock_text, page


def test_same_text_from_a_page_with_form_controls(stock_and_faster):
    """Form controls are the elements whose lxml.html class changes (FormElement → HtmlElement)."""
    from lxml import html as lxml_html
    from trafilatura import utils

    body = "".join(f"<p>Paragraph {i} explains the settings of this page in a full sentence of prose.</p>" for i in range(8))
    html = (
        f"<html><head><title>T</title></head><body><article>{body}<form action='/s'><label for='q'>Search the "
        "manual for a word</label><input id='q' name='q' value='text'><select name='v'><option>15</option>"
        "</select><textarea name='c'>A comment written in the form.</textarea></form></article></body></html>"
    )
    assert type(utils.load_html(html).find(".//form")) is lxml_html.HtmlElement
    faster_text = trafilatura.extract(html, favor_precision=True, include_tables=True, deduplicate=False)
    faster.uninstall()
    assert type(utils.load_html(html).find(".//form")) is lxml_html.FormElement
    assert trafilatura.extract(html, favor_precision=True, include_tables=True, deduplicate=False) == faster_text
    assert "Paragraph 7" in faster_text
