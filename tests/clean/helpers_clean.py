import json
import subprocess
import sys

from webmill.shards import CorpusRoot, DatasetReader


def webmill_run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def clean_json(tmp_path, *args):
    out = webmill_run("--root", tmp_path / "root", "clean", *args, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def read(tmp_path, dataset):
    return DatasetReader(CorpusRoot.open(tmp_path / "root"), dataset, verify=True).read_all().to_pylist()
