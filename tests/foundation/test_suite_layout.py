import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_module_imports_from_a_conftest():
    """pytest loads every conftest.py as a module named ``conftest``: once a second one is collected
    (tests/objectstore/conftest.py), ``from conftest import x`` finds whichever came last, and the
    modules collected after it fail to import (CI failed so). Shared helpers live in plain modules."""
    pattern = re.compile(r"^\s*(from\s+conftest\s+import|import\s+conftest\b)", re.MULTILINE)
    offenders = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
