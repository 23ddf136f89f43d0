"""The ``[run]`` table: how ``webmill run`` wires the stages."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field


@dataclass
class RunConfig:
    crawl: str = field("", "clean this existing crawl id instead of crawling [crawl] seeds")
    train: bool = field(True, "train a model at the end of the pipeline")
