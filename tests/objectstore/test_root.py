"""The corpus root on a real S3-compatible server: opening, bad input, faults."""

import pyarrow as pa
import pytest

from webmill.errors import RootError
from webmill.shards import CorpusRoot, DatasetReader, DatasetWriter


def test_s3_root_round_trip(s3):
    uri = s3.uri()
    root = CorpusRoot.open(uri)
    w = DatasetWriter(root, "clean/r/docs", pa.schema([("id", pa.string())]))
    w.write_unit("u0", [pa.table({"id": ["a", "b"]})])
    w.finalize(stage="test")
    # the root travels to Ray workers as its URI and is rebuilt there
    import pickle

    again = pickle.loads(pickle.dumps(root))
    assert DatasetReader(again, "clean/r/docs").read_all().column("id").to_pylist() == ["a", "b"]
    assert root.display("clean") == uri.split("?")[0] + "/clean"
    prefix = uri.split("corpus/", 1)[1].split("?")[0]
    assert any(k.startswith(prefix + "/clean/r/docs/") for k in s3.keys(prefix))


@pytest.mark.parametrize("case", ["no_bucket", "wrong_credentials", "unreachable"])
def test_bad_object_store_root_is_one_line(s3, case, tmp_path, monkeypatch, capsys):
    from webmill.cli import main

    if case == "no_bucket":
        uri, expect = s3.uri(bucket="no-such-bucket"), "bucket 'no-such-bucket' does not exist"
    elif case == "wrong_credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        uri, expect = s3.uri(), "credentials refused"
    else:
        from s3server import free_port

        uri, expect = s3.uri(port=free_port()), "endpoint unreachable"
    with pytest.raises(RootError, match=expect):
        CorpusRoot.open(uri)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["--root", uri, "stats"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and uri.split("?")[0] in err[0] and expect in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere else
