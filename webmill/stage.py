"""The stage contract: what every stage of the pipeline is.

A stage is built with its inputs (a verb builds it from its flags; ``webmill run`` builds it from
the summaries of the stages before it, through ``following``) and then::

    stage.name                          "crawl", "clean", "dedup", "shard", "tokenizer", "train"
    stage.settings(config)              the config it is made from: its fingerprint's input
    stage.reads()                       the datasets it reads (paths in the root, or URIs)
    stage.writes(summary)               the files that exist once its output is committed
                                        (none: the summary is of unfinished work)
    stage.run(root, ray, config, progress) -> summary
    stage.brief(summary)                its summary in one line

``ray`` is a function that starts (or joins) Ray and returns the module, so a stage that finds its
output up to date never starts it; ``progress`` is a ``webmill.progress.Progress``. Each stage's
class lives in its own folder (``crawl/stage.py``, ``clean/stage.py``, ``dedup/stage.py``,
``shards/stage.py``, ``train/stage.py``); ``webmill.pipeline.run`` is a loop over them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from webmill.config import Config
from webmill.progress import Progress
from webmill.shards.root import CorpusRoot

RayFn = Callable[[], Any]


@runtime_checkable
class Stage(Protocol):
    name: str

    def settings(self, config: Config) -> dict: ...

    def reads(self) -> list[str]: ...

    def writes(self, summary: dict) -> list[str]: ...

    def run(self, root: CorpusRoot, ray: RayFn, config: Config, progress: Progress) -> dict: ...

    def brief(self, summary: dict) -> str: ...


@dataclass
class Chain:
    """What ``webmill run`` hands a stage's ``following``: the root, the run's config, the summaries
    and the fingerprint of the stages before it, and the crawl spec of the run's ``[crawl]`` table
    (None when ``[run] crawl`` names an existing crawl)."""

    root: CorpusRoot
    config: Config
    upstream: dict[str, dict]
    upstream_fingerprint: str | None
    crawl_spec: dict | None = None

    def fingerprint(self, name: str, settings: dict) -> str:
        """The fingerprint the pipeline records for a stage of these settings (a stage that names its
        output after it, the crawl id or the training run, computes it here)."""
        return fingerprint(name, settings, self.upstream_fingerprint)


def fingerprint(name: str, settings: dict, upstream: str | None) -> str:
    """A stage's fingerprint: its name, its settings and the fingerprint of the stage before it, so a
    change anywhere redoes that stage and every one after it."""
    return hashlib.sha256(json.dumps([name, settings, upstream], sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_committed(root: CorpusRoot, stage: Stage, summary: dict) -> bool:
    """Whether the output a stage's summary describes is all in the root (a stage that wrote nothing
    committed, a training run stopped early, is not)."""
    paths = stage.writes(summary)
    return bool(paths) and all(root.exists(path) for path in paths)
