"""The scaling-law fit and what is read from it, on points drawn from a known law; the grid's bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from webmill.errors import UserError
from webmill.train.config import TrainConfig
from webmill.train.sweep import (
    check_grid,
    compute_optimal,
    fit,
    grid_notes,
    parse_counts,
    parse_sizes,
    predict_loss,
    settings_changed,
    sweep_warmup,
    tokens_for,
    weak_fit,
)

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


def test_a_floor_at_the_edge_of_its_range_is_a_weak_fit():
    good = {**LAW, "r2": 0.99}
    assert weak_fit(good, min_loss=3.0) == []
    at_zero = weak_fit({**good, "E": 0.0}, min_loss=3.0)
    assert len(at_zero) == 1 and "E 0.000 at the edge" in at_zero[0]
    at_top = weak_fit({**good, "E": 2.999}, min_loss=3.0)
    assert len(at_top) == 1 and "do not show the floor" in at_top[0]
    # a grid whose losses are far above the floor and barely curve: the fit puts E at a bound, and says so
    flat = fit(points({"E": 0.0, "A": 8.0, "alpha": 0.14, "B": 26.0, "beta": 0.12}, [3.5e5, 7e5, 1.3e6], [2.5e5, 5e5, 1e6], noise=0.1))
    assert flat["E"] < 0.01 and flat["r2"] > 0.9  # a good R² all the same
    assert [w for w in weak_fit(flat, 5.7) if w.startswith("E ")], flat


def test_notes_name_repeated_epochs_and_far_extrapolations():
    grid = points(LAW, [1e5, 1e6], [1e6, 2e6, 4e6])
    assert grid_notes(grid, corpus_tokens=10_000_000, predictions=[("inside", 5e5, 3e6), ("near", 5e6, 3e7)]) == []
    notes = grid_notes(grid, corpus_tokens=2_000_000, predictions=[("the target", 8.5e7, 6e12), ("no bound", 1e5, None)])
    assert len(notes) == 2, notes
    assert notes[0].startswith("2 of 6 runs saw the train split more than once (up to 2.00 epochs)")
    assert "the target lies beyond the grid's largest run (N 85x, D 1,500,000x)" in notes[1]
    assert len(grid_notes(grid, corpus_tokens=None, predictions=[])) == 0


def test_each_grid_run_warms_up_for_a_tenth_of_itself_at_most():
    cfg = TrainConfig(warmup=20, batch_tokens=8192, seq_len=256, micro_batch=8)
    assert sweep_warmup(cfg, 250_000) == 3  # 31 steps
    assert sweep_warmup(cfg, 1_000_000) == 12  # 123 steps
    assert sweep_warmup(cfg, 100_000_000) == 20  # the [train] warmup where the run is long
    assert sweep_warmup(cfg, 8192) == 1


def test_a_finished_run_is_reused_only_with_the_settings_it_was_trained_with():
    data = {"dataset": "shards/main", "sha256": {"train/p.parquet": "ab"}, "id_filter": None, "encoding": {"tokenizer_sha256": "t1"}}
    saved = {"train": {"lr": 3e-3, "warmup": 3, "device": "cpu"}, "model": {"dim": 64}, "data": {**data, "train": ["/old/place"]}}
    same = {"train": {"lr": 3e-3, "warmup": 3, "device": "cuda"}, "model": {"dim": 64}, "data": {**data, "train": ["/new/place"]}}
    assert settings_changed(saved, same) == {}  # another device, the root moved: the same run
    assert settings_changed(saved, {**same, "train": {**same["train"], "warmup": 20}}) == {"warmup": (3, 20)}
    other = {**same, "data": {**data, "encoding": {"tokenizer_sha256": "t2"}}, "model": {"dim": 96}}
    assert set(settings_changed(saved, other)) == {"data", "model"}
