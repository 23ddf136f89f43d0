"""The scaling-law fit and what is read from it, on points drawn from a known law; the grid's bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from webmill.errors import UserError
from webmill.train.sweep import check_grid, compute_optimal, fit, parse_counts, parse_sizes, predict_loss, tokens_for

LAW = {"E": 1.8, "A": 60.0, "alpha": 0.34, "B": 400.0, "beta": 0.28}


def points(law, ns, ds, noise=0.0):
    out = []
    for i, n in enumerate(ns):
        for j, d in enumerate(ds):
            wobble = noise * (1 if (i + j) % 2 else -1)
            out.append({"label": f"{i}-{j}", "params": n, "tokens": d, "tokens_seen": d, "val_loss": predict_loss(law, n, d) + wobble})
    return out


def test_the_fit_recovers_a_known_law():
    got = fit(points(LAW, [1e5, 3e5, 1e6, 3e6], [1e6, 3e6, 1e7, 3e7]))
    assert got["r2"] > 0.9999
    assert abs(got["alpha"] - LAW["alpha"]) < 0.03 and abs(got["beta"] - LAW["beta"]) < 0.03, got
    assert abs(got["E"] - LAW["E"]) < 0.1, got
    assert max(abs(r) for r in got["residuals"].values()) < 1e-3
    noisy = fit(points(LAW, [1e5, 3e5, 1e6], [1e6, 3e6, 1e7], noise=0.02))
    assert 0.5 < noisy["r2"] < 1 and len(noisy["residuals"]) == 9


def test_compute_optimal_split_is_the_minimum_on_its_budget():
    for flops in (1e15, 1e18, 1e21):
        c = compute_optimal(LAW, flops)
        assert abs(6 * c["params"] * c["tokens"] / flops - 1) < 1e-9
        for k in (0.5, 2.0):  # another split of the same budget loses
            n = c["params"] * k
            assert predict_loss(LAW, n, flops / 6 / n) > c["loss"]
        assert abs(tokens_for(LAW, c["params"]) / c["tokens"] - 1) < 1e-6  # the same optimum, read from N


def test_grid_and_names_are_checked():
    assert parse_sizes("64x2, 96x3,64x2") == [(64, 2), (96, 3)]
    assert parse_counts("250k,1M,1.5G") == [250_000, 1_000_000, 1_500_000_000]
    with pytest.raises(UserError, match="DIMxLAYERS"):
        parse_sizes("65x2")
    with pytest.raises(UserError, match="token counts"):
        parse_counts("lots")
    with pytest.raises(UserError, match="too small to fit"):
        check_grid([(64, 2)], [1000, 2000, 4000])
    with pytest.raises(UserError, match="too small to fit"):
        check_grid([(64, 2), (96, 2)], [1000, 2000])


def test_a_grid_too_small_is_one_clear_line_before_anything_starts(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "webmill", "--root", str(tmp_path / "none"), "sweep", "--sizes", "64x2", "--tokens", "1k,2k"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "too small to fit" in out.stderr and not (tmp_path / "none").exists()
