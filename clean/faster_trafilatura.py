"""trafilatura, run faster with the same result.

Two costs inside ``trafilatura.extract`` that change nothing it returns:

- **Pruning expressions.** About a quarter of the time goes to a few XPath expressions
  that test ``@id``/``@class``/``@style`` with EXSLT regular expressions. lxml runs each
  ``re:test(...)`` as a Python callback for every element and hands it the attribute as a
  "smart string" that keeps its parent element alive. Each expression is replaced by one
  that selects exactly the same elements:
  - where it only tests names and attributes, a Python function per element
    (``webmill.clean.xpath_python``), about twice as fast;
  - otherwise the XPath again, with ``re:test(A, 'P')`` guarded by ``(A) and`` where
    ``P`` cannot match the empty string (what ``re:test`` sees when ``A`` is absent), and
    ``smart_strings=False``, as these expressions select elements, never strings.
  The expressions are read from the installed trafilatura (every list of XPath objects
  in ``trafilatura.xpaths``), so another version gets its own expressions recompiled;
  one that compiles neither way is left as it was.
- **Element classes.** lxml.html picks a Python class for every element it hands to
  Python by calling a Python method (``HtmlElementClassLookup.lookup``), a few thousand
  times a page. trafilatura's parser gets lxml's C-level default lookup instead, with the
  same ``HtmlElement``/``HtmlComment`` classes; only form controls lose their
  form-specific subclasses, whose extra methods trafilatura never calls.

The tests compare the selected elements on random trees and the extracted text on the
real sites, with and without these.
"""
from __future__ import annotations

import re

from lxml.etree import XPath, XPathError

from webmill.clean.xpath_python import CompiledPath, NotCompiled

_RE_TEST = re.compile(r"re:test\(([^,()']+), '([^']*)'\)")
_STOCK_XPATHS: dict[str, list[XPath]] = {}
_PATCHED_PARSER = None
_installed = False


def faster_path(path: str) -> str:
    """``path`` with each ``re:test`` that cannot match an absent attribute guarded by it."""
    def guard(m: re.Match) -> str:
        arg, pattern = m.group(1).strip(), m.group(2)
        try:
            if re.search(pattern, "") is not None:
                return m.group(0)
        except re.error:
            return m.group(0)
        return f"(({arg}) and {m.group(0)})"

    return _RE_TEST.sub(guard, path)


def _selects_elements(path: str) -> bool:
    return "text()" not in path and "/@" not in path and "string(" not in path


def _recompile_xpaths() -> int:
    from trafilatura import xpaths

    namespaces = {"re": getattr(xpaths, "REGEXP_NS", "http://exslt.org/regular-expressions")}
    changed = 0
    for name, value in vars(xpaths).items():
        if not (isinstance(value, list) and value and all(isinstance(e, XPath) for e in value)):
            continue
        _STOCK_XPATHS[name] = list(value)
        for i, expr in enumerate(value):
            if not _selects_elements(expr.path):
                continue
            try:
                value[i] = CompiledPath(expr.path)
            except NotCompiled:
                try:
                    value[i] = XPath(faster_path(expr.path), namespaces=namespaces, smart_strings=False)
                except XPathError:
                    continue
            changed += 1
    return changed


def _c_level_element_classes() -> None:
    global _PATCHED_PARSER
    from lxml import etree
    from lxml import html as lxml_html
    from trafilatura import utils

    parser = getattr(utils, "HTML_PARSER", None)
    if not isinstance(parser, etree.HTMLParser):
        return
    _PATCHED_PARSER = parser
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(
        element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment,
        pi=lxml_html.HtmlProcessingInstruction, entity=lxml_html.HtmlEntity))


def install() -> int:
    """Speed trafilatura up in this process (once); returns how many expressions were recompiled."""
    global _installed
    if _installed:
        return 0
    _installed = True
    changed = _recompile_xpaths()
    _c_level_element_classes()
    return changed


def uninstall() -> None:
    """trafilatura as it ships (the benchmark and the tests compare both)."""
    global _installed, _PATCHED_PARSER
    from lxml import html as lxml_html
    from trafilatura import xpaths

    for name, stock in _STOCK_XPATHS.items():
        getattr(xpaths, name)[:] = stock
    _STOCK_XPATHS.clear()
    if _PATCHED_PARSER is not None:
        _PATCHED_PARSER.set_element_class_lookup(lxml_html.HtmlElementClassLookup())
        _PATCHED_PARSER = None
    _installed = False


def installed() -> bool:
    return _installed
