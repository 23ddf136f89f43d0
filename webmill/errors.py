"""Errors a user can cause: printed as one line, exit status 2, no traceback."""


class UserError(Exception):
    """A mistake in what the user gave webmill: a path, a key, a URL, a file."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(UserError):
    """A config file that does not parse or does not validate."""


class RootError(UserError):
    """A corpus root that is missing, unreachable or not writable."""


class CorruptPartError(UserError):
    """A Parquet part (or commit record) that cannot be read back."""


def first_line(e: BaseException) -> str:
    """An exception as one line for an error message: its first line, or its type where it has no text."""
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
