import subprocess
import sys

import pytest

from webmill.config import load_config
from webmill.errors import ConfigError
from webmill.settings import override


def write(tmp_path, text):
    p = tmp_path / "webmill.toml"
    p.write_text(text)
    return p


def test_defaults_and_values(tmp_path):
    cfg = load_config(
        write(
            tmp_path,
            """
[crawl]
seeds = ["http://127.0.0.1:8000/index.html"]
max_depth = 3
download_delay = 1          # an int where a float is expected is fine
[dedup]
bands = 20
rows = 5
[shards]
mix = {a = 0.7, b = 0.3}
""",
        )
    )
    assert cfg.crawl.max_depth == 3 and cfg.crawl.download_delay == 1.0
    assert cfg.crawl.obey_robots is True
    assert (cfg.dedup.bands, cfg.dedup.rows) == (20, 5)
    assert cfg.shards.mix == {"a": 0.7, "b": 0.3}
    assert cfg.train.preset == "tiny"


@pytest.mark.parametrize(
    "text, expect",
    [
        ("[crawl]\nmax_depht = 3\n", "[crawl] max_depht: unknown key"),
        ("[crawl]\nmax_depth = 'deep'\n", "[crawl] max_depth: expected an integer, got 'deep'"),
        ("[crawl]\nmax_depth = -1\n", "[crawl] max_depth: expected a value >= 0"),
        ("[crawl]\nobey_robots = 1\n", "[crawl] obey_robots: expected true or false"),
        ("[train]\npreset = 'huge'\n", "[train] preset: expected a value one of 'tiny'"),
        ("[clean]\nmin_lang_score = 1.5\n", "[clean] min_lang_score: expected a value <= 1.0"),
        ("[trian]\npreset = 'tiny'\n", "unknown table [trian]"),
        ("[crawl\nseeds = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text, expect):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and expect in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_cli_flags_override_and_are_validated(tmp_path):
    cfg = load_config(write(tmp_path, "[crawl]\nmax_pages = 10\n"))
    assert override(cfg.crawl, section="crawl", max_pages=20, max_depth=None).max_pages == 20
    with pytest.raises(ConfigError, match="max_pages"):
        override(cfg.crawl, section="crawl", max_pages=-5)


def test_cli_reports_bad_config_in_one_line(tmp_path):
    p = write(tmp_path, "[crawl]\nmax_depht = 3\n")
    out = subprocess.run(
        [sys.executable, "-m", "webmill", "--config", str(p), "--root", str(tmp_path / "r"), "stats"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # every verb validates the config before doing anything
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "max_depht" in out.stderr and str(p) in out.stderr
    assert "Traceback" not in out.stderr
