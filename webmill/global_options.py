"""Global options anywhere on the command line.

``webmill clean --root R`` and ``webmill --root R clean`` mean the same: the global
options (``--root``, ``--ray-address``, ``--config``, ``-v``, ``-q``) found after the verb
are moved in front of it before click parses the line. The walk follows the command
tree, so a verb option's value is never mistaken for a global option (``--prompt -q``
stays the prompt), and everything after ``--`` is left alone.
"""

from __future__ import annotations

import click


def _globals(group: click.Group) -> tuple[dict[str, bool], set[str]]:
    """The group's own options (name → takes a value), and the letters of its short flags,
    read from its click declaration in ``webmill.cli``."""
    names: dict[str, bool] = {}
    letters: set[str] = set()
    for p in group.params:
        if isinstance(p, click.Option) and p.name not in ("version", "help"):
            takes = not p.is_flag and not p.count
            for opt in (*p.opts, *p.secondary_opts):
                names[opt] = takes
                if not takes and len(opt) == 2 and opt[0] == "-" and opt[1] != "-":
                    letters.add(opt[1])
    return names, letters


def _global(token: str, names: dict[str, bool], letters: set[str]) -> tuple[bool, bool]:
    """(is a global option, its value is the next token)."""
    name, eq, _ = token.partition("=")
    if name in names:
        return True, names[name] and not eq
    if len(token) > 2 and token[0] == "-" and token[1] != "-" and set(token[1:]) <= letters:
        return True, False  # -vv
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
    """``argv`` with the global options moved in front of the verb (those already there stay, in order)."""
    names, letters = _globals(group)
    front: list[str] = []
    rest: list[str] = []
    i, cmd = 0, group
    ctx = click.Context(group)
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            rest += argv[i:]
            break
        is_global, with_value = _global(tok, names, letters)
        if is_global:
            front += argv[i : i + 1 + with_value]
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
