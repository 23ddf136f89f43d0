"""The corpus root: one local path or URI that pyarrow.fs understands.

Every read and write of a stage goes through a CorpusRoot, so the same code runs
on a local disk, S3, GCS or HDFS. Paths handed around are relative to the root.
"""

from __future__ import annotations

import os
import posixpath
import uuid

import pyarrow.fs as pafs

from webmill.errors import RootError, UserError, first_line
from webmill.shards.objectstore import check_s3_root, describe, public_uri, s3_filesystem


class PathOutsideRoot(UserError):
    """A path built from a name or read from a record that would leave the root."""


class CorpusRoot:
    def __init__(self, fs: pafs.FileSystem, base: str, uri: str | None = None):
        self.fs = fs
        self.base = base.rstrip("/") or "/"
        self.uri = uri or base
        self.shown = public_uri(self.uri)
        # folder → the owner token of the lease this process (or the run that sent this root to a
        # Ray task) holds on it, on an object store (webmill.locks); travels with the root
        self.fences: dict[str, str] = {}

    @classmethod
    def open(cls, root: "str | os.PathLike | CorpusRoot", *, create: bool = True, writable: bool = True) -> "CorpusRoot":
        """Resolve ``root`` (path, URI, or an existing CorpusRoot) and check it can be used."""
        if isinstance(root, CorpusRoot):
            return root
        uri = os.fspath(root)
        try:
            if uri.lower().startswith("s3://"):
                fs, base = s3_filesystem(uri)
                check_s3_root(uri, base)
            elif "://" in uri:
                fs, base = pafs.FileSystem.from_uri(uri)
            else:
                fs, base = pafs.LocalFileSystem(), os.path.abspath(uri)
        except RootError:
            raise
        except Exception as e:  # pyarrow raises several types for a bad URI
            raise RootError(f"corpus root {public_uri(uri)}: cannot open ({first_line(e)})") from None
        self = cls(fs, base, uri)
        self._check(create=create, writable=writable)
        return self

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @classmethod
    def from_filesystem(cls, fs: pafs.FileSystem, base: str = "", *, create: bool = True) -> "CorpusRoot":
        self = cls(fs, base, f"{fs.type_name}:{base or '/'}")
        self._check(create=create, writable=True)
        return self

    def _check(self, *, create: bool, writable: bool) -> None:
        try:
            info = self.fs.get_file_info(self.base)
        except Exception as e:
            raise RootError(f"corpus root {self.shown}: unreachable ({describe(e)})") from None
        if info.type == pafs.FileType.File:
            raise RootError(f"corpus root {self.shown}: is a file, not a directory")
        if info.type == pafs.FileType.NotFound:
            if not create:
                raise RootError(f"corpus root {self.shown}: does not exist")
            try:
                self.fs.create_dir(self.base, recursive=True)
            except Exception as e:
                raise RootError(f"corpus root {self.shown}: cannot create ({describe(e)})") from None
        if writable:
            probe = self.path(f".webmill-probe-{uuid.uuid4().hex}")
            try:
                with self.fs.open_output_stream(probe, compression=None) as f:
                    f.write(b"ok")
                self.fs.delete_file(probe)
            except Exception as e:
                raise RootError(f"corpus root {self.shown}: not writable ({describe(e)})") from None

    # paths -------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Absolute path inside the filesystem for a path relative to the root. Parts come
        from names and records, so one that is absolute or climbs out with '..' is refused."""
        rel = posixpath.join(*parts) if parts else ""
        if not rel:
            return self.base
        norm = posixpath.normpath(rel)
        if any(p.startswith("/") or "\x00" in p for p in parts) or norm == ".." or norm.startswith("../"):
            raise PathOutsideRoot(f"path {rel!r} leaves the corpus root {self.shown}")
        if norm == ".":
            return self.base
        full = posixpath.join(self.base, norm)
        if self.is_local:
            self._check_links(full, norm)
        return full

    def _check_links(self, full: str, rel: str) -> None:
        """A symlink inside a local root that leads out of it (``runs/x -> ../../elsewhere``) would
        take writes and recursive deletes with it: such a path is refused, naming the link. Links
        that stay inside the root are followed. A folder found inside is remembered (at most 4,096
        of them), so a path costs one lstat of its last part after the first."""
        safe = self.__dict__.setdefault("_safe_dirs", {})
        parent = posixpath.dirname(full)
        if parent not in safe:
            if not self._inside(os.path.realpath(parent)):
                self._refuse_link(full, rel)
            if len(safe) >= 4096:
                safe.clear()
            safe[parent] = True
        if os.path.islink(full) and not self._inside(os.path.realpath(full)):
            self._refuse_link(full, rel)

    def _inside(self, real: str) -> bool:
        base = self._real_base
        return real == base or real.startswith(base.rstrip("/") + "/")

    def _refuse_link(self, full: str, rel: str) -> None:
        link, here = full, self.base
        for part in rel.split("/"):
            here = posixpath.join(here, part)
            if os.path.islink(here):
                link = here
                break
        raise PathOutsideRoot(
            f"{link} is a symlink that leads out of the corpus root {self.shown} (to {os.path.realpath(link)}); "
            f"remove it, or make it a folder inside the root"
        )

    @property
    def _real_base(self) -> str:
        real = self.__dict__.get("_real")
        if real is None:
            real = self.__dict__["_real"] = os.path.realpath(self.base)
        return real

    def local_path(self, *parts: str) -> str | None:
        """A real local file path, where the root is on a local disk (SQLite needs one)."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return self.path(*parts)
        return None

    def display(self, *parts: str) -> str:
        rel = posixpath.join(*parts) if parts else ""
        if "://" in self.uri:  # the URI without its options and credentials
            return self.shown.split("?", 1)[0].rstrip("/") + ("/" + rel if rel else "")
        return self.path(*parts)

    # small-file operations ---------------------------------------------
    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def is_dir(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type == pafs.FileType.Directory

    def makedirs(self, *parts: str) -> None:
        self.fs.create_dir(self.path(*parts), recursive=True)

    def listdir(self, *parts: str) -> list[str]:
        """Names directly inside a directory of the root; empty when it does not exist."""
        sel = pafs.FileSelector(self.path(*parts), allow_not_found=True, recursive=False)
        return sorted(posixpath.basename(i.path) for i in self.fs.get_file_info(sel))

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.path(*parts), compression=None) as f:
            return f.read()

    def write_bytes_atomic(self, data: bytes, *parts: str) -> None:
        """Write to a temporary name beside the target, then rename into place. On a local disk
        the data and the rename are fsynced, so a power loss leaves the old file or the new one,
        never an empty one (an empty commit record would make its dataset unreadable)."""
        target = self.path(*parts)
        if self.fences:
            self.check_fence(posixpath.join(*parts))
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        tmp = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}.{uuid.uuid4().hex}.tmp")
        if self.is_local:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_dir(posixpath.dirname(target))
            return
        with self.fs.open_output_stream(tmp, compression=None) as f:
            f.write(data)
        self.fs.move(tmp, target)

    def check_fence(self, rel: str) -> None:
        """Before a commit point under a leased folder: the lease must still be this run's. A run
        stopped past its lease (a paused VM, a stalled process) whose folder another run has since
        taken stops here with one line, instead of writing checkpoints or records over the other's."""
        from webmill.locks import LEASE, check_owner

        rel = posixpath.normpath(rel)
        if posixpath.basename(rel) == LEASE:
            return
        for where, owner in list(self.fences.items()):
            if rel == where or rel.startswith(where + "/"):
                check_owner(self, where, owner, rel)

    def delete(self, *parts: str) -> None:
        p = self.path(*parts)
        info = self.fs.get_file_info(p)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(p)
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(p)

    def __reduce__(self):
        # An s3:// root is rebuilt from its URI on the other side: pyarrow does not pickle the
        # retry strategy. Other filesystems pickle whole.
        if self.uri.lower().startswith("s3://"):
            return (_reopen_s3, (self.uri, dict(self.fences)))
        return (_rebuild, (self.fs, self.base, self.uri, dict(self.fences)))

    def __repr__(self) -> str:
        return f"CorpusRoot({self.shown!r})"


def fsync_file(path: str) -> None:
    """Flush a local file's data to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename inside a local folder durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory
    finally:
        os.close(fd)


def _reopen_s3(uri: str, fences: dict | None = None) -> CorpusRoot:
    fs, base = s3_filesystem(uri)
    return _rebuild(fs, base, uri, fences)


def _rebuild(fs, base: str, uri: str, fences: dict | None = None) -> CorpusRoot:
    root = CorpusRoot(fs, base, uri)
    root.fences.update(fences or {})
    return root
