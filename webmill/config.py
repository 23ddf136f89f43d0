"""One TOML file with a table per stage, validated on load."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass

from webmill.clean.config import CleanConfig
from webmill.crawl.config import CrawlConfig
from webmill.dedup.config import DedupConfig
from webmill.errors import ConfigError
from webmill.pipeline.config import RunConfig
from webmill.settings import field, from_table
from webmill.shards.config import ShardsConfig
from webmill.train.config import SftConfig, TrainConfig


@dataclass
class RootConfig:
    shared_filesystem: bool = field(
        False,
        "a local --root path is one filesystem every node of the Ray cluster "
        "mounts (NFS, Lustre…); without it a local root on a multi-node cluster "
        "is refused",
    )


SECTIONS = {
    "root": RootConfig,
    "crawl": CrawlConfig,
    "clean": CleanConfig,
    "dedup": DedupConfig,
    "shards": ShardsConfig,
    "train": TrainConfig,
    "sft": SftConfig,
    "run": RunConfig,
}


@dataclass
class Config:
    root: RootConfig = dataclasses.field(default_factory=RootConfig)
    crawl: CrawlConfig = dataclasses.field(default_factory=CrawlConfig)
    clean: CleanConfig = dataclasses.field(default_factory=CleanConfig)
    dedup: DedupConfig = dataclasses.field(default_factory=DedupConfig)
    shards: ShardsConfig = dataclasses.field(default_factory=ShardsConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    sft: SftConfig = dataclasses.field(default_factory=SftConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    source: str | None = None

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}


def load_config(path: str | os.PathLike | None) -> Config:
    """Read and validate a config file; None gives the defaults."""
    if path is None:
        return Config()
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    tables = {}
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigError(f"{path}: unknown table [{key}] (expected one of: {', '.join('[' + s + ']' for s in SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a table ([{key}]), got {value!r}")
        tables[key] = from_table(SECTIONS[key], value, source=path, section=key)
    return Config(**tables, source=path)
