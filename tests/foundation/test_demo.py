"""``webmill demo`` from nothing: on ../shared/corpora where it is beside the checkout, on the
offline site the project renders where it is not (and with it hidden), and a busy port."""

import json
import os
import shlex
import socket
import subprocess
import sys

import pytest
from sites import CORPORA, sites_folder


def demo(root, *args, env=None):
    out = subprocess.run(
        [sys.executable, "-m", "webmill", "--root", str(root), "demo", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def check_whole_pipeline(root, s):
    assert 0 < s["clean"]["kept"] <= s["crawl"]["pages_stored"]
    assert s["dedup"]["documents_in"] == s["clean"]["kept"] >= s["dedup"]["kept"]
    assert s["shard"]["train_docs"] + s["shard"]["val_docs"] == s["dedup"]["kept"] and s["shard"]["val_docs"] > 0
    assert s["train"]["finished"] and (root / "runs" / s["train"]["name"] / "final" / "model.safetensors").exists()
    assert s["train"]["val_loss"] is not None  # a real validation split
    assert (root / "report.html").stat().st_size > 100_000
    assert len(s["sample"]) > len("The") + 10
    for stage in ("crawl", "clean", "dedup", "shard", "tokenizer", "train"):
        assert stage in s["pipeline"]["seconds"]


@pytest.mark.slow
def test_demo_goes_from_nothing_to_a_model_a_report_and_a_sample(tmp_path):
    if CORPORA is not None:
        s, _ = demo(tmp_path / "root", "--sites", "libstdcxx-manual", "--train-steps", "20")
        assert s["crawl"]["pages_stored"] == 194
        assert s["dedup"]["exact_dups"] > 0  # versions 11 and 12 share pages
    else:
        s, err = demo(tmp_path / "root", "--max-pages", "300", "--train-steps", "20")
        assert "rendered offline" in err and 200 <= s["crawl"]["pages_stored"] <= 300
    check_whole_pipeline(tmp_path / "root", s)
    assert s["tokens"]["train"] > 0 and s["epochs"] == pytest.approx(20 * 8192 / s["tokens"]["train"], rel=1e-2)
    run_next_commands(s["next"])


def run_next_commands(commands):
    """The commands the demo says to try next work as printed (the quick ones: sft, chat and sweep train)."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    names = [shlex.split(c)[3] for c in commands]
    assert {"stats", "query", "trace", "generate", "sft", "chat", "sweep"} <= set(names), commands
    for command in commands:
        if shlex.split(command)[3] in ("sft", "chat", "sweep"):
            continue
        out = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode in (0, 141) and out.stdout.strip(), (command, out.stderr[-2000:])  # 141: head closed the pipe


@pytest.mark.slow
def test_demo_without_corpora_serves_the_offline_python_library_site(tmp_path):
    sites_folder()  # the offline site is rendered once per machine and cached; render it outside the timed run
    env = {**os.environ, "WEBMILL_CORPORA": str(tmp_path / "absent")}
    s, err = demo(tmp_path / "root", "--max-pages", "150", "--epochs", "0.5", env=env)
    assert "rendered offline" in err and "epochs" in err
    assert 100 <= s["crawl"]["pages_stored"] <= 150
    check_whole_pipeline(tmp_path / "root", s)
    assert s["epochs"] == pytest.approx(0.5, abs=0.1) or s["train"]["step"] == 10  # --epochs sets the steps


def test_demo_on_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "WEBMILL_CORPORA": str(sites_folder())}
        out = subprocess.run(
            [sys.executable, "-m", "webmill", "--root", str(tmp_path / "root"), "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"127.0.0.1:{port}" in out.stderr and "--port" in out.stderr and "Traceback" not in out.stderr
    assert len([l for l in out.stderr.strip().splitlines() if not l.startswith("demo: ")]) == 1, out.stderr


def test_the_validation_split_holds_about_ten_documents_however_small_the_crawl():
    from webmill.demo import demo_val_fraction

    assert demo_val_fraction(2000) == 0.05  # a large crawl: 5%
    assert demo_val_fraction(41) == round(10 / 41, 4)  # the C++ manual's 41 documents: about 10
    assert demo_val_fraction(4) == 0.5 and demo_val_fraction(0) == 0.5
