"""Typed, validated settings tables.

A stage declares its ``[table]`` as a dataclass; ``field`` adds the range and the
help line. ``from_table`` checks a TOML table against it: an unknown key, a wrong
type or an out-of-range value is one ConfigError naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from webmill.errors import ConfigError


def field(default: Any, help: str = "", *, min: float | None = None, max: float | None = None, choices: tuple | None = None):
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(typ) -> str:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + " (or absent)"
    if origin is list:
        return f"a list of {_describe(args[0])}s"
    if origin is dict:
        return f"a table of {_describe(args[1])}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(typ, str(typ))


def _coerce(value: Any, typ) -> Any:
    """Return value as typ, or raise TypeError."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a)
            except TypeError:
                pass
        raise TypeError
    if origin is list:
        if isinstance(value, str) and args[0] is str:
            return [value]
        if not isinstance(value, list):
            raise TypeError
        return [_coerce(v, args[0]) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError
        return {str(k): _coerce(v, args[1]) for k, v in value.items()}
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if typ is str:
        if isinstance(value, str):
            return value
        raise TypeError
    return value


def _check_range(value, meta) -> str | None:
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    values = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    for v in values:
        if v is None:
            continue
        if choices is not None and v not in choices:
            return "one of " + ", ".join(repr(c) for c in choices)
        if lo is not None and v < lo:
            return f">= {lo}" + (f" and <= {hi}" if hi is not None else "")
        if hi is not None and v > hi:
            return f"<= {hi}" + (f" and >= {lo}" if lo is not None else "")
    return None


def from_table(cls, table: dict, *, source: str, section: str):
    """Build the dataclass ``cls`` from a TOML table, validating every key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{source}: [{section}] {key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key (known keys: {known})")
        typ = hints[key]
        try:
            value = _coerce(value, typ)
        except TypeError:
            raise ConfigError(f"{where}: expected {_describe(typ)}, got {value!r}") from None
        bad = _check_range(value, fields[key].metadata)
        if bad:
            raise ConfigError(f"{where}: expected a value {bad}, got {value!r}")
        values[key] = value
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check:
        problem = check()
        if problem:
            raise ConfigError(f"{source}: [{section}] {problem}")
    return obj


def override(obj, *, source: str = "command line", section: str = "", **values):
    """A copy of ``obj`` with the non-None values (CLI flags) validated and applied."""
    table = {k: v for k, v in values.items() if v is not None}
    if not table:
        return obj
    merged = {**dataclasses.asdict(obj), **table}
    return from_table(type(obj), merged, source=source, section=section)


def help_lines(cls, section: str) -> list[str]:
    out = [f"[{section}]"]
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(f"  {f.name} = {default!r}  # {f.metadata.get('help', '')}")
    return out
