"""A filesystem wrapper that fails like a sick object store: every read of the objects whose path
contains ``fail_on`` (a persistent error), or every k-th open (a transient one)."""

from __future__ import annotations

import pyarrow.fs as pafs
from fshandler import DelegatingHandler


class FlakyHandler(DelegatingHandler):
    def __init__(self, fs: pafs.FileSystem, fail_on: str | None = None, every: int = 0):
        super().__init__(fs)
        self.fail_on, self.every, self.calls = fail_on, every, 0

    def __getstate__(self):
        return {"fs": self.fs, "fail_on": self.fail_on, "every": self.every, "calls": 0}

    def _maybe_fail(self, path: str) -> None:
        if not path.endswith(".warc.gz"):
            return
        self.calls += 1
        if self.fail_on and self.fail_on in path:
            raise OSError(f"When reading key '{path}': AWS Error ACCESS_DENIED during GetObject operation")
        if self.every and self.calls % self.every == 0:
            raise OSError(
                f"When reading key '{path}': AWS Error NETWORK_CONNECTION during GetObject operation: "
                "curlCode: 7, Could not connect to server"
            )

    def open_input_stream(self, path):
        self._maybe_fail(path)
        return super().open_input_stream(path)

    def open_input_file(self, path):
        self._maybe_fail(path)
        return super().open_input_file(path)
