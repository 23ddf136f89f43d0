"""The one progress line every stage reports through."""

import subprocess
import sys
import textwrap


def run_progress(script: str) -> subprocess.CompletedProcess:
    code = "import time\nfrom webmill.progress import Progress\n" + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_in_a_log_the_line_is_printed_every_interval_and_a_quick_stage_prints_none():
    out = run_progress(
        """
        with Progress("starting", every=0.2) as p:
            for i in range(12):
                p.update(f"step {i}")
                time.sleep(0.05)
        with Progress("a stage that ends at once", every=5) as p:
            p.update("done already")
            p.update("[##--] a milestone", keep=True)
        """
    )
    lines = out.stderr.splitlines()
    assert out.returncode == 0, out.stderr
    assert 1 <= len(lines) - 1 <= 4 and all(line.startswith("step ") for line in lines[:-1]), lines
    assert lines[-1] == "[##--] a milestone"  # a kept line is printed at once, as it is
    assert "done already" not in out.stderr and out.stdout == ""


def test_quiet_prints_nothing():
    out = run_progress(
        """
        with Progress("x", every=0, quiet=True) as p:
            p.update("y")
        p = Progress.silent()
        p.update("z")
        assert p.last_text == "z"
        """
    )
    assert out.returncode == 0 and out.stderr == "" and out.stdout == ""
