"""Attribute-testing XPath compiled to Python: the same elements as lxml, or NotCompiled."""

import pytest
from lxml import etree
from lxml import html as lxml_html

from webmill.clean.xpath_python import CompiledPath, NotCompiled

RE = {"re": "http://exslt.org/regular-expressions"}
PAGE = lxml_html.fromstring("""<html><body>
  <div id="nav-main" class="menu">a</div><div class="x" id="y">b</div><p id="y" class="x">c</p>
  <span role="Navigation">d</span><section data-flag="">e</section><div class="">f<span class="share-bar">g</span></div>
  <p>h</p><div style="display:none">i</div><div class="Bottom-link">j</div>
</body></html>""")


@pytest.mark.parametrize(
    "path",
    [
        ".//*",
        ".//div",
        ".//*[@id]",
        ".//*[@class='x']",
        ".//*[@data-flag]",
        ".//*[not(@class)]",
        ".//*[self::div or self::span][contains(@class, 'bar')]",
        ".//*[starts-with(@id|@class, 'x')]",  # @id|@class reads whichever comes first on the element
        ".//*[starts-with(@class|@id, 'y')]",
        ".//*[contains(translate(@role, 'N', 'n'), 'nav')]",
        ".//*[contains(translate(@role, 'Nn', 'x'), 'avigatio')]",  # 'n' past the end of the target is removed
        ".//*[re:test(@id|@class, '^nav|menu')]",
        ".//*[re:test(@class, '')]",
        ".//*[(@style and contains(@style, 'display:none')) or re:test(@class, '(^|\\s)Bottom')]",
        ".//*[true()][not(false())]",
    ],
)
def test_same_elements_as_lxml(path):
    compiled, lxml_xpath = CompiledPath(path), etree.XPath(path, namespaces=RE)
    got, want = compiled(PAGE), lxml_xpath(PAGE)
    assert [e.text for e in got] == [e.text for e in want]
    assert got == want
    tree = PAGE.getroottree()
    assert compiled(tree) == lxml_xpath(tree)


@pytest.mark.parametrize(
    "path",
    [
        ".//p[1]",
        ".//div[position() > 1]",
        ".//cite|.//quote",
        "//div",
        ".//*[.//h1]",
        ".//*[ancestor::div]",
        ".//*[count(@*) > 1]",
        ".//*[re:test(@class, '(')]",
        ".//*[$x]",
    ],
)
def test_what_it_cannot_compile_is_refused(path):
    with pytest.raises(NotCompiled):
        CompiledPath(path)
