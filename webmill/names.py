"""Names that become paths (run names, crawl ids, shard sets, dataset paths): one safe character set.

A name is 1–128 characters of letters, digits, '.', '_' and '-', not starting with '.', '_'
or '-' (so it is never hidden, never a shard-store folder such as ``_commits`` and never an
option). Everything a user or a record names is checked here before it is joined to a root.
"""

from __future__ import annotations

import re

from webmill.errors import UserError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class UnsafeNameError(UserError):
    """A user-given name, or a path read from a record, that is not a safe name inside the root."""


def is_safe_name(value: str) -> bool:
    return isinstance(value, str) and bool(_NAME.fullmatch(value)) and ".." not in value


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe name; else one clear line naming ``what`` it was."""
    if not is_safe_name(value):
        raise UnsafeNameError(
            f"{what} {value!r}: not a valid name (1-128 letters, digits, '.', '_', '-', starting with a letter or digit, no '..')"
        )
    return value


def check_dataset_path(value: str, what: str) -> str:
    """A root-relative dataset path such as ``clean/run/docs``: every segment a safe name."""
    parts = value.strip("/").split("/") if isinstance(value, str) else [value]
    if not value or any(not is_safe_name(p) for p in parts):
        raise UnsafeNameError(f"{what} {value!r}: not a dataset path inside the root (segments of letters, digits, '.', '_', '-')")
    return value
