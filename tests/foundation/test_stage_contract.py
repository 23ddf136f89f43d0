"""Every stage keeps the one contract (webmill.stage), lives in its own folder, and webmill run
is the loop over them in order."""

import inspect

from webmill.pipeline.run import CHAIN, STAGES
from webmill.stage import Stage

FOLDER = {"crawl": "crawl", "clean": "clean", "dedup": "dedup", "shard": "shards", "tokenizer": "train", "train": "train"}


def test_each_stage_implements_the_contract_in_its_own_folder():
    assert STAGES == ("crawl", "clean", "dedup", "shard", "tokenizer", "train")
    for cls in CHAIN:
        assert cls.__module__ == f"webmill.{FOLDER[cls.name]}.stage", cls
        for method in ("settings", "reads", "writes", "run", "brief"):
            assert callable(getattr(cls, method, None)), (cls, method)
        assert list(inspect.signature(cls.run).parameters) == ["self", "root", "ray", "config", "progress"], cls
        assert isinstance(getattr(cls, "following", None), type(CHAIN[0].following)), cls  # a classmethod
    from webmill.clean.stage import CleanStage
    from webmill.shards.stage import ShardStage
    from webmill.train.stage import TokenizerStage, TrainStage

    for stage in (CleanStage([], "r"), ShardStage(), TokenizerStage("s"), TrainStage("s", "n")):
        assert isinstance(stage, Stage)


def test_a_stage_is_committed_only_when_everything_it_writes_is_there(tmp_path):
    from webmill.shards import CorpusRoot, layout
    from webmill.stage import is_committed
    from webmill.train.stage import TrainStage

    root = CorpusRoot.open(tmp_path / "root")
    stage = TrainStage("s", "n")
    assert not is_committed(root, stage, {"name": "n", "final": None})  # stopped early: never up to date
    assert not is_committed(root, stage, {"name": "n", "final": "x"})
    root.write_bytes_atomic(b"{}", layout.run("n"), "final", "training.json")
    assert is_committed(root, stage, {"name": "n", "final": "x"})
