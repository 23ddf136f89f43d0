"""A filesystem wrapper that fails like a sick object store: every read of the objects whose path
contains ``fail_on`` (a persistent error), or every k-th open (a transient one)."""
from __future__ import annotations

import pyarrow.fs as pafs


class FlakyHandler(pafs.FileSystemHandler):
    def __init__(self, fs: pafs.FileSystem, fail_on: str | None = None, every: int = 0):
        self.fs, self.fail_on, self.every, self.calls = fs, fail_on, every, 0

    def _maybe_fail(self, path: str) -> None:
        self.calls += 1
        if self.fail_on and self.fail_on in path:
            raise OSError(f"When reading key '{path}': AWS Error ACCESS_DENIED during GetObject operation")
        if self.every and self.calls % self.every == 0:
            raise OSError(f"When reading key '{path}': AWS Error NETWORK_CONNECTION during GetObject operation: "
                          "curlCode: 7, Could not connect to server")

    def __getstate__(self):
        return {"fs": self.fs, "fail_on": self.fail_on, "every": self.every, "calls": 0}

    def get_type_name(self):
        return "flaky"

    def equals(self, other):
        return self is other

    def get_file_info(self, paths):
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self.fs.delete_dir_contents("", accept_root_dir=True)

    def delete_file(self, path):
        self.fs.delete_file(path)

    def move(self, src, dest):
        self.fs.move(src, dest)

    def copy_file(self, src, dest):
        self.fs.copy_file(src, dest)

    def open_input_stream(self, path):
        if path.endswith(".warc.gz"):
            self._maybe_fail(path)
        return self.fs.open_input_stream(path)

    def open_input_file(self, path):
        if path.endswith(".warc.gz"):
            self._maybe_fail(path)
        return self.fs.open_input_file(path)

    def open_output_stream(self, path, metadata):
        return self.fs.open_output_stream(path, compression=None)

    def open_append_stream(self, path, metadata):
        return self.fs.open_append_stream(path)

    def normalize_path(self, path):
        return path
