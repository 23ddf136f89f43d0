"""Credentials in a root's URI (#29, findings 1 and 2): never written into the root, never printed.

A root given as ``s3://KEY:SECRET@bucket/…`` (or with ``?access_key=&secret_key=``) is how a
cron job on a machine without AWS files names its bucket; everything a run writes lives in
that bucket, readable by everyone who can read it."""

from __future__ import annotations

import os

import pytest
from helpers_train import shard_root
from hostile_helpers import webmill
from sites import real_site

from webmill.shards.objectstore import parse_uri, public_uri


@pytest.mark.parametrize(
    "uri, secret",
    [
        ("s3://AKIAEXAMPLE:ab/cd+ef/gh@corpus/x?region=us-east-1", "ab/cd+ef/gh"),
        ("s3://AKIAEXAMPLE:a#b?c/d@corpus/x", "a#b?c/d"),
        ("s3://corpus/x?access_key=AKIAEXAMPLE&secret_key=s3cr/et#9?z&region=us-east-1", "s3cr/et#9?z"),
        ("s3://AKIAEXAMPLE:pa%2Fss@corpus/x", "pa/ss"),
    ],
)
def test_secrets_are_parsed_out_never_split_out(uri, secret):
    parsed = parse_uri(uri)
    assert parsed.host == "corpus" and parsed.path == "/x" and parsed.secret == secret and parsed.user == "AKIAEXAMPLE"
    shown = public_uri(uri)
    assert "AKIAEXAMPLE" not in shown and secret not in shown and secret.split("/")[0] not in shown
    assert shown.startswith("s3://corpus/x")


def test_a_path_with_an_at_sign_is_not_taken_for_credentials():
    assert public_uri("s3://corpus/logs@2026/x?region=eu") == "s3://corpus/logs@2026/x?region=eu"


@pytest.mark.parametrize("form", ["user", "query"])
def test_refused_credentials_are_never_printed(s3, tmp_path, form, hostile):
    """Wrong credentials holding '/', '#' and '?' as AWS and MinIO secrets do: the one-line error
    names the bucket, not a byte of the secret."""
    hostile.tried(f"refused secret with / # ? in the URI's {form} part")
    secret, key = "Wr0ng/s3cr#t?x", "AKIAWRONGKEY"
    base = s3.uri("refused")
    bucket_path, query = base.split("://", 1)[1].split("?", 1)
    uri = f"s3://{key}:{secret}@{bucket_path}?{query}" if form == "user" else f"{base}&access_key={key}&secret_key={secret}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_EC2_METADATA_DISABLED": "true"}
    out = webmill("--root", uri, "stats", env=env, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "credentials refused" in err, err
    for fragment in (secret, "Wr0ng", "s3cr#t", "t?x", key):
        assert fragment not in err + out.stdout, err


@pytest.mark.slow
def test_a_run_on_a_bucket_stores_no_credentials(s3, tmp_path, small_config, hostile):
    """train and sft on ``s3://KEY:SECRET@bucket/…``: no object of the run (plan.json above all)
    holds the key or the secret, and the runs still resume from the redacted plan."""
    hostile.tried("credentials in the root URI: train's plan.json", "credentials in the root URI: sft's plan.json")
    base = s3.uri("with-credentials")
    shard_root(base, real_site("postgresql-15"), limit=120, vocab=512, row_group_rows=32)
    bucket_path, query = base.split("://", 1)[1].split("?", 1)
    uri = f"s3://{s3.key_id}:{s3.secret}@{bucket_path}?{query}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_EC2_METADATA_DISABLED": "true"}
    args = ("--root", uri, "--config", small_config)
    # sft reads the pretrained run's redacted plan.json: a redacted plan still runs
    for argv in (("train", "--name", "base"), ("sft", "base", "--name", "chat", "--max-steps", "2")):
        out = webmill(*args, *argv, env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert s3.secret not in out.stdout + out.stderr
    prefix = bucket_path.split("/", 1)[1]
    keys = s3.keys(prefix)
    assert any(k.endswith("runs/base/plan.json") for k in keys) and any(k.endswith("runs/chat/plan.json") for k in keys)
    client = s3.boto()
    for k in keys:
        if k.endswith((".json", ".jsonl", "latest")):
            body = client.get_object(Bucket="corpus", Key=k)["Body"].read().decode("utf-8", "replace")
            assert s3.secret not in body and s3.key_id not in body, k
