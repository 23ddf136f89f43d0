"""One live status line per stage, the same for every verb and for ``webmill run``.

On a terminal it is rich's spinner line, redrawn in place; in a log (stderr not a terminal) the
line is printed every ``every`` seconds at most, so a long stage leaves a readable trail; with
``-q`` nothing is shown. Stages report through ``update(text)``; each stage turns its own events
into that text (``webmill.dedup.progress`` for dedup's phases).
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, first: str = "", *, quiet: bool = False, every: float = 5.0, indent: str = ""):
        self.quiet, self.every, self.indent = quiet, every, indent
        self.tty = sys.stderr.isatty()
        # in a log the first line waits ``every`` seconds too: a stage that ends (or fails) at once leaves none
        self.last_text, self._printed_at, self._status = "", time.time(), None
        if first:
            self.update(first)

    @classmethod
    def silent(cls) -> Progress:
        return cls(quiet=True)

    def update(self, text: str, *, keep: bool = False) -> None:
        """The live line is now ``text``; with ``keep`` it is also a line of its own that stays (on a
        terminal above the live line, in a log at once): a milestone, such as a validation loss."""
        from webmill.printable import printable

        text = printable(text)  # a URL or a title in a status must not act on the terminal
        self.last_text = text
        if self.quiet:
            return
        if self.tty:
            from rich.console import Console
            from rich.text import Text

            line = Text(f"{self.indent}{text}")  # plain text: "[####----]" is not markup
            if self._status is None:
                self._console = Console(stderr=True)
                self._status = self._console.status(line)
                self._status.start()
            else:
                self._status.update(line)
            if keep:
                self._console.print(f"{self.indent}{text}", highlight=False, markup=False)
            return
        now = time.time()
        if keep or now - self._printed_at >= self.every:
            self._printed_at = now
            print(f"{self.indent}{text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
