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


PACKAGES = ("webmill", "crawl", "clean", "dedup", "shards", "train", "pipeline", "insight")
STAGE_FOLDER = r"(crawl|clean|dedup|shards|runs)"


def test_dataset_paths_are_spelled_only_in_the_layout_module():
    """Where each stage keeps its datasets is named once, in webmill.shards.layout: no other module
    builds a path such as ``f"clean/{run}/docs"`` or ``root.exists("shards", name, ...)`` itself."""
    calls = r"(listdir|exists|is_dir|path|display|read_bytes|write_bytes_atomic|run_datasets|run_lock)"
    quoted = rf"[\"']{STAGE_FOLDER}[\"']"
    spelled = re.compile(
        "|".join(
            [
                rf"f[\"']{STAGE_FOLDER}/\{{",  # f"clean/{run}/docs"
                rf"\b{calls}\((root, )?{quoted}",  # root.exists("shards", name, ...)
                r"\{RUNS\}/",  # f"{RUNS}/{name}"
                rf"^[A-Z_]+ = {quoted}$",  # RUNS = "runs"
            ]
        )
    )
    offenders = [
        f"{p.relative_to(TESTS.parent)}:{n}"
        for pkg in PACKAGES
        for p in sorted((TESTS.parent / pkg).rglob("*.py"))
        if p.name != "layout.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if spelled.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
