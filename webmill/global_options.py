"""Global options anywhere on the command line.

``webmill clean --root R`` and ``webmill --root R clean`` mean the same: the global
options (``--root``, ``--ray-address``, ``--config``, ``-v``, ``-q``) found after the verb
are moved in front of it before click parses the line. The walk follows the command
tree, so a verb option's value is never mistaken for a global option (``--prompt -q``
stays the prompt), and everything after ``--`` is left alone.
"""
from __future__ import annotations

import click

# global option → whether it takes a value
GLOBAL = {"--root": True, "--ray-address": True, "--config": True, "-v": False, "--verbose": False,
          "-q": False, "--quiet": False}


def _global(token: str) -> tuple[bool, bool]:
    """(is a global option, its value is the next token)."""
    name, eq, _ = token.partition("=")
    if name in GLOBAL:
        return True, GLOBAL[name] and not eq
    if len(token) > 2 and token[0] == "-" and token[1] != "-" and set(token[1:]) <= {"v", "q"}:
        return True, False  # -vv, -vq
    return False, False


def _takes_value(cmd: click.Command, ctx: click.Context, token: str) -> bool:
    """Whether ``token`` is one of ``cmd``'s options whose value is the next token."""
    name = token.partition("=")[0]
    if "=" in token:
        return False
    for p in cmd.get_params(ctx):
        if isinstance(p, click.Option) and name in (*p.opts, *p.secondary_opts):
            return not p.is_flag and not p.count
    return False


def hoist(group: click.Group, argv: list[str]) -> list[str]:
    """``argv`` with the global options that follow the verb moved in front of it."""
    front: list[str] = []
    rest: list[str] = []
    i, cmd = 0, group
    ctx = click.Context(group)
    # the group's own options, up to the verb
    while i < len(argv):
        tok = argv[i]
        is_global, with_value = _global(tok)
        if is_global:
            front += argv[i:i + 1 + with_value]
            i += 1 + with_value
            continue
        break
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            rest += argv[i:]
            break
        is_global, with_value = _global(tok)
        if is_global and cmd is not group:
            front += argv[i:i + 1 + with_value]
            i += 1 + with_value
            continue
        rest.append(tok)
        i += 1
        if tok.startswith("-"):
            if _takes_value(cmd, ctx, tok) and i < len(argv):
                rest.append(argv[i])
                i += 1
        elif isinstance(cmd, click.Group):
            sub = cmd.get_command(ctx, tok)
            if sub is None:  # click says "No such command" itself
                rest += argv[i:]
                break
            cmd = sub
    return front + rest
