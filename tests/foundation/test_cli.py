import subprocess
import sys

from webmill.commands import PLANNED

WEBMILL = [sys.executable, "-m", "webmill"]


def run(*args, **kw):
    return subprocess.run([*WEBMILL, *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_every_verb():
    out = run("--help")
    assert out.returncode == 0
    for verb in ["crawl", "clean", "dedup", "shard", "stats", "report", "query", "tokenizer", "train",
                 "generate", "run", "demo"]:
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