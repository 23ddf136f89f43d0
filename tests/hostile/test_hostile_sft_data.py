"""A conversation file from elsewhere (``webmill sft --data``, #29 finding 6): every bad line is counted
under a fixed reason and skipped; no line can end the run, or cost memory out of proportion."""

from __future__ import annotations

import json
import sys

from hostile_helpers import last_json, webmill

GOOD = [
    {"messages": [{"role": "user", "content": f"What is table {i}?"}, {"role": "assistant", "content": f"Table {i} holds rows of data."}]}
    for i in range(40)
]

# runs webmill in this interpreter and reports its peak RSS on the last line of stderr
MEASURED = (
    "import resource, runpy, sys\n"
    "sys.argv = ['webmill', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('webmill', run_name='__main__')\n"
    "finally:\n"
    "    print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def test_hostile_conversation_lines_are_counted_and_skipped(corpus, tmp_path, small_config, hostile):
    hostile.tried(
        "sft --data: a line nested 100,000 deep",
        "sft --data: a lone \\ud800 surrogate",
        "sft --data: an 8 MB line",
        "sft --data: a 900 kB message (cut before tokenizing)",
        "sft --data: 20,000 distinct unknown roles",
    )
    data = tmp_path / "chats.jsonl"
    with open(data, "wb") as f:
        for i, good in enumerate(GOOD):
            f.write((json.dumps(good) + "\n").encode())
            if i == 3:
                f.write(b"[" * 100_000 + b"\n")
                f.write(b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "ok"}]}\n')
                huge = {"messages": [{"role": "user", "content": "x" * (8 << 20)}, {"role": "assistant", "content": "ok"}]}
                f.write((json.dumps(huge) + "\n").encode())
                long_msg = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 180_000}]}
                f.write((json.dumps(long_msg) + "\n").encode())
        for i in range(20_000):
            bad_role = {"messages": [{"role": f"role-{i}", "content": "x"}, {"role": "assistant", "content": "y"}]}
            f.write((json.dumps(bad_role) + "\n").encode())
    args = ["--root", corpus, "--config", small_config, "sft", "base", "--data", data, "--name", "chat", "--max-steps", "2", "--json"]
    import subprocess

    out = subprocess.run([sys.executable, "-c", MEASURED, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = last_json(out)
    skipped = summary["data"]["skipped"]
    assert skipped == {
        "not JSON": 1,
        "content is not valid Unicode (a lone surrogate)": 1,
        "line too long": 1,
        "unknown role": 20_000,
    }, skipped
    assert summary["data"]["skipped_examples"]["unknown role"] == ["role-0", "role-1", "role-2"]
    assert summary["data"]["conversations"] == len(GOOD) + 1 and summary["data"]["cropped"] == 1
    assert (corpus / "runs" / "chat" / "plan.json").stat().st_size < 100_000
    assert len(out.stdout.strip().splitlines()[-1]) < 100_000
    rss = int(out.stderr.strip().splitlines()[-1].split()[-1]) * 1024
    assert rss < 1.2e9, f"peak RSS {rss / 1e9:.2f} GB"  # the 8 MB line cost about 1.4 GB on top of torch before


def test_the_same_file_through_webmill_as_a_user_runs_it(corpus, tmp_path, small_config):
    """A file of nothing but bad lines is one line naming the reasons, exit 2."""
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b"[" * 100_000 + b"\n" + b'{"messages": [{"role": "wizard", "content": "x"}]}\n')
    out = webmill("--root", corpus, "--config", small_config, "sft", "base", "--data", data, "--name", "nothing")
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "not JSON: 1" in err[0] and "unknown role: 1" in err[0], err
