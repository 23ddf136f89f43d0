import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_the_stages_built_so_far(tmp_path, corpora):
    out = subprocess.run([sys.executable, "-m", "webmill", "--root", str(tmp_path / "root"), "demo",
                          "--sites", "libstdcxx-manual", "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert s["crawl"]["pages_stored"] == 194
    assert 0 < s["clean"]["kept"] <= 194
    assert s["dedup"]["exact_dups"] > 0  # versions 11 and 12 share pages
