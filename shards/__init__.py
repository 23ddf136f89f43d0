"""The shard store: Parquet datasets under a corpus root, committed part by part.

Every stage reads and writes its datasets through this package, so the commit
protocol (temporary name, rename, commit record) lives in one place.
"""

from webmill.shards.manifest import Manifest
from webmill.shards.reader import DatasetReader
from webmill.shards.root import CorpusRoot
from webmill.shards.writer import DatasetWriter

__all__ = ["CorpusRoot", "DatasetWriter", "DatasetReader", "Manifest"]
