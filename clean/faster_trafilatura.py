"""trafilatura, run faster with the same result.

Two costs inside ``trafilatura.extract`` that change nothing it returns:

- **Pruning expressions.** About a quarter of the time goes to a few XPath expressions
  that test ``@id``/``@class``/``@style`` with EXSLT regular expressions; lxml runs each
  ``re:test(...)`` as a Python callback for every element. Each expression that only
  tests names and attributes is compiled to a Python function per element
  (``webmill.clean.xpath_python``) that selects exactly the same elements, about twice
  as fast. The expressions are read from the installed trafilatura (every list of XPath
  objects in ``trafilatura.xpaths``), so another version gets its own expressions
  compiled; the others stay as they are.
- **Element classes.** lxml.html picks a Python class for every element it hands to
  Python by calling a Python method (``HtmlElementClassLookup.lookup``), a few thousand
  times a page. trafilatura's parser gets lxml's C-level default lookup instead, with the
  same ``HtmlElement``/``HtmlComment`` classes; only form controls lose their
  form-specific subclasses, whose extra methods trafilatura never calls.

The tests compare the selected elements on random trees and the extracted text on the
real sites, with and without these.
"""

from __future__ import annotations

from lxml.etree import XPath

from webmill.clean.xpath_python import CompiledPath, NotCompiled

_STOCK_XPATHS: dict[str, list[XPath]] = {}
_PATCHED_PARSER = None
_installed = False


def _compile_xpaths() -> int:
    from trafilatura import xpaths

    compiled = 0
    for name, value in vars(xpaths).items():
        if not (isinstance(value, list) and value and all(isinstance(e, XPath) for e in value)):
            continue
        _STOCK_XPATHS[name] = list(value)
        for i, expr in enumerate(value):
            try:
                value[i] = CompiledPath(expr.path)
                compiled += 1
            except NotCompiled:
                pass
    return compiled


def _c_level_element_classes() -> None:
    global _PATCHED_PARSER
    from lxml import etree
    from lxml import html as lxml_html
    from trafilatura import utils

    parser = getattr(utils, "HTML_PARSER", None)
    if not isinstance(parser, etree.HTMLParser):
        return
    _PATCHED_PARSER = parser
    parser.set_element_class_lookup(
        etree.ElementDefaultClassLookup(
            element=lxml_html.HtmlElement,
            comment=lxml_html.HtmlComment,
            pi=lxml_html.HtmlProcessingInstruction,
            entity=lxml_html.HtmlEntity,
        )
    )


def install() -> int:
    """Speed trafilatura up in this process (once); returns how many expressions were compiled."""
    global _installed
    if _installed:
        return 0
    _installed = True
    compiled = _compile_xpaths()
    _c_level_element_classes()
    return compiled


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
