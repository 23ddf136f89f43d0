"""Training end to end on real shards: loss, transformers loading, resume, generate, Ray Train, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers_train import TEST_TRAIN, shard_root
from sites import STAND_IN_PAGES, real_site

from webmill.config import load_config
from webmill.errors import UserError
from webmill.train.launch import run_training
from webmill.train.plan import make_plan, resume_plan

WEBMILL = [sys.executable, "-m", "webmill"]


def webmill(*args, timeout=600):
    return subprocess.run([*WEBMILL, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return shard_root(tmp_path_factory.mktemp("train"), real_site("postgresql-15"), limit=STAND_IN_PAGES)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "webmill.toml"
    path.write_text(TEST_TRAIN)
    return path


def small(config, **over):
    cfg = load_config(config).train
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture(scope="module")
def trained(root, config):
    out = webmill("--root", root.uri, "--config", str(config), "train", "--name", "full", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_validation_loss_falls_well_below_unigram_entropy(trained):
    assert trained["finished"] and trained["step"] == 350
    assert trained["val_loss"] < 0.85 * trained["val_unigram_entropy"], trained
    lines = [json.loads(x) for x in open(f"{trained['run_dir']}/metrics.jsonl")]
    assert [r["step"] for r in lines] == list(range(1, 351))
    assert any("mfu" in r and r["mfu"] for r in lines)


@pytest.mark.slow
def test_final_folder_loads_in_transformers_with_the_same_logits(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from webmill.train.generate import load_run

    final = f"{trained['run_dir']}/final"
    hf = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    assert type(hf).__name__ == "LlamaForCausalLM"
    from webmill.train.runfiles import RunFiles

    ours, tok = load_run(RunFiles.named(None, trained["run_dir"]), torch.device("cpu"))
    hf_tok = AutoTokenizer.from_pretrained(final)
    text = "SELECT * FROM pg_class WHERE relkind = 'r';"
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text, add_special_tokens=False).ids
    ids = torch.tensor([[ours.cfg.bos_id] + tok.encode(text).ids])
    with torch.no_grad():
        assert (ours(ids) - hf(ids).logits).abs().max().item() < 1e-4
    lineage = json.load(open(f"{final}/training.json"))
    assert lineage["tokens_seen"] == trained["tokens_seen"]
    assert lineage["data"]["shards_sha256"] and all(len(v) == 64 for v in lineage["data"]["shards_sha256"].values())


@pytest.mark.slow
def test_generate_streams_text_deterministically(trained):
    args = ("generate", trained["run_dir"], "--prompt", "The query planner", "--max-new-tokens", "30", "--seed", "7")
    a, b = webmill(*args), webmill(*args)
    assert a.returncode == 0, a.stderr[-2000:]
    assert a.stdout.startswith("The query planner") and len(a.stdout.strip()) > len("The query planner") + 10
    assert a.stdout == b.stdout
    c = webmill(*args[:-1], "8")
    assert c.stdout != a.stdout


@pytest.fixture(scope="module")
def fine_tuned(trained, root, config):
    out = webmill("--root", root.uri, "--config", str(config), "sft", trained["name"], "--name", "chat", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sft_learns_the_assistant_turns_and_transformers_chats_with_it(fine_tuned):
    import hashlib

    from transformers import AutoModelForCausalLM, AutoTokenizer

    s = fine_tuned
    assert s["finished"] and s["data"]["train"] > 100 and s["data"]["val"] > 0, s
    assert s["val_loss"] < s["base_val_loss"], s  # held-out assistant tokens, the same conversations before and after
    assert s["ends_turns"] >= 0.5, s
    assert 0 <= s["padding_share"] < 0.3, s
    final = s["final"]
    tok, hf = AutoTokenizer.from_pretrained(final), AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    end = tok.convert_tokens_to_ids("<|end|>")
    synthesized = [json.loads(x) for x in open(f"{s['run_dir']}/conversations.jsonl")]
    question = synthesized[0]["messages"][:1]
    ids = tok.apply_chat_template(question, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = hf.generate(**ids, max_new_tokens=200, do_sample=False)[0, ids["input_ids"].shape[1] :].tolist()
    assert end in out, tok.decode(out)
    reply = tok.decode(out[: out.index(end)], skip_special_tokens=True)
    ours = webmill("generate", s["run_dir"], "--chat", "--prompt", question[0]["content"], "--temperature", "0", "--max-new-tokens", "200")
    assert ours.returncode == 0 and ours.stdout.strip() == reply.strip(), (ours.stdout, reply)
    turns = question[0]["content"] + "\nTell me more.\n"
    chat = subprocess.run([*WEBMILL, "chat", s["run_dir"], "--temperature", "0"], input=turns, capture_output=True, text=True)
    assert chat.returncode == 0 and chat.stdout.count("assistant> ") == 2 and reply.strip() in chat.stdout, chat.stdout
    lineage = json.load(open(f"{final}/training.json"))
    assert lineage["kind"] == "sft" and lineage["base_training"]["data"]["shards_sha256"]
    assert lineage["conversations"]["sha256"] == hashlib.sha256(open(f"{s['run_dir']}/conversations.jsonl", "rb").read()).hexdigest()


@pytest.mark.slow
def test_sft_stopped_and_resumed_equals_the_straight_run(trained, root, config, tmp_path):
    args = ("--root", root.uri, "--config", str(config))
    straight = webmill(*args, "sft", trained["name"], "--name", "chat-a", "--max-steps", "12", "--json")
    first = webmill(*args, "sft", trained["name"], "--name", "chat-b", "--max-steps", "12", "--stop-after", "5", "--json")
    assert first.returncode == 0 and not json.loads(first.stdout.strip().splitlines()[-1])["finished"], first.stderr[-2000:]
    again = webmill(*args, "sft", "--resume", "chat-b", "--json")
    assert straight.returncode == 0 and again.returncode == 0, (straight.stderr[-2000:], again.stderr[-2000:])
    a, b = (json.loads(out.stdout.strip().splitlines()[-1]) for out in (straight, again))
    assert b["finished"] and b["step"] == 12
    losses = [[json.loads(x)["loss"] for x in open(f"{r['run_dir']}/metrics.jsonl")] for r in (a, b)]
    assert len(losses[0]) == 12 and losses[1] == losses[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "a question and no answer"}]}) + "\n{torn")
    out = webmill(*args, "sft", trained["name"], "--data", str(bad), "--name", "chat-c")
    assert out.returncode == 2 and str(bad) in out.stderr and "no assistant turn: 1" in out.stderr and "not JSON: 1" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_sft_bad_input_is_one_clear_line(root, config, tmp_path):
    args = ("--root", root.uri, "--config", str(config), "sft")
    none = webmill(*args, "nosuchrun")
    assert none.returncode == 2 and "no such run" in none.stderr and len(none.stderr.strip().splitlines()) == 1, none.stderr
    neither = webmill(*args)
    assert neither.returncode == 2 and "name the pretrained RUN" in neither.stderr


@pytest.mark.slow
def test_sweep_fits_a_law_on_the_shards_reuses_finished_runs_and_is_charted(root, config, tmp_path):
    args = ("--root", root.uri, "--config", str(config), "sweep", "--sizes", "32x1,64x1", "--tokens", "8k,16k,32k", "--name", "s")
    out = webmill(*args, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(s["points"]) == 6 and all(p["val_loss"] > 0 and not p["reused"] for p in s["points"])
    assert len({p["params"] for p in s["points"]}) == 2 and len({p["tokens"] for p in s["points"]}) == 3
    law = s["fit"]
    assert law["r2"] is not None and 0 <= law["alpha"] <= 2 and 0 <= law["beta"] <= 2
    assert set(law["residuals"]) == {p["label"] for p in s["points"]}
    assert len(s["compute_optimal"]) == 3 and s["target"]["corpus_tokens"] > 0 and "tokens" in s["target"]
    assert all(p["epochs"] == round(p["tokens_seen"] / s["target"]["corpus_tokens"], 3) for p in s["points"])
    assert isinstance(s["notes"], list)
    saved = json.loads(open(f"{root.uri}/sweeps/s/sweep.json").read())
    assert saved["fit"] == law
    again = webmill(*args)  # every run finished: reused, and the same fit printed
    assert again.returncode == 0, again.stderr[-2000:]
    assert "R²" in again.stdout and "alpha" in again.stdout and "compute-optimal" in again.stdout
    assert again.stderr.count("(reused)") == 6
    changed = tmp_path / "changed.toml"
    changed.write_text(config.read_text().replace("lr = 3e-3", "lr = 1e-3"))
    refused = webmill(*[str(changed) if a == str(config) else a for a in args])  # the same grid, another [train] lr
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "run 32x1-8000 was trained with other settings (lr 0.003 → 0.001)" in refused.stderr
    report = webmill("--root", root.uri, "report", "-o", str(tmp_path / "r.html"), "--json")
    assert report.returncode == 0, report.stderr[-2000:]
    charts = json.loads(report.stdout.strip().splitlines()[-1])["charts"]
    assert "Scaling law s: held-out loss vs tokens, one line per model size" in charts


def test_twenty_steps_equal_ten_plus_resume_plus_ten(root, config, tmp_path):
    over = dict(max_steps=20, seq_len=64, batch_tokens=1024, micro_batch=8, eval_every=10, checkpoint_every=10, warmup=3)
    straight = run_training(make_plan(root, small(config, **over), shards=None, name="straight"))
    first = run_training(make_plan(root, small(config, stop_after=10, **over), shards=None, name="split"))
    assert first["step"] == 10 and not first["finished"]
    second = run_training(resume_plan(root, "split", small(config, **over)))
    assert second["step"] == 20 and second["finished"]
    a = [json.loads(x)["loss"] for x in open(f"{straight['run_dir']}/metrics.jsonl")]
    b = [json.loads(x)["loss"] for x in open(f"{second['run_dir']}/metrics.jsonl")]
    assert len(a) == len(b) == 20
    assert a == b  # bit-identical on the same hardware


def test_resume_refuses_another_model_and_names_a_corrupt_checkpoint(root, config):
    over = dict(max_steps=4, seq_len=64, batch_tokens=512, micro_batch=8, checkpoint_every=2, stop_after=2)
    run_training(make_plan(root, small(config, **over), shards=None, name="guarded"))
    with pytest.raises(UserError, match="different model"):
        resume_plan(root, "guarded", small(config, **{**over, "preset": "small"}))
    with pytest.raises(UserError, match="different model"):
        resume_plan(root, "guarded", small(config, **{**over, "seq_len": 32}))
    plan = resume_plan(root, "guarded", small(config, **over))
    weights = f"{plan['run_dir']}/checkpoints/step-000002/model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(100)
    with pytest.raises(UserError, match="step-000002/model.safetensors: corrupt checkpoint file"):
        run_training(plan)


def test_a_run_is_named_as_the_root_shows_it_or_by_its_name(tmp_path):
    from webmill.shards.root import CorpusRoot
    from webmill.train.plan import run_of
    from webmill.train.runfiles import RunFiles

    corpus = CorpusRoot.open(str(tmp_path / "corpus"), create=True)
    assert RunFiles.named(corpus, "runs/main-1").rel == RunFiles.named(corpus, "main-1").rel == "runs/main-1"
    assert RunFiles.named(corpus, "/runs/main-1/").rel == "runs/main-1"
    assert run_of(corpus, "runs/main-1") == run_of(corpus, "main-1") == "runs/main-1"  # webmill sft's reading


def test_bad_input_is_one_clear_line(root, config, tmp_path):
    with pytest.raises(UserError, match="rotary table"):
        make_plan(root, small(config, seq_len=4096), shards=None, name="x")
    out = webmill("--root", str(tmp_path / "empty"), "train")
    assert out.returncode == 2 and "no training shards" in out.stderr and "Traceback" not in out.stderr
    out = webmill("--root", root.uri, "train", "--shards", "nothing/here")
    assert out.returncode == 2 and "no shards at" in out.stderr
    out = webmill("--root", root.uri, "generate", str(tmp_path / "norun"))
    assert out.returncode == 2 and "no such run" in out.stderr


@pytest.mark.slow
def test_two_cpu_workers_under_ray_train(root, config, ray_local):
    cfg = small(config, max_steps=6, seq_len=64, batch_tokens=2048, micro_batch=8, eval_every=3, checkpoint_every=3, workers=2)
    s = run_training(make_plan(root, cfg, shards=None, name="ddp"), ray_fn=lambda: ray_local)
    assert s["workers"] == 2 and s["finished"] and s["step"] == 6
    assert s["tokens_seen"] == 6 * 2048
    ckpt = json.load(open(f"{s['run_dir']}/checkpoints/step-000006/state.json"))
    assert len(ckpt["loaders"]) == 2 and ckpt["loaders"][0]["layout"]["rank"] == 0
