"""A large website rendered offline from what every Python installation holds: the documentation
(docstrings, as pydoc shows them) of the standard library, and of the libraries pip vendors
beside their installed releases.

It is the demo's and the test suite's real site where ``../shared/corpora`` is absent:
over a thousand cross-linked pages of real prose and API text, with real near-duplicates
(``pip._vendor.rich.console`` and ``rich.console`` are two releases of one module; ``os.path``
documents ``posixpath`` again). Rendering imports every module, so it runs in a child
process (``python -m webmill.pylib_site OUT``), each module under a time limit; a module
that does not import or render here is left out and its links point nowhere, as on the web.

``offline_corpora()`` renders once per Python and webmill version into a cache folder and
returns a corpora folder holding ``pylib/`` and the small ``pydoc/`` topic site.
"""

from __future__ import annotations

import html
import importlib
import inspect
import os
import pkgutil
import re
import signal
import subprocess
import sys
from pathlib import Path

SITE = "pylib"
# modules with effects on import (a browser, a window, printed text) or no text of their own
SKIP = {
    "antigravity",
    "this",
    "idlelib",
    "tkinter",
    "turtle",
    "turtledemo",
    "test",
    "lib2to3",
    "ensurepip",
    "pydoc_data",
    "__hello__",
    "__phello__",
    "xxsubtype",
    "xxlimited",
    "xxlimited_35",
    "nturl2path",
    "msvcrt",
    "winreg",
    "winsound",
    "_winapi",
    "nt",
    "ntpath",
    "__main__",
    "sre_compile",
    "sre_parse",
    "sre_constants",
    "asyncio.__main__",
    "sqlite3.__main__",
    "json.tool",
    "venv.__main__",
    "pip.__main__",
}
# libraries pip vendors; rendered from pip and, where installed, as their own release too
VENDORED = (
    "packaging",
    "rich",
    "urllib3",
    "requests",
    "idna",
    "certifi",
    "platformdirs",
    "pygments",
    "tomli",
    "distlib",
    "msgpack",
    "resolvelib",
    "tenacity",
    "pyparsing",
)
PER_MODULE_SECONDS = 10
MAX_PAGES = 6000
# installed packages left out: importing their submodules starts services or takes minutes
NOT_INSTALLED_SITE = {
    "ray",
    "webmill",
    "pip",
    "setuptools",
    "pkg_resources",
    "distutils-precedence",
    "pytest",
    "_pytest",
    "moto",
    "IPython",
    "matplotlib",
    "tensorboard",
    "triton",
}


def installed_tops() -> list[str]:
    """Top-level modules installed beside the standard library (site-packages), without importing them."""
    import sysconfig

    dirs = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    return sorted(
        {
            m.name
            for m in pkgutil.iter_modules(dirs)
            if not m.name.startswith("_") and m.name not in SKIP and m.name not in NOT_INSTALLED_SITE
        }
    )


def module_names() -> list[str]:
    """Every public module of the standard library, of the vendored libraries' two releases and of
    the other installed libraries, in that order, up to MAX_PAGES."""
    tops = sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in SKIP)
    tops += [f"pip._vendor.{n}" for n in VENDORED] + list(VENDORED)
    tops += [n for n in installed_tops() if n not in tops]
    names: list[str] = []
    for top in tops:
        try:
            mod = _import(top)
        except BaseException:  # noqa: BLE001 - absent here, or broken: left out
            continue
        names.append(top)
        depth = top.count(".") + 1  # pip._vendor.rich's own modules start after its three parts
        for info in pkgutil.walk_packages(getattr(mod, "__path__", []) or [], prefix=top + ".", onerror=lambda _: None):
            parts = info.name.split(".")
            if any(p.startswith("_") or p in ("test", "tests", "testing") for p in parts[depth:]) or info.name in SKIP:
                continue
            names.append(info.name)
        if len(names) >= MAX_PAGES:
            break
    return sorted(set(names[:MAX_PAGES]))


class _Slow(BaseException):
    pass


def _alarm(signum, frame):
    raise _Slow()


def _import(name: str):
    signal.alarm(PER_MODULE_SECONDS)
    try:
        return importlib.import_module(name)
    finally:
        signal.alarm(0)


_UNDERLINE = re.compile(r"^\s*([-=~^*])\1{2,}\s*$")  # reStructuredText's section underlines: markup, not text


def _paragraphs(doc: str | None) -> str:
    """A docstring as HTML: prose paragraphs as <p>, examples and indented blocks as <pre>."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc or "")):
        lines = [l for l in para.splitlines() if not _UNDERLINE.match(l)]
        para = "\n".join(lines)
        if not para.strip():
            continue
        if any(l.startswith((" ", "\t", ">>>", "$ ")) for l in lines) or len(lines) > 1 and all(len(l) < 40 for l in lines):
            out.append(f"<pre>{html.escape(para)}</pre>")
        else:
            out.append(f"<p>{html.escape(' '.join(l.strip() for l in lines))}</p>")
    return "\n".join(out)


def _signature(name: str, obj) -> str:
    """``name(a, b, *args, **kw)``: parameter names only (defaults are reprs, often of objects)."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return name
    shown = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name for p in params]
    return f"{name}({', '.join(shown)})"


def _link(name: str, known: set[str]) -> str:
    return f'<a href="{html.escape(name)}.html">{html.escape(name)}</a>' if name in known else html.escape(name)


def render_module(name: str, known: set[str]) -> str | None:
    """One module's page: its docstring, then each public class (with the methods it defines) and
    function that has a docstring, with links to its submodules and to the modules it uses.
    Inherited members and undocumented names are left out: they are the same on every page."""
    try:
        mod = _import(name)
        signal.alarm(PER_MODULE_SECONDS)
        try:
            body = _module_body(mod, name, known)
        finally:
            signal.alarm(0)
    except BaseException:  # noqa: BLE001 - a module that does not render here is left out
        return None
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(name)} — Python library reference</title></head><body>"
        '<nav><a href="index.html">Python library index</a>'
        + (f" | {_link(name.rsplit('.', 1)[0], known)}" if "." in name else "")
        + f"</nav><main><h1>{html.escape(name)}</h1>{body}</main>"
        f"<footer>Rendered from the docstrings of the Python {sys.version.split()[0]} installation.</footer></body></html>"
    )


def _module_body(mod, name: str, known: set[str]) -> str:
    parts = [_paragraphs(mod.__doc__)]
    subs = sorted(k for k in known if k.startswith(name + ".") and "." not in k[len(name) + 1 :])
    if subs:
        parts.append("<h2>Submodules</h2><ul>" + "".join(f"<li>{_link(k, known)}</li>" for k in subs) + "</ul>")
    uses = sorted({v.__name__ for v in vars(mod).values() if inspect.ismodule(v)} & known - {name})
    if uses:
        parts.append("<p>Uses: " + ", ".join(_link(k, known) for k in uses) + ".</p>")
    public = [(k, v) for k, v in sorted(vars(mod).items()) if not k.startswith("_") and getattr(v, "__module__", None) == name]
    for k, cls in public:
        if not inspect.isclass(cls) or not cls.__doc__:
            continue
        bases = ", ".join(b.__name__ for b in cls.__bases__ if b is not object)
        parts.append(
            f"<section><h2>class {html.escape(k)}{'(' + html.escape(bases) + ')' if bases else ''}</h2>" + _paragraphs(cls.__doc__)
        )
        for m, meth in sorted(vars(cls).items()):
            fn = meth.__func__ if isinstance(meth, (classmethod, staticmethod)) else meth
            if m.startswith("_") or not callable(fn) or not getattr(fn, "__doc__", None):
                continue
            parts.append(f"<h3>{html.escape(_signature(k + '.' + m, fn))}</h3>" + _paragraphs(fn.__doc__))
        parts.append("</section>")
    for k, fn in public:
        if (inspect.isfunction(fn) or inspect.isbuiltin(fn)) and fn.__doc__:
            parts.append(f"<section><h2>{html.escape(_signature(k, fn))}</h2>{_paragraphs(fn.__doc__)}</section>")
    return "\n".join(parts)


def build(folder: Path) -> int:
    """Render every page and the index into ``folder``; returns the number of module pages."""
    signal.signal(signal.SIGALRM, _alarm)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PAGER", "cat")
    rendered = []
    known = set(module_names())
    for name in sorted(known):
        page = render_module(name, known)
        if page is not None:
            (folder / f"{name}.html").write_text(page, encoding="utf-8", errors="replace")
            rendered.append(name)
    groups: dict[str, list[str]] = {}
    for name in rendered:
        top = name.split(".")[0] if not name.startswith("pip._vendor.") else ".".join(name.split(".")[:3])
        groups.setdefault(top, []).append(name)
    items = "\n".join(
        f'<li><a href="{html.escape(top)}.html">{html.escape(top)}</a> ({len(mods)} modules)</li>'
        for top, mods in sorted(groups.items())
        if top in rendered
    )
    (folder / "index.html").write_text(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Python library reference</title></head>"
        f"<body><h1>Python {sys.version.split()[0]} library reference</h1><ul>{items}</ul></body></html>",
        encoding="utf-8",
    )
    return len(rendered)


def cache_folder() -> Path:
    import webmill

    base = Path(os.environ.get("WEBMILL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "webmill")
    tag = f"py{sys.version_info.major}.{sys.version_info.minor}-{getattr(webmill, '__version__', '0')}-{_source_tag()}"
    return base / f"offline-corpora-{tag}"


def _source_tag() -> str:
    """Changes when this renderer changes, so a cached site is never stale."""
    import hashlib

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]


def offline_corpora(say=lambda _msg: None) -> Path:
    """A corpora folder with ``pylib/`` and ``pydoc/``, rendered on first use and cached (safe across processes)."""
    from filelock import FileLock

    from webmill.pydoc_site import render_site

    folder = cache_folder()
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if done.exists():
            return folder
        say(f"rendering the offline site (pydoc of the Python library) into {folder}; once, about a minute")
        tmp = folder.with_name(folder.name + ".tmp")
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        out = subprocess.run(
            [sys.executable, "-m", "webmill.pylib_site", str(tmp / SITE)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if out.returncode != 0:
            raise RuntimeError(f"rendering the offline site failed: {out.stderr.strip().splitlines()[-1:]}")
        render_site(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        done.write_text(out.stdout)
    return folder


if __name__ == "__main__":
    n = build(Path(sys.argv[1]))
    print(f"{n} module pages")
