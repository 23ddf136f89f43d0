"""The JSON files of a root (manifests, plans, summaries, checkpoint states, sweeps), read by one loader.

Anyone who can write a shared root can leave a damaged or crafted file there: not JSON, nested
past Python's recursion limit, a list where a table belongs, a key of the wrong type. Each of
those is one ``DamagedFile`` line naming the file (a ``UserError``: exit 2, no traceback), never
a traceback from deep inside the code that used the value.

    doc = parse(data, "s3://bucket/corpus/runs/x/plan.json", required={"name": str, "data": dict})
"""

from __future__ import annotations

import json
from typing import Any

from webmill.errors import CorruptPartError, first_line

# Python's json module recurses once per level: a line of 100,000 '[' raises RecursionError, which
# is not a ValueError and escaped every `except ValueError` around a json.loads.
PARSE_ERRORS = (ValueError, RecursionError, UnicodeDecodeError)


class DamagedFile(CorruptPartError):
    """A JSON file of the root that is not what webmill wrote there."""


def parse(data: bytes | str, shown: str, *, shape: type = dict, required: dict[str, type | tuple] | None = None) -> Any:
    """``data`` as JSON of ``shape`` holding ``required`` keys of the given types; DamagedFile otherwise."""
    try:
        obj = json.loads(data)
    except RecursionError:
        raise DamagedFile(f"{shown}: damaged file (JSON nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DamagedFile(f"{shown}: damaged file (not JSON: {first_line(e)})") from None
    if not isinstance(obj, shape):
        raise DamagedFile(f"{shown}: damaged file (a JSON {type(obj).__name__}, not a {shape.__name__})")
    check_keys(obj, required or {}, shown)
    return obj


def check_keys(obj: dict, required: dict[str, type | tuple], shown: str, where: str = "") -> None:
    for key, kind in required.items():
        if key not in obj:
            raise DamagedFile(f"{shown}: damaged file (no {where}{key!r})")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            names = "/".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
            raise DamagedFile(f"{shown}: damaged file ({where}{key!r} is a {type(obj[key]).__name__}, not a {names})")


def marker(root, *parts: str) -> dict | None:
    """A small progress marker of a stage (a pass's fingerprint): a damaged one is as good as none,
    and the work it marked is done again."""
    if not root.exists(*parts):
        return None
    try:
        return read(root, *parts)
    except DamagedFile:
        return None


def read(root, *parts: str, shape: type = dict, required: dict[str, type | tuple] | None = None) -> Any:
    """A JSON file of the root, through ``parse``."""
    return parse(root.read_bytes(*parts), root.display(*parts), shape=shape, required=required)
