import subprocess
import sys

from webmill.commands import PLANNED

WEBMILL = [sys.executable, "-m", "webmill"]


def run(*args, **kw):
    return subprocess.run([*WEBMILL, *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_every_verb():
    out = run("--help")
    assert out.returncode == 0
    for verb in ["crawl", "clean", "dedup", "shard", "stats", "report", "query", "tokenizer", "train", "generate", "run", "demo"]:
        assert f"  {verb}" in out.stdout, verb
    assert "--root" in out.stdout and "--ray-address" in out.stdout and "--config" in out.stdout


def test_console_script_installed():
    import shutil

    exe = shutil.which("webmill") or str(__import__("pathlib").Path(sys.executable).parent / "webmill")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "webmill" in out.stdout


def test_every_verb_is_built_and_has_help():
    from webmill.commands import _built_commands

    built = set(_built_commands())
    assert set(PLANNED) <= built, f"verbs still unbuilt: {set(PLANNED) - built}"
    for verb in PLANNED:
        out = run(verb, "--help")
        assert out.returncode == 0 and "Usage:" in out.stdout, verb
        assert "Examples:" in out.stdout and "webmill --root ./" in out.stdout, verb
    out = run("crawl", "status", "--help")
    assert "crawl status CRAWL_ID" in out.stdout


def test_global_options_work_after_the_verb(tmp_path):
    """``--root``, ``--config``, ``-q`` and ``-v`` mean the same before or after the verb (and
    after a sub-verb); a verb option's value that looks like one is left to the verb."""
    import json

    root = tmp_path / "root"
    root.mkdir()
    before = run("--root", str(root), "stats", "--json")
    after = run("stats", "--root", str(root), "--json")
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(after.stdout.splitlines()[-1]) == json.loads(before.stdout.splitlines()[-1])
    assert json.loads(run("stats", f"--root={root}", "-q", "--json").stdout.splitlines()[-1])["root"] == str(root)

    bad = tmp_path / "bad.toml"
    bad.write_text('[clean]\nmin_words = "x"\n')
    out = run("stats", "--root", str(root), "--config", str(bad))
    assert out.returncode == 2 and "min_words" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run("crawl", "status", "--root", str(tmp_path / "absent"), "nosuchcrawl")
    assert out.returncode == 2 and "absent" in out.stderr, out.stderr  # the root after a sub-verb is used

    from webmill.cli import _register_stage_commands, cli
    from webmill.global_options import hoist

    _register_stage_commands()
    assert hoist(cli, ["generate", "runs/a", "--prompt", "-q", "-vv"]) == ["-vv", "generate", "runs/a", "--prompt", "-q"]
    assert hoist(cli, ["query", "SELECT 1", "--", "--root"]) == ["query", "SELECT 1", "--", "--root"]
