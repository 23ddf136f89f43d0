"""Attribute-testing XPath expressions compiled to Python functions.

``.//TAG[PRED]...``, where each predicate tests the element's name (``self::div``) and
attributes: ``@a``, ``@a='v'``, ``contains``/``starts-with``/``re:test`` (EXSLT) of
``@a``, ``@a|@b`` or ``translate(...)``, joined by ``and``/``or``/``not``. Such an
expression becomes one Python function per element, and selecting with it is a loop over
``iterdescendants``: for the pruning expressions of trafilatura this is about twice as
fast as lxml, which makes a Python callback for every ``re:test`` of every element.

Anything else (other axes, positions, unions of paths, numbers) raises ``NotCompiled``;
the caller keeps the XPath then.
"""

from __future__ import annotations

import re

from lxml import etree

_TOKEN = re.compile(r"""(?P<str>'[^']*'|"[^"]*")|(?P<op>\.//|::|[()\[\]|=,@*])|(?P<name>[A-Za-z_][\w\-]*(?::[A-Za-z_][\w\-]*)?)""")


class NotCompiled(ValueError):
    pass


def _tokens(path: str) -> list[tuple[str, str]]:
    out, pos, path = [], 0, path.strip()
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            raise NotCompiled(f"cannot read {path[pos : pos + 20]!r}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
        while pos < len(path) and path[pos].isspace():
            pos += 1
    return out


def first_attribute(el, names: tuple[str, ...]) -> str:
    """XPath's string value of ``@a|@b``: the first of them in the element's attribute order."""
    if len(names) == 2:
        va, vb = el.get(names[0]), el.get(names[1])
        if va is None:
            return "" if vb is None else vb
        if vb is None:
            return va
    for key, value in el.items():
        if key in names:
            return value
    return ""


class _Compiler:
    """Recursive descent over the tokens, writing a Python expression over ``el``, ``get`` and ``tag``."""

    def __init__(self, path: str):
        self.tokens, self.i = _tokens(path), 0
        self.consts: dict[str, object] = {"first_attribute": first_attribute}

    def peek(self, ahead: int = 0) -> tuple[str | None, str | None]:
        return self.tokens[self.i + ahead] if self.i + ahead < len(self.tokens) else (None, None)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise NotCompiled(f"expected {value or kind}, found {tok[1]!r}")
        self.i += 1
        return tok[1]

    def const(self, value: object) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    def path(self) -> tuple[str, list[str]]:
        self.take(".//")
        tag = self.take("*") if self.peek()[1] == "*" else self.take(kind="name")
        if ":" in tag:
            raise NotCompiled("namespaced name")
        predicates = []
        while self.peek()[1] == "[":
            self.take("[")
            predicates.append(self.or_expr())
            self.take("]")
        if self.peek()[0] is not None:
            raise NotCompiled(f"cannot compile {self.peek()[1]!r}")
        return tag, predicates

    def or_expr(self) -> str:
        return self.joined("or", self.and_expr)

    def and_expr(self) -> str:
        return self.joined("and", self.boolean)

    def joined(self, word: str, operand) -> str:
        parts = [operand()]
        while self.peek() == ("name", word):
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else "(" + f" {word} ".join(parts) + ")"

    def boolean(self) -> str:
        kind, value = self.peek()
        if value == "(":
            self.take()
            inner = self.or_expr()
            self.take(")")
            return inner
        if value == "@":
            names = self.attributes()
            if self.peek()[1] == "=":  # a node-set equals a string when any of its nodes does
                self.take()
                text = self.const(self.literal())
                return "(" + " or ".join(f"get({n!r}) == {text}" for n in names) + ")"
            return "(" + " or ".join(f"get({n!r}) is not None" for n in names) + ")"
        if kind == "name" and self.peek(1)[1] == "::":
            if self.take() != "self":
                raise NotCompiled("axis other than self")
            self.take("::")
            return f"(tag == {self.const(self.take(kind='name'))})"
        if kind == "name" and self.peek(1)[1] == "(":
            return self.function(self.take())
        raise NotCompiled(f"cannot compile {value!r}")

    def function(self, name: str) -> str:
        self.take("(")
        if name == "not":
            inner = self.or_expr()
            self.take(")")
            return f"(not {inner})"
        if name in ("true", "false"):
            self.take(")")
            return "True" if name == "true" else "False"
        if name not in ("contains", "starts-with", "re:test"):
            raise NotCompiled(f"function {name}")
        text = self.string()
        self.take(",")
        arg = self.literal()
        self.take(")")
        if name == "contains":
            return f"({self.const(arg)} in {text})"
        if name == "starts-with":
            return f"{text}.startswith({self.const(arg)})"
        try:  # EXSLT re:test(string, pattern) is re.search, as lxml implements it
            search = re.compile(arg).search
        except re.error:
            raise NotCompiled("pattern") from None
        return f"({self.const(search)}({text}) is not None)"

    def attributes(self) -> list[str]:
        names = []
        while True:
            self.take("@")
            names.append(self.take(kind="name"))
            if ":" in names[-1]:
                raise NotCompiled("namespaced attribute")
            if self.peek()[1] != "|":
                return names
            self.take("|")

    def string(self) -> str:
        kind, value = self.peek()
        if value == "@":
            names = self.attributes()
            return f"(get({names[0]!r}) or '')" if len(names) == 1 else f"first_attribute(el, {self.const(tuple(names))})"
        if kind == "name" and value == "translate":
            self.take()
            self.take("(")
            text = self.string()
            self.take(",")
            src = self.literal()
            self.take(",")
            dst = self.literal()
            self.take(")")
            table: dict[int, str | None] = {}
            for i, ch in enumerate(src):  # the first occurrence counts; characters past ``dst`` are removed
                table.setdefault(ord(ch), dst[i] if i < len(dst) else None)
            return f"{text}.translate({self.const(table)})"
        if kind == "str":
            return self.const(self.literal())
        raise NotCompiled(f"string of {value!r}")

    def literal(self) -> str:
        return self.take(kind="str")[1:-1]


class CompiledPath:
    """Called on an element like an lxml ``XPath``: the matching descendants, in document order."""

    def __init__(self, path: str):
        compiler = _Compiler(path)
        tag, predicates = compiler.path()
        self.path = path
        self.source = f"def match(el):\n    get = el.get\n    tag = el.tag\n    return {' and '.join(predicates) or 'True'}\n"
        namespace = dict(compiler.consts)
        exec(self.source, namespace)
        self._match = namespace["match"]
        self._tag = etree.Element if tag == "*" else tag

    def __call__(self, node) -> list:
        if isinstance(node, etree._ElementTree):  # lxml evaluates from the root element here too
            node = node.getroot()
        match = self._match
        return [el for el in node.iterdescendants(self._tag) if match(el)]
